"""Tabular files: shared row helpers, and the generic CSV / TSV / JSONL task.

Generic files name their columns in a header (CSV/TSV) or in each JSON object (JSONL).
A directory holds ``train.EXT``, ``dev.EXT`` (or ``validation.EXT``) and ``test.EXT``;
a single file is the ``train`` split unless its stem is ``dev``/``validation``/``test``
(``load_task`` then holds a seeded part of train out as dev). Columns default to ``text``
(or ``sentence``) and ``label``; errors name the CLI flag that changes them.
``.csv`` files use real CSV quoting (the ``csv`` module); ``.tsv`` files are split on TAB
with no quoting at all, as GLUE files need.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path

from .errors import DataError
from .examples import Example, TaskSpec

SPLIT_STEMS = {"train": ("train",), "dev": ("dev", "validation"), "test": ("test",)}
# The csv module refuses fields over 131,072 characters by default; a long review is a valid
# field. The largest value every platform's C long holds (Windows' is 32 bits).
CSV_FIELD_LIMIT = min(sys.maxsize, 2**31 - 1)
SKIP_HINT = "fix the row, or skip such rows with --skip-bad-rows"


class BadRows:
    """Skips and counts bad rows when ``skip_bad_rows`` is on; otherwise re-raises them."""

    def __init__(self, skip: bool = False):
        self.skip = skip
        self.count = 0
        self.first: DataError | None = None

    def handle(self, err: DataError) -> None:
        if not self.skip:
            raise err
        self.count += 1
        self.first = self.first or err


def require(path: Path) -> Path:
    """``path`` itself, or a DataError when it does not exist."""
    if not path.exists():
        raise DataError(path, None, "no such file or directory")
    return path


def numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, line without its end) of a UTF-8 file; lines end at "\\n" only."""
    with open(require(path), encoding="utf-8-sig", newline="\n") as f:
        try:
            for number, line in enumerate(f, 1):
                yield number, line.rstrip("\r\n")
        except UnicodeDecodeError as err:
            raise DataError(path, None, f"not UTF-8 text: {err}") from None


def tsv_lines(path: Path, delimiter: str = "\t") -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each non-blank line, split on TAB only (no quoting)."""
    for number, line in numbered_lines(path):
        if line.strip():
            yield number, line.split(delimiter)


def csv_lines(path: Path, delimiter: str = ",", bad: BadRows | None = None) -> Iterator[tuple[int, list[str]]]:
    """(first line number, fields) of each non-blank CSV record, with CSV quoting."""
    with open(require(path), encoding="utf-8-sig", newline="") as f:
        try:
            yield from csv_records(f, delimiter, path=path, bad=bad)
        except UnicodeDecodeError as err:
            raise DataError(path, None, f"not UTF-8 text: {err}") from None


def csv_records(f, delimiter: str = ",", *, path=None, bad: BadRows | None = None) -> Iterator[tuple[int, list[str]]]:
    """(first line number, fields) of each non-blank record of an open CSV text stream.

    Fields may be up to ``CSV_FIELD_LIMIT`` characters long. A record the csv module cannot
    read is a DataError naming ``path`` and its first line; ``bad`` (when given) may skip it.
    """
    previous = csv.field_size_limit(CSV_FIELD_LIMIT)
    try:
        reader = csv.reader(f, delimiter=delimiter)
        start = 1
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                error = DataError(path or getattr(f, "name", None), start, f"unreadable CSV record: {err}")
                if bad is None:
                    raise error from None
                bad.handle(error)
            else:
                if any(field.strip() for field in fields):
                    yield start, fields
            start = reader.line_num + 1
    finally:
        csv.field_size_limit(previous)


def label_name(raw) -> str:
    """A raw label as a label name: strings stripped, JSON values (``1``, ``true``) spelled out."""
    return (raw if isinstance(raw, str) else json.dumps(raw)).strip()


def label_value(spec: TaskSpec, raw, path, line: int | None):
    """A raw label as the task's label: a class id, or a float score for regression."""
    if spec.kind == "regression":
        try:
            score = None if isinstance(raw, bool) else float(raw)
        except (TypeError, ValueError):
            score = None
        if score is None or not math.isfinite(score):
            raise DataError(path, line, f"score {raw!r} is not a number")
        return score
    name = label_name(raw)
    if name not in spec.labels:
        raise DataError(path, line, f"label {name!r} is not one of the known labels {spec.labels} (--labels)")
    return spec.labels.index(name)


COLUMN_FLAGS = {"text": "--text-column", "text pair": "--text-pair-column", "label": "--label-column"}


def column_index(header: list[str], name: str, path, what: str) -> int:
    """Position of column ``name`` in ``header``, or a DataError listing the columns."""
    names = [h.strip() for h in header]
    if name not in names:
        flag = COLUMN_FLAGS.get(what)
        hint = f" (name another with {flag})" if flag else ""
        raise DataError(path, 1, f"no {what} column {name!r}; the header has {names}{hint}")
    return names.index(name)


def check_width(fields: list[str], expected: int, path, line: int) -> None:
    if len(fields) != expected:
        raise DataError(path, line, f"expected {expected} columns, got {len(fields)}")


def check_header(header: list[str], path, line: int = 1) -> None:
    """A header must not name a column twice: which of the two would be read is a guess."""
    seen: dict[str, int] = {}
    for position, name in enumerate(header, 1):
        if name and name in seen:
            raise DataError(path, line, f"the header names column {name!r} twice (columns {seen[name]} and "
                                        f"{position}); rename one of them")
        seen.setdefault(name, position)


def require_text(text: str | None, path, line: int | None, what: str = "text") -> str:
    """``text`` stripped, or a DataError when it is missing or blank (a model cannot learn from it)."""
    value = "" if text is None else text.strip()
    if not value:
        raise DataError(path, line, f"empty {what} ({SKIP_HINT})")
    return value


def sort_labels(names) -> list[str]:
    """Label names sorted numerically when they all are numbers, else as strings."""
    names = set(names)
    try:
        return sorted(names, key=float)
    except ValueError:
        return sorted(names)


# ---- the generic task ---------------------------------------------------------------------


def split_files(path: Path, ext: str, wanted) -> dict[str, Path]:
    """Split name -> file for a generic task's ``path`` (a file or a directory)."""
    require(path)
    if path.is_file():
        split = next((s for s, stems in SPLIT_STEMS.items() if path.stem in stems), "train")
        files = {split: path}
    else:
        files = {}
        for split, stems in SPLIT_STEMS.items():
            found = [path / f"{s}.{ext}" for s in stems if (path / f"{s}.{ext}").is_file()]
            if found:
                files[split] = found[0]
        if not files:
            names = ", ".join(f"{s}.{ext}" for stems in SPLIT_STEMS.values() for s in stems)
            raise DataError(path, None, f"none of {names} is here")
    if wanted is not None:
        for split in wanted:
            if split not in files:
                raise DataError(path, None, f"no {split!r} split here (found {sorted(files)})")
        files = {s: p for s, p in files.items() if s in wanted}
    return files


def read_records(path: Path, fmt: str, delimiter, cols: dict, split: str, bad: BadRows):
    """(line, text, pair, raw label or None) rows; only a test file may lack the label column."""
    if fmt == "jsonl":
        records = _json_records(path, cols, bad)
    else:
        records = _table_records(path, fmt, delimiter, cols, split, bad)
    if not records:
        raise DataError(path, None, f"the {split!r} split has no rows{_so_far(bad)}")
    return records


def _so_far(bad: BadRows) -> str:
    return f" ({bad.count} bad rows skipped so far)" if bad.count else ""


def _table_records(path: Path, fmt: str, delimiter: str | None, cols: dict, split: str, bad):
    if fmt == "csv":
        lines = csv_lines(path, delimiter or ",", bad)
    else:
        lines = tsv_lines(path, delimiter or "\t")
    records = []
    header = None
    for line, fields in lines:
        if header is None:
            header = [h.strip() for h in fields]
            check_header(header, path, line)
            idx = _header_columns(header, cols, split, path)
            continue
        try:
            check_width(fields, len(header), path, line)
        except DataError as err:
            bad.handle(err)
            continue
        records.append((line, *(fields[i] if i is not None else None for i in idx)))
    if header is None:
        raise DataError(path, None, "empty file (a header row is required)")
    return records


def _header_columns(header: list[str], cols: dict, split: str, path) -> list[int | None]:
    """Positions of the text, pair and label columns (label None: an unlabelled test file)."""
    text = column_index(header, cols["text"] or _default_text(header, path), path, "text")
    pair = column_index(header, cols["pair"], path, "text pair") if cols["pair"] else None
    label = None
    if cols["label"] in header or not split.startswith("test"):
        label = column_index(header, cols["label"], path, "label")
    return [text, pair, label]


def _default_text(keys, path) -> str:
    for name in ("text", "sentence"):
        if name in keys:
            return name
    raise DataError(path, 1, f"no 'text' or 'sentence' column in {list(keys)}; name it with --text-column")


def _json_records(path: Path, cols: dict, bad: BadRows):
    records = []
    for line, raw in numbered_lines(path):
        if not raw.strip():
            continue
        try:
            records.append(_json_record(raw, line, path, cols))
        except DataError as err:
            bad.handle(err)
    return records


def _json_record(raw: str, line: int, path, cols: dict):
    try:
        row = json.loads(raw, object_pairs_hook=lambda pairs: _unique_keys(pairs, path, line))
    except json.JSONDecodeError as err:
        raise DataError(path, line, f"invalid JSON: {err.msg}") from None
    if not isinstance(row, dict):
        raise DataError(path, line, f"expected a JSON object, got {type(row).__name__}")
    text_key = cols["text"] or _default_text(row, path)
    values = []
    for key in (text_key, cols["pair"]):
        if key is None:
            values.append(None)
        elif not isinstance(row.get(key), str):
            raise DataError(path, line, f"{key!r} must be a string (keys: {sorted(row)})")
        else:
            values.append(row[key])
    return (line, *values, row.get(cols["label"]))


def _unique_keys(pairs: list, path, line: int) -> dict:
    """A JSON object, or a DataError when it names a key twice (json.loads would keep the last)."""
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise DataError(path, line, f"the JSON object names key {key!r} twice")
        obj[key] = value
    return obj


def load_generic(
    fmt: str,
    path: Path,
    bad: BadRows,
    wanted=None,
    *,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str | None = None,
    labels: list[str] | None = None,
    task_kind: str | None = None,
    delimiter: str | None = None,
) -> tuple[TaskSpec, dict[str, list[Example]]]:
    """Read a generic CSV/TSV/JSONL task; labels are inferred (sorted) from train if not given."""
    kind = task_kind or "classification"
    if kind not in ("classification", "regression"):
        raise ValueError(f"--task-kind must be 'classification' or 'regression', got {kind!r}")
    if kind == "regression" and labels:
        raise ValueError("a regression task has no label set: drop --labels")
    cols = {"text": text_column, "pair": text_pair_column, "label": label_column or "label"}
    files = split_files(path, fmt, wanted)
    records = {
        split: read_records(file, fmt, delimiter, cols, split, bad) for split, file in files.items()
    }
    if kind == "classification" and not labels:
        labels = _infer_labels(records, path, cols["label"])
    metrics = ("pearson", "spearman") if kind == "regression" else ("accuracy",)
    labels = list(labels) if labels else None
    spec = TaskSpec(fmt, kind, labels, metrics, pair=bool(text_pair_column))
    splits = {
        split: build_examples(spec, rows, files[split], split, bad)
        for split, rows in records.items()
    }
    return spec, splits


def _infer_labels(records: dict, path: Path, column: str) -> list[str]:
    rows = records["train"] if "train" in records else [r for rs in records.values() for r in rs]
    names = [label_name(r[3]) for r in rows if r[3] is not None]
    names = [n for n in names if n]
    if not names:
        raise DataError(path, None, f"cannot infer labels: no {column!r} values; give them with --labels a,b,c")
    return sort_labels(names)


def build_examples(spec: TaskSpec, rows, path: Path, split: str, bad: BadRows) -> list[Example]:
    """Examples from (line, text, pair, raw label) rows; a label is optional only in test."""
    examples = []
    for line, text, pair, raw in rows:
        try:
            if raw is None and not split.startswith("test"):
                raise DataError(path, line, f"no label in the {split!r} split")
            label = None if raw is None else label_value(spec, raw, path, line)
            text = require_text(text, path, line)
            pair = None if pair is None else require_text(pair, path, line, "text pair")
        except DataError as err:
            bad.handle(err)
            continue
        examples.append(Example(text, pair, label, f"{path}:{line}"))
    if not examples:
        raise DataError(path, None, f"the {split!r} split has no rows{_so_far(bad)}")
    return examples
