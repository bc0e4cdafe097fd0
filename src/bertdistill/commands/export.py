"""`bertdistill export MODEL_DIR --format onnx|onnx-int8`: a deployable ONNX folder."""

from __future__ import annotations

import argparse

from .options import add_data_args, data_options
from .qa_options import add_qa_args, qa_overrides

DEFAULT_VALIDATION_SPLIT = 0.1  # --validation-split's default: a run's own value wins over it


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export", help="export a saved model to ONNX (fp32 or int8) with a parity check",
                              description="Export a saved model to ONNX. The dev split of --data (read with the "
                                          "data flags; --task defaults to the model's own task) feeds the parity "
                                          "check and the dev evaluation of both models.")
    p.add_argument("model_dir", metavar="MODEL_DIR", help="a model folder saved by finetune/distill")
    p.add_argument("--format", dest="fmt", default="onnx",
                   help="onnx (fp32) or onnx-int8 (ONNX Runtime dynamic int8: MatMul / Attention weights "
                        "per output channel, and the embeddings, see --fp32-embeddings)")
    emb = p.add_mutually_exclusive_group()
    emb.add_argument("--int8-embeddings", dest="int8_embeddings", action="store_true", default=None,
                     help="onnx-int8 (the default): also quantise the embedding tables and the embedding "
                          "LayerNorm (Gather / EmbedLayerNormalization; one scale per tensor)")
    emb.add_argument("--fp32-embeddings", dest="int8_embeddings", action="store_false",
                     help="onnx-int8: keep the embedding tables and the embedding LayerNorm in fp32, "
                          "quantise only the MatMul / Attention weights")
    p.add_argument("--output", default=None, help="output folder (default: MODEL_DIR-<format> beside it)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset version (default: 17)")
    p.add_argument("--exporter", default="torchscript",
                   help="torchscript (default; its graph gets fused attention) or dynamo")
    # the dev split of --data feeds the parity check and the dev evaluation
    add_data_args(p, max_length=None, max_length_default="128; a question-answering model: the windows it was "
                                                          "trained with, else 384")
    p.add_argument("--parity-examples", type=int, default=256,
                   help="dev examples (questions, for question answering) compared with PyTorch")
    p.add_argument("--max-logit-diff", type=float, default=None,
                   help="parity bound (default: 1e-3 fp32, 1.0 int8; question answering 1e-3 fp32, 2.0 int8)")
    p.add_argument("--min-agreement", type=float, default=None,
                   help="parity bound on label agreement, or for question answering on the share of questions "
                        "with the same answer span (default: 0.99 fp32, 0.95 int8; question answering 0.99 fp32, "
                        "0.90 int8)")
    add_qa_args(p)  # a QA model's windows: the run's unless given
    p.add_argument("--no-eval", action="store_true", help="skip the dev-set evaluation of both models")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> dict:
    from ..export import export_model

    if args.parity_examples < 1:
        raise ValueError(f"--parity-examples must be at least 1, got {args.parity_examples}")
    max_length = check_export_source(args.model_dir, args.max_length)
    data, task, options = args.data, args.task, export_data_options(args)
    if data is None:
        data, task, options = data_of_run(args.model_dir, task, options)
    return export_model(args.model_dir, args.fmt, args.output, opset=args.opset, exporter=args.exporter,
                        data=data, max_length=max_length, parity_examples=args.parity_examples,
                        max_logit_diff=args.max_logit_diff, min_agreement=args.min_agreement,
                        evaluate=not args.no_eval, task=task, data_options=options,
                        int8_embeddings=args.int8_embeddings, qa_options=qa_overrides(args))


def check_export_source(model_dir: str, max_length: int | None) -> int | None:
    """What export cannot do with ``model_dir``, said before any work: a damaged folder (named by
    ``resolve_model``), a BiLSTM student (no ONNX export yet), a --max-length beyond its positions.
    Returns the --max-length to use: None for a question-answering model without one (its
    windows decide), else the default 128 cut to a shorter model's positions."""
    from ..export.runtime import is_exported
    from ..export.package import refuse_bilstm
    from ..models.checks import check_max_length
    from ..models.loading import resolve_model

    if is_exported(model_dir):
        return max_length  # export_model says where the exported folder came from
    from ..qa_prediction import is_qa_model

    source = resolve_model(model_dir)
    refuse_bilstm(model_dir, source)
    if max_length is None and not is_qa_model(source):
        max_length = 128
    return check_max_length(source, max_length, "--max-length", name=model_dir)


def data_of_run(model_dir: str, task: str | None, options: dict) -> tuple[str | None, str | None, dict]:
    """Without --data: the data, task and data flags of the run that saved ``model_dir`` (from its
    run_config.json / results.json), said on screen; the flags given override the run's."""
    from ..export.run_data import run_data

    found = run_data(model_dir)
    if found is None:
        return None, task, options
    print(f"parity and dev data: {found.describe()}; pass --data to use other data")
    given = {k: v for k, v in options.items() if not (k == "validation_split" and v == DEFAULT_VALIDATION_SPLIT)}
    return found.data, task or found.task, {**found.options, **given}


def export_data_options(args: argparse.Namespace) -> dict:
    """The ``load_task`` keywords of the data flags, ``--skip-bad-rows`` included."""
    return {**data_options(args), **({"skip_bad_rows": True} if args.skip_bad_rows else {})}
