"""`bertdistill export MODEL_DIR --format onnx|onnx-int8`: a deployable ONNX folder."""

from __future__ import annotations

import argparse

from .options import add_data_args, data_options


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export", help="export a saved model to ONNX (fp32 or int8) with a parity check",
                              description="Export a saved model to ONNX. The dev split of --data (read with the "
                                          "data flags; --task defaults to the model's own task) feeds the parity "
                                          "check and the dev evaluation of both models.")
    p.add_argument("model_dir", metavar="MODEL_DIR", help="a model folder saved by finetune/distill")
    p.add_argument("--format", dest="fmt", default="onnx", help="onnx (fp32) or onnx-int8 (dynamic int8)")
    p.add_argument("--output", default=None, help="output folder (default: MODEL_DIR-<format> beside it)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset version (default: 17)")
    p.add_argument("--exporter", default="torchscript",
                   help="torchscript (default; its graph gets fused attention) or dynamo")
    add_data_args(p)  # the dev split of --data feeds the parity check and the dev evaluation
    p.add_argument("--parity-examples", type=int, default=256, help="dev examples compared logit by logit")
    p.add_argument("--max-logit-diff", type=float, default=None, help="parity bound (default: 1e-3 fp32, 1.0 int8)")
    p.add_argument("--min-agreement", type=float, default=None,
                   help="parity bound on label agreement (default: 0.99 fp32, 0.95 int8)")
    p.add_argument("--no-eval", action="store_true", help="skip the dev-set evaluation of both models")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> dict:
    from ..export import export_model

    if args.parity_examples < 1:
        raise ValueError(f"--parity-examples must be at least 1, got {args.parity_examples}")
    return export_model(args.model_dir, args.fmt, args.output, opset=args.opset, exporter=args.exporter,
                        data=args.data, max_length=args.max_length, parity_examples=args.parity_examples,
                        max_logit_diff=args.max_logit_diff, min_agreement=args.min_agreement,
                        evaluate=not args.no_eval, task=args.task, data_options=export_data_options(args))


def export_data_options(args: argparse.Namespace) -> dict:
    """The ``load_task`` keywords of the data flags, ``--skip-bad-rows`` included."""
    return {**data_options(args), **({"skip_bad_rows": True} if args.skip_bad_rows else {})}
