"""CoNLL-2003 NER files: one token per line, the NER tag in the last column.

A directory holds ``train.txt``/``valid.txt``/``test.txt`` (IOB2 copies) or the original
``eng.train``/``eng.testa``/``eng.testb`` (IOB1 tags); splits are named train/dev/test.
Tags are always converted IOB1 -> IOB2 (an ``I-X`` that starts an entity becomes
``B-X``), which leaves IOB2 data unchanged. ``-DOCSTART-`` lines and blank lines end a
sentence; the original files' quirk (first ``-DOCSTART-`` moved to the end, no final
newline) needs nothing special. A bad line makes its whole sentence bad.
"""

from __future__ import annotations

from pathlib import Path

from .errors import DataError
from .examples import Example, TaskSpec
from .tabular import BadRows, numbered_lines, require

FILES = {
    "train": ("train.txt", "eng.train"),
    "dev": ("valid.txt", "dev.txt", "eng.testa"),
    "test": ("test.txt", "eng.testb"),
}


def to_iob2(tags: list[str]) -> list[str]:
    """IOB1 (or IOB2) tags as IOB2: every entity starts with ``B-``."""
    out = []
    for i, tag in enumerate(tags):
        if tag.startswith("I-"):
            before = out[i - 1] if i else "O"
            if before[2:] != tag[2:]:  # not the same entity type as the tag before
                tag = "B-" + tag[2:]
        out.append(tag)
    return out


def read_sentences(path: Path, labels: list[str], bad: BadRows) -> list[Example]:
    """Sentences of one CoNLL file: text = words, label = IOB2 tag ids."""
    sentences: list[Example] = []
    words: list[str] = []
    tags: list[str] = []
    start = 0
    error: DataError | None = None

    def close() -> None:
        nonlocal words, tags, error
        if error is not None:
            bad.handle(error)
        elif words:
            ids = [labels.index(t) for t in to_iob2(tags)]
            sentences.append(Example(words, None, ids, f"{path}:{start}"))
        words, tags, error = [], [], None

    for number, line in numbered_lines(path):
        fields = line.split()
        if not fields or fields[0] == "-DOCSTART-":
            close()
            continue
        if error is not None:
            continue  # the rest of a bad sentence
        if not words:
            start = number
        if len(fields) < 2:
            error = DataError(path, number, f"missing tag: {line.strip()!r} has 1 column")
        elif fields[-1] not in labels:
            error = DataError(path, number, f"unknown tag {fields[-1]!r}; known tags: {labels}")
        else:
            words.append(fields[0])
            tags.append(fields[-1])
    close()
    if not sentences:
        raise DataError(path, None, "no sentences")
    return sentences


def read_conll(spec: TaskSpec, path: Path, bad: BadRows, wanted=None) -> dict[str, list[Example]]:
    """Read the CoNLL-2003 splits found in directory ``path`` (or one file as ``train``)."""
    require(path)
    if path.is_file():
        files = {"train": path}
    else:
        files = {}
        for split, names in FILES.items():
            found = [path / n for n in names if (path / n).is_file()]
            if found:
                files[split] = found[0]
        if not files:
            raise DataError(path, None, f"no CoNLL files here (looked for {FILES})")
    if wanted is not None:
        missing = set(wanted) - set(files)
        if missing:
            raise DataError(path, None, f"no {sorted(missing)} split here (found {sorted(files)})")
        files = {s: p for s, p in files.items() if s in wanted}
    return {split: read_sentences(file, spec.labels, bad) for split, file in files.items()}
