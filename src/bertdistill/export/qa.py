"""Exporting an extractive-QA model: its windows, the questions parity reads, spans compared.

A QA export answers with ``start_logits`` and ``end_logits`` (``export.onnx``). What the
exported folder needs besides the graph is the window options the model was trained with:
they are read from the run folder that saved it (``results.json``: a fine-tuning run's
``qa_options``, a distillation's ``config``), over the defaults, under the options given, and
stored in ``export.json`` under ``qa_options``; ``bertdistill evaluate`` and ``predict`` on the
exported folder start from them, and from a run folder's own (``saved_qa_options``).

Parity compares the decoded answer spans of PyTorch and the export on real questions (the dev
split, else a few built-in questions): ``export.parity.compare_spans``. The default bounds:

* fp32: the same answer span on at least 99 % of the questions and no start/end logit more
  than 1e-3 apart at the tokens decoding reads;
* int8: the same answer span on at least 80 % of the questions and no logit more than 5.0
  apart. Dynamic int8 moves the logits by a few units on a sharp span head, and a span whose
  score was nearly tied with a neighbour's flips to it (docs/question-answering.md gives what
  the benchmark student measured). A broken export (wrong outputs, a lost input) answers
  far fewer questions alike; the dev scores the export prints next are the accuracy check;

an export past either bound is refused and nothing is written (``--min-agreement`` and
``--max-logit-diff`` change them).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, fields
from pathlib import Path

from ..data import load_task
from ..data.errors import DataError
from ..data.examples import Example
from ..data.qa_features import QaOptions, check_qa_tokenizer, encode_qa
from .run_data import RESULTS_FILE
from .runtime import is_exported, read_manifest

# format -> (largest |start/end logit difference|, smallest share of questions with the same span)
QA_BOUNDS = {"onnx": (1e-3, 0.99), "onnx-int8": (5.0, 0.80)}
OPTION_NAMES = tuple(f.name for f in fields(QaOptions))

# used for the parity check only when no QA data can be read (no --data, no shared SQuAD copy)
BUILTIN_QUESTIONS = [
    ("Who won the game?", "The Denver Broncos defeated the Carolina Panthers 24-10 to win Super Bowl 50."),
    ("Where was the game played?", "Super Bowl 50 was played on February 7, 2016, at Levi's Stadium in "
     "Santa Clara, California."),
    ("What is the capital of France?", "Paris is the capital and largest city of France, on the Seine."),
    ("When did the war end?", "The war lasted six years and ended in 1945 with the surrender of Japan."),
    ("Who wrote the letter?", "The letter was written by her brother forty years ago and never sent."),
    ("What does the river flow into?", "The Rhine rises in the Swiss Alps and flows into the North Sea "
     "near Rotterdam, after passing Cologne and Düsseldorf."),
    ("How many people live in the city?", "About 3.7 million people live in Berlin, the largest city of "
     "Germany by population."),
    ("What company did he found?", "In 1976 Steve Jobs founded Apple with Steve Wozniak in a garage in "
     "Los Altos."),
]


def _fields(given) -> dict:
    return {k: v for k, v in (given or {}).items() if k in OPTION_NAMES and v is not None} \
        if isinstance(given, dict) else {}


def trained_qa_options(model_dir: str | os.PathLike) -> dict:
    """The window options of the run whose output folder holds ``model_dir`` ({} when none is
    recorded): a fine-tuning run's ``qa_options``, else a distillation's ``config`` (its
    ``qa_options`` and ``max_length``)."""
    path = Path(str(model_dir)).expanduser().resolve().parent / RESULTS_FILE
    try:
        results = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    if not isinstance(results, dict):
        return {}
    if isinstance(results.get("qa_options"), dict):
        return _fields(results["qa_options"])
    config = results.get("config") if isinstance(results.get("config"), dict) else {}
    out = _fields(config.get("qa_options"))
    if isinstance(config.get("max_length"), int):
        out["max_length"] = config["max_length"]
    return out


def exported_qa_options(model_dir: str | os.PathLike) -> dict:
    """The window options an exported QA folder was exported with ({} for any other folder)."""
    if not is_exported(model_dir):
        return {}
    return _fields(read_manifest(model_dir).get("qa_options"))


def saved_qa_options(model_dir: str | os.PathLike) -> dict:
    """The window options ``model_dir`` was made with: an export's ``export.json``, else the
    run folder's ``results.json`` (``trained_qa_options``); {} when neither records them."""
    return exported_qa_options(model_dir) if is_exported(model_dir) else trained_qa_options(model_dir)


def export_qa_options(source: str, max_length: int | None, given: dict | None) -> QaOptions:
    """The windows of a QA export: the options given over ``--max-length`` over the run's over
    the defaults, checked (ValueError naming the flag)."""
    unknown = sorted(set(given or {}) - set(OPTION_NAMES))
    if unknown:
        raise ValueError(f"unknown QA option(s) {unknown}; known: {list(OPTION_NAMES)}")
    options = {**trained_qa_options(source), **({"max_length": max_length} if max_length else {}),
               **_fields(given)}
    chosen = QaOptions(**options)
    chosen.check()
    return chosen


def qa_parity_inputs(task, data, tokenizer, options: QaOptions, *, task_name: str | None, read_options: dict,
                     parity_questions: int, evaluate: bool):
    """Questions for parity and the dev scores: ``(examples, features, labelled, where)``.

    The dev split of ``data`` (read as ``task_name`` with ``read_options``), else the built-in
    questions when no data was given and the task's default copy cannot be read. Only the
    first ``parity_questions`` are windowed unless the split is scored (``evaluate``)."""
    check_qa_tokenizer(tokenizer, options)
    examples, where = None, ""
    try:
        task_data = load_task(task_name or task.name, data, **read_options)
    except (DataError, FileNotFoundError, ValueError, KeyError):
        if data is not None:
            raise
    else:
        if task_data.task.kind != "qa":
            raise ValueError(f"--task {task_data.task.name} is a {task_data.task.kind} task; a question-answering "
                             "model is checked on questions (--task squad)")
        split = next((s for s in ("dev", "test", "train") if task_data.splits.get(s)), None)
        if split is not None:
            examples, where = task_data.split(split), f"{task_data.task.name} {split}"
    if examples is None:
        examples = [Example(q, c, None, "built-in", f"builtin-{i}") for i, (q, c) in enumerate(BUILTIN_QUESTIONS)]
        where = "built-in questions (no QA data found; pass --data for the dev split)"
    labelled = all(e.label for e in examples)
    if not (evaluate and labelled):
        examples = examples[:parity_questions]
    features = encode_qa(examples, tokenizer, options, desc="QA windows")
    return examples, features, labelled, where


def parity_subset(examples, features, questions: int) -> tuple[list, list[dict]]:
    """The first ``questions`` questions and their windows (``example_index`` renumbered alike)."""
    kept = list(examples[:questions])
    return kept, [f for f in features if f["example_index"] < len(kept)]


def qa_manifest(options: QaOptions) -> dict:
    """What ``export.json`` adds for a QA export."""
    return {"outputs": ["start_logits", "end_logits"], "qa_options": asdict(options)}
