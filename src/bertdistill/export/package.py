"""``bertdistill export``: a saved model -> a self-contained ONNX (fp32 or int8) folder.

The folder holds ``model.onnx``, ``config.json``, the tokenizer, ``labels.json``, a runnable
``predict.py`` and ``export.json`` (format, opset, exporter, fused operators, parity, dev
metrics of the PyTorch model and of the export). It is written to a temporary sibling
(``.<name>.partial-<host>-<pid>``) and renamed into place only after the parity check passed,
so a failed export leaves nothing that looks usable. One export at a time writes a
destination: it holds the lock ``.<name>.lock`` beside it while it runs (``bertdistill.runlock``),
and under that lock removes what killed exports to the same destination left (their partial
folders, and the temporaries of older versions); an earlier export moved aside by a replace
that was killed half-way is put back first.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from ..data import load_task
from ..data.encode import Collator, encode
from ..data.errors import DataError
from ..data.examples import Example
from ..data.tasks import GENERIC, infer_task
from ..evaluation import evaluate_features
from ..models.loading import LABELS_FILE, load_tokenizer, replace_dir, resolve_model, size_on_disk, task_from_labels
from ..partials import partial_path, remove_stale_partials
from ..qa_evaluation import evaluate_qa_features
from ..runlock import lock_file
from .families import family_of
from .onnx import DEFAULT_OPSET, EXPORTERS, export_onnx, fusion_counts, optimize_transformer
from .parity import check_parity, compare, compare_spans
from .qa import QA_BOUNDS, export_qa_options, parity_subset, qa_manifest, qa_parity_inputs
from .quantize import quantize_int8, quantized_op_types, require_quantizer
from .runtime import MANIFEST, ONNX_FILE, OnnxModel, is_exported, read_manifest

FORMATS = ("onnx", "onnx-int8")
# format -> (largest |logit difference|, smallest label agreement) accepted by the parity check
BOUNDS = {"onnx": (1e-3, 0.99), "onnx-int8": (1.0, 0.95)}
MIN_OPSET, MAX_OPSET = 14, 20
VALIDATION_SPLIT = 0.1  # dev carved out of a single file, as by the commands and bertdistill.finetune/distill

# used for the parity check only when the task's data cannot be read (no --data, no default copy)
FALLBACK_TEXTS = [
    "a gripping, beautifully acted film that stays with you",
    "the plot is thin and the jokes fall flat",
    "John Smith flew from Paris to New York on Monday",
    "it is neither good nor bad , just long",
    "an unexpectedly moving story about a family in Berlin",
    "i would not recommend this to anyone",
    "the music is wonderful but the dialogue is clumsy",
    "Google and Apple both reported results on Thursday",
]


def default_output(model_dir: str | os.PathLike, fmt: str) -> Path:
    """``<model_dir>-onnx`` / ``<model_dir>-onnx-int8`` beside the model folder."""
    path = Path(str(model_dir)).expanduser().resolve()
    return path.parent / f"{path.name}-{fmt}"


def refuse_bilstm(model_dir: str, source: str) -> None:
    """A word-level BiLSTM student has no ONNX export: say so, instead of a missing-file message."""
    from ..models.checks import is_bilstm_folder

    if is_bilstm_folder(source):
        raise ValueError(f"{model_dir} is a word-level BiLSTM student: there is no ONNX export for BiLSTM "
                         "students yet; it runs in PyTorch (`bertdistill predict`, `bertdistill benchmark "
                         "--formats pytorch-fp32`)")


def validate_export(model_dir: str, fmt: str, output: str | os.PathLike | None, *, opset: int, exporter: str,
                    int8_embeddings: bool | None = None):
    """Every check that needs no model loaded; returns (source folder, family, output path)."""
    if fmt not in FORMATS:
        raise ValueError(f"--format {fmt!r} is not supported; choose from {', '.join(FORMATS)}")
    if int8_embeddings is not None and fmt != "onnx-int8":
        flag = "--int8-embeddings" if int8_embeddings else "--fp32-embeddings"
        raise ValueError(f"{flag} applies to --format onnx-int8 only (got --format {fmt})")
    if exporter not in EXPORTERS:
        raise ValueError(f"--exporter {exporter!r} is not supported; choose from {', '.join(EXPORTERS)}")
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"--opset {opset} is out of range: use {MIN_OPSET} to {MAX_OPSET}")
    if exporter == "dynamo" and opset < 18:
        raise ValueError(f"--opset {opset}: --exporter dynamo needs opset 18 or newer")
    if is_exported(model_dir):
        manifest = read_manifest(model_dir)
        raise ValueError(
            f"{model_dir} is already an exported model (--format {manifest.get('format')}); export from "
            f"the PyTorch folder it came from ({manifest.get('source')})"
        )
    source = resolve_model(model_dir)
    if not Path(source).is_dir():
        raise FileNotFoundError(f"{model_dir}: export needs a local model folder, not a hub id")
    refuse_bilstm(model_dir, source)
    if not (Path(source) / LABELS_FILE).is_file():
        raise FileNotFoundError(
            f"{model_dir} has no {LABELS_FILE}: export needs a task model saved by `bertdistill finetune` "
            "or `bertdistill distill`"
        )
    family = family_of(source)
    if not family.onnx:
        raise ValueError(f"{model_dir}: this model family cannot be exported to --format {fmt}")
    if fmt == "onnx-int8":
        require_quantizer("--format onnx-int8")
    out = Path(output) if output else default_output(model_dir, fmt)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not is_exported(out))):
        raise ValueError(f"--output {out} exists and is not an exported model folder; choose another --output")
    return source, family, out


def lock_path(out: Path) -> Path:
    """The lock file of exports to ``out`` (beside it: the folder itself is replaced whole)."""
    return out.parent / f".{out.name}.lock"


#: name parts of the temporaries older versions wrote beside ``out`` (``.<name>.tmp-XXXX``) and
#: of an export moved aside while a new one replaced it (``.<name>.old-XXXX/dir``, models/loading.py)
LEGACY_TEMPORARY, MOVED_ASIDE = ".tmp-", ".old-"


def remove_leftovers(out: Path) -> list[Path]:
    """With the export lock held: put back an export a killed replace moved aside (when ``out``
    is missing), then delete every temporary folder earlier exports to ``out`` left."""
    aside = sorted((p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}{MOVED_ASIDE}")),
                   key=lambda p: p.stat().st_mtime)
    if not out.exists() and aside and (aside[-1] / "dir").is_dir():
        os.rename(aside[-1] / "dir", out)
        print(f"restored {out}, moved aside by an export that did not finish")
    removed = remove_stale_partials(out, everyone=True)
    for path in out.parent.iterdir():
        if path.name.startswith((f".{out.name}{LEGACY_TEMPORARY}", f".{out.name}{MOVED_ASIDE}")) and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    if removed:
        print(f"removed {len(removed)} temporary folder(s) left by earlier exports to {out}: "
              + ", ".join(p.name for p in removed))
    return removed


def data_task(task, data, task_name: str | None) -> str | None:
    """The task name to read ``data`` as: ``--task`` when given, else the model's task, except
    that a model of a generic format (csv/tsv/jsonl) reads ``data`` by its own extension."""
    if task_name is not None:
        return task_name
    if data is not None and task.name in GENERIC:
        return None
    return task.name


def read_options(task, data, name: str | None, options: dict | None) -> dict:
    """``options`` plus, for csv/tsv/jsonl data, the label names and kind saved with the model
    (unless given), so that class ids mean what they meant in training; a single file's dev
    split is the part fine-tuning held out (``validation_split``, unless given)."""
    out = {"validation_split": VALIDATION_SPLIT, **(options or {})}
    if data is None or "labels" in out or "task_kind" in out or task.kind not in ("classification", "regression"):
        return out
    if (name or infer_task(data)) not in GENERIC:
        return out
    return {**out, "task_kind": task.kind, **({"labels": list(task.labels)} if task.labels else {})}


def parity_features(task, data, tokenizer, *, max_length: int, limit: int | None, task_name: str | None,
                    data_options: dict | None = None):
    """Encoded real examples for parity / evaluation: the task's dev split, else FALLBACK_TEXTS.

    ``task_name`` (None: from ``data``'s extension) and ``data_options`` (``load_task``'s
    keywords: the data flags) say how ``data`` is read. Returns ``(features, labelled, where)``;
    ``labelled`` says whether they can be scored.
    """
    examples, where = None, ""
    try:
        task_data = load_task(task_name, data, **read_options(task, data, task_name, data_options))
    except (DataError, FileNotFoundError, ValueError, KeyError):
        if data is not None:
            raise
    else:
        split = next((s for s in ("dev", "test", "train") if s in task_data.splits), None)
        if split is not None:
            examples, where = task_data.split(split), f"{task_data.task.name} {split}"
    if examples is None:
        token_level = task.kind == "token_classification"
        examples = [Example(text=t.split() if token_level else t) for t in FALLBACK_TEXTS]
        where = "built-in sentences (no task data found; pass --data for the dev split)"
    labelled = all(e.label is not None for e in examples)
    if limit is not None:
        examples = examples[:limit]
    return encode(task, examples, tokenizer, max_length=max_length), labelled, where


def export_model(model_dir: str, fmt: str = "onnx", output: str | os.PathLike | None = None, *,
                 opset: int = DEFAULT_OPSET, exporter: str = "torchscript", data: str | None = None,
                 max_length: int | None = None, parity_examples: int = 256, max_logit_diff: float | None = None,
                 min_agreement: float | None = None, evaluate: bool = True, task: str | None = None,
                 data_options: dict | None = None, int8_embeddings: bool | None = None,
                 qa_options: dict | None = None) -> dict:
    """Export ``model_dir`` to ``fmt``; returns the manifest written as ``export.json``.

    ``onnx-int8`` quantises the MatMul / Attention weights (int8, per output channel) and,
    unless ``int8_embeddings`` is False, the embedding tables and the embedding LayerNorm
    (one scale per tensor); None means the default (True). ``export.json`` records the
    choice under ``quantization`` (:mod:`bertdistill.export.quantize`).

    ``data`` (its dev split) feeds the parity check and the dev evaluation, read as ``task``
    (default: the model's task; csv/tsv/jsonl from ``data``'s extension) with ``data_options``,
    the keywords of ``load_task`` (``label_column``, ``text_column``, ...: the data flags).

    ``max_length`` defaults to 128; an extractive-QA model (``bertdistill.export.qa``) is
    exported with ``start_logits`` / ``end_logits`` outputs, read in the windows it was trained
    with (``max_length`` and ``qa_options`` override them), and its parity is checked on the
    decoded answer spans of ``parity_examples`` questions.

    Example::

        export_model("runs/student/student", "onnx-int8", data="reviews.csv",
                     data_options={"label_column": "sentiment"})
    """
    source, family, out = validate_export(model_dir, fmt, output, opset=opset, exporter=exporter,
                                          int8_embeddings=int8_embeddings)
    spec = task_from_labels(source)
    qa = spec.kind == "qa"
    if qa_options and not qa:
        flags = ", ".join("--" + k.replace("_", "-") for k in sorted(qa_options))
        raise ValueError(f"{flags}: for question-answering models only ({model_dir} is a {spec.kind} model)")
    windows = export_qa_options(source, max_length, qa_options) if qa else None
    max_length = 128 if max_length is None else max_length
    out.parent.mkdir(parents=True, exist_ok=True)
    lock = lock_file(lock_path(out), f"--output {out}", hint="; wait for it to end or choose another --output",
                     remove_on_release=True)
    remove_leftovers(out)
    embeddings_int8 = int8_embeddings is not False
    bound_diff, bound_agree = (QA_BOUNDS if qa else BOUNDS)[fmt]
    bound_diff = bound_diff if max_logit_diff is None else max_logit_diff
    bound_agree = bound_agree if min_agreement is None else min_agreement
    tokenizer = load_tokenizer(source)
    # the data is read first: a bad --data / column flag fails before any export work
    if qa:
        questions, features, labelled, where = qa_parity_inputs(
            spec, data, tokenizer, windows, task_name=data_task(spec, data, task),
            read_options=read_options(spec, data, data_task(spec, data, task), data_options),
            parity_questions=parity_examples, evaluate=evaluate)
    else:
        features, labelled, where = parity_features(spec, data, tokenizer, max_length=max_length, limit=None,
                                                    task_name=data_task(spec, data, task), data_options=data_options)
    scored = len(questions) if qa else len(features)  # examples the dev scores are over
    started = time.perf_counter()
    model = family.load(source, attn_implementation="eager").eval()
    tmp = partial_path(out)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        token_level = spec.kind == "token_classification"
        print(f"exporting {source} ({model.config.model_type}) with the {exporter} exporter, opset {opset} ...")
        raw = export_onnx(model, family, tmp / "raw.onnx", opset=opset, exporter=exporter, token_level=token_level,
                          spans=qa)
        fused = optimize_transformer(raw, tmp / "fp32.onnx", model, family)
        raw.unlink()
        if fmt == "onnx-int8":
            print(f"quantising to int8 (ONNX Runtime dynamic quantisation; embeddings "
                  f"{'int8' if embeddings_int8 else 'fp32'}) ...")
            quantize_int8(tmp / "fp32.onnx", tmp / ONNX_FILE, int8_embeddings=embeddings_int8)
            (tmp / "fp32.onnx").unlink()
        else:
            os.replace(tmp / "fp32.onnx", tmp / ONNX_FILE)
        exported = OnnxModel(tmp / ONNX_FILE, config=model.config)
        collator = Collator(tokenizer.pad_token_id)
        if qa:
            parity = compare_spans(model, exported, *parity_subset(questions, features, parity_examples), collator,
                                   windows, max_diff=bound_diff, min_agreement=bound_agree)
        else:
            parity = compare(model, exported, features[:parity_examples], collator,
                             regression=spec.kind == "regression", max_diff=bound_diff, min_agreement=bound_agree)
        print(f"parity inputs: {where}")
        check_parity(parity, fmt)
        metrics = {}
        if evaluate and labelled:
            for name, net in (("pytorch", model), (fmt, exported)):
                metrics[name] = (evaluate_qa_features(net, questions, features, collator, windows, device="cpu")
                                 if qa else evaluate_features(net, spec, features, collator, device="cpu"))
            main = spec.main_metric
            print(f"{where} ({scored} examples) {main}: PyTorch fp32 {metrics['pytorch'][main]:.4f}, "
                  f"{fmt} {metrics[fmt][main]:.4f}")
        tokenizer.save_pretrained(tmp)
        model.config.save_pretrained(tmp)
        shutil.copyfile(Path(source) / LABELS_FILE, tmp / LABELS_FILE)
        shutil.copyfile(Path(__file__).with_name("predict_example.py"), tmp / "predict.py")
        manifest = {
            "format": fmt, "source": str(Path(source).resolve()), "model_type": model.config.model_type,
            "task": spec.name, "inputs": list(family.inputs), "opset": opset, "exporter": exporter,
            "fused_operators": fused, "operators": fusion_counts(tmp / ONNX_FILE),
            "quantization": {
                "method": "onnxruntime dynamic", "op_types": quantized_op_types(embeddings_int8),
                "matmul_weights": "int8, one scale per output channel",
                "embeddings": "8-bit, one scale per tensor" if embeddings_int8 else "fp32",
            } if fmt == "onnx-int8" else None,
            "parity": parity.as_dict() | {"inputs": where},
            "evaluation": {"data": where, "examples": scored, "metrics": metrics} if metrics else None,
            "onnx_bytes": (tmp / ONNX_FILE).stat().st_size, "source_bytes": size_on_disk(source),
            "seconds": round(time.perf_counter() - started, 1),
            **(qa_manifest(windows) if qa else {}),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        lock.release()
    example = "--question Q --context C" if qa else '"some text"'
    print(f"exported to {out} ({manifest['onnx_bytes'] / 1e6:.1f} MB model.onnx; try: python {out}/predict.py {example})")
    return manifest | {"output": str(out)}
