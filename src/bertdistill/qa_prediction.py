"""Extractive QA with a saved model: scores on a split, and answers to questions about contexts.

The model is a saved PyTorch folder or a folder written by ``bertdistill export`` (an ONNX
Runtime session giving the same start / end logits, ``export.runtime.load_for_inference``);
both go through the same windows and span decoding. The window options the model was made
with (an export's ``export.json``, a run folder's ``results.json``) are the defaults, under the
options given."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from .data import load_task
from .data.encode import Collator
from .data.errors import DataError
from .data.examples import Example
from .data.qa_features import QaOptions, check_qa_tokenizer, encode_qa
from .metrics import format_metrics
from .export.qa import saved_qa_options
from .export.runtime import load_for_inference
from .models.loading import check_length_fits, hub_options, load_tokenizer, task_from_labels
from .qa_evaluation import evaluate_qa, predict_answers


def checked_options(max_length: int | None, given: dict | None, saved: dict | None = None) -> QaOptions:
    """QaOptions from ``max_length`` and the other fields given over ``saved`` (an exported
    folder's) over the defaults (384-token windows), checked."""
    saved = saved or {}
    length = max_length or saved.get("max_length") or QaOptions.max_length
    options = QaOptions(**{**saved, "max_length": length, **(given or {})})
    options.check()
    return options


def _fitted(model: str, options: QaOptions) -> QaOptions:
    """``options`` with ``max_length`` checked against the model's position embeddings."""
    length = check_length_fits(model, options.max_length)
    if length == options.max_length:
        return options
    fitted = QaOptions(**{**options.__dict__, "max_length": length})
    fitted.check()
    return fitted


def evaluate_saved_qa(model: str, task: str, data=None, *, split: str = "dev", batch_size: int = 64,
                      max_length: int | None = None, skip_bad_rows: bool = False, qa_options: dict | None = None,
                      revision: str | None = None, trust_remote_code: bool = False,
                      data_options: dict | None = None) -> dict:
    """EM / F1 of a saved QA model on one split of ``task``; prints the table and returns the metrics."""
    options = checked_options(max_length, qa_options, saved_qa_options(model))
    with hub_options(revision=revision, trust_remote_code=trust_remote_code):
        options = _fitted(model, options)
        task_data = load_task(task, data, skip_bad_rows=skip_bad_rows, **(data_options or {}))
        examples = task_data.split(split)
        tokenizer = load_tokenizer(model)
        check_qa_tokenizer(tokenizer, options)
        net = load_for_inference(model, task_data.task)  # a saved PyTorch model or an exported ONNX folder
        metrics = evaluate_qa(net, tokenizer, examples, options, batch_size)
    print(format_metrics(task_data.task, metrics, title=f"{task_data.task.name} {split} ({model})"))
    return metrics


def answer_questions(model: str, questions: Sequence[str], contexts: Sequence[str], *, batch_size: int = 32,
                     max_length: int | None = None, qa_options: dict | None = None) -> list[dict]:
    """The answer span of each question in its context: ``question``, ``answer``, ``start`` /
    ``end`` (characters of the context) and ``score`` (the span's start x end probability)."""
    if len(questions) != len(contexts):
        raise ValueError(f"{len(questions)} questions but {len(contexts)} contexts: give one context per question")
    if not questions:
        raise ValueError("no questions to answer")
    for n, (question, context) in enumerate(zip(questions, contexts), 1):
        for what, text in (("question", question), ("context", context)):
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"question {n}: empty {what}")
    options = _fitted(model, checked_options(max_length, qa_options, saved_qa_options(model)))
    tokenizer = load_tokenizer(model)
    check_qa_tokenizer(tokenizer, options)
    net = load_for_inference(model, _qa_task(model))  # a saved PyTorch model or an exported ONNX folder
    examples = [Example(q, c, None, "", str(i)) for i, (q, c) in enumerate(zip(questions, contexts))]
    features = encode_qa(examples, tokenizer, options, desc="windows")
    answers = predict_answers(net, examples, features, Collator(tokenizer.pad_token_id), options, batch_size)
    return [{"question": q, "answer": a["text"], "start": a["start"], "end": a["end"],
             "score": round(a["probability"], 6)} for q, a in zip(questions, answers)]



def is_qa_model(model: str) -> bool:
    """Whether a local model folder holds a QA model (its labels.json, else its config's architecture)."""
    from .models.loading import LABELS_FILE, load_labels

    folder = Path(str(model)).expanduser()
    if (folder / LABELS_FILE).is_file():
        return load_labels(folder).get("kind") == "qa"
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return any(str(a).endswith("ForQuestionAnswering") for a in config.get("architectures") or [])


def _qa_task(model: str):
    from .models.loading import LABELS_FILE, resolve_model

    source = Path(resolve_model(model))
    if not (source / LABELS_FILE).is_file():
        from .data import get_task_spec

        return get_task_spec("squad")
    task = task_from_labels(source)
    if task.kind != "qa":
        raise ValueError(f"{model} was trained for {task.name!r}, a {task.kind} task, not question answering: "
                         "--question / --context need a model fine-tuned with --task squad")
    return task


def read_questions(path: str | Path) -> tuple[list[str], list[str]]:
    """``question`` and ``context`` of each line of a JSONL file (DataError naming the line)."""
    from .data.tabular import numbered_lines

    questions, contexts = [], []
    for number, line in numbered_lines(Path(path)):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(path, number, f"not valid JSON: {err.msg} (column {err.colno})") from None
        if not isinstance(row, dict):
            raise DataError(path, number, f"expected a JSON object, got {type(row).__name__}")
        for field in ("question", "context"):
            if not isinstance(row.get(field), str) or not row[field].strip():
                raise DataError(path, number, f"no {field!r} text (each line needs \"question\" and \"context\")")
        questions.append(row["question"])
        contexts.append(row["context"])
    if not questions:
        raise DataError(path, None, "no questions")
    return questions, contexts
