"""GLUE task directories: one small layout table per task, read by one function.

Files are split on TAB with no quoting (several GLUE files hold unbalanced ``"``) and
read as ``utf-8-sig`` (MRPC starts with a BOM). Columns are found by header name; CoLA's
train/dev files have no header (its test file has one), so its layout names their columns
and a first line without the text column's name is data. Each split lists
candidate files, the first one present wins: labelled test copies come before GLUE's
unlabelled ``test.tsv``. A test file without the label column gives ``label=None``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError
from .examples import Example, TaskSpec
from .tabular import BadRows, build_examples, check_width, column_index, require, tsv_lines


@dataclass(frozen=True)
class Layout:
    """Where a GLUE task keeps its splits and which columns hold text, pair and label."""

    files: dict[str, tuple[str, ...]]
    text: str
    label: str
    pair: str | None = None
    names: tuple[str, ...] | None = None  # the columns of files without a header row


def _files(test: tuple[str, ...] = ("test.tsv",)) -> dict[str, tuple[str, ...]]:
    return {"train": ("train.tsv",), "dev": ("dev.tsv",), "test": test}


LAYOUTS: dict[str, Layout] = {
    "sst2": Layout(_files(("test_with_labels.derived.tsv", "test.tsv")), "sentence", "label"),
    "cola": Layout(_files(), "sentence", "label", names=("source", "label", "mark", "sentence")),
    "mrpc": Layout(
        _files(("msr_paraphrase_test.txt", "test.tsv")), "#1 String", "Quality", "#2 String"
    ),
    "rte": Layout(_files(), "sentence1", "label", "sentence2"),
    "wnli": Layout(_files(), "sentence1", "label", "sentence2"),
    "stsb": Layout(_files(("test_with_labels.tsv", "test.tsv")), "sentence1", "score", "sentence2"),
    "qnli": Layout(_files(), "question", "label", "sentence"),
    "qqp": Layout(_files(), "question1", "is_duplicate", "question2"),
    "mnli": Layout(
        {
            "train": ("train.tsv",),
            "dev": ("dev_matched.tsv",),
            "dev_mismatched": ("dev_mismatched.tsv",),
            "test": ("test_matched.tsv",),
            "test_mismatched": ("test_mismatched.tsv",),
        },
        "sentence1",
        "gold_label",
        "sentence2",
    ),
}


def glue_files(name: str, path: Path, wanted=None) -> dict[str, Path]:
    """Split name -> the file that holds it in the GLUE directory ``path``."""
    require(path)
    if not path.is_dir():
        raise DataError(path, None, f"{name}: expected a GLUE task directory, not a file")
    layout = LAYOUTS[name]
    files = {}
    for split, candidates in layout.files.items():
        found = [path / c for c in candidates if (path / c).is_file()]
        if found:
            files[split] = found[0]
        elif wanted is not None and split in wanted:
            looked = list(candidates)
            raise DataError(path, None, f"{name}: no {split!r} split (looked for {looked})")
    if wanted is not None:
        unknown = set(wanted) - set(layout.files)
        if unknown:
            known = list(layout.files)
            raise DataError(path, None, f"{name} has no split {sorted(unknown)}; it has {known}")
        files = {s: f for s, f in files.items() if s in wanted}
    if not files:
        expected = sorted({c for cs in layout.files.values() for c in cs})
        raise DataError(path, None, f"{name}: none of the split files {expected} is here")
    return files


def read_glue(spec: TaskSpec, path: Path, bad: BadRows, wanted=None) -> dict[str, list[Example]]:
    """Read every split present in a GLUE task directory."""
    layout = LAYOUTS[spec.name]
    return {
        split: build_examples(spec, _rows(layout, file, split, bad), file, split, bad)
        for split, file in glue_files(spec.name, path, wanted).items()
    }


def _rows(layout: Layout, path: Path, split: str, bad: BadRows):
    """(line, text, pair, raw label or None) of each data row of one GLUE file."""
    lines = tsv_lines(path)
    first = next(lines, None)
    if first is None:
        raise DataError(path, None, "empty file")
    header = [h.strip() for h in first[1]]
    if layout.names and layout.text not in header:  # no header row: the first line is data
        header, lines = list(layout.names), itertools.chain([first], lines)
    text = column_index(header, layout.text, path, "text")
    pair = column_index(header, layout.pair, path, "text pair") if layout.pair else None
    label = None  # a test file may come without labels
    if layout.label in header or not split.startswith("test"):
        label = column_index(header, layout.label, path, "label")
    rows = []
    for line, fields in lines:
        try:
            check_width(fields, len(header), path, line)
        except DataError as err:
            bad.handle(err)
            continue
        rows.append((line, *(None if i is None else fields[i] for i in (text, pair, label))))
    return rows
