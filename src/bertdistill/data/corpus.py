"""Raw text corpora: one paragraph per line, for masked-LM and distillation."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import DataError
from .tabular import numbered_lines, require

SUFFIXES = (".txt", ".raw", ".tokens")


def corpus_files(path: Path, split: str | None = None) -> list[Path]:
    """The text files of ``path``: itself, or a directory's ``.txt``/``.raw``/``.tokens`` files.

    ``split`` (e.g. ``"valid"``) keeps only files named like ``wiki.valid.raw`` or
    ``valid.txt``, so a WikiText directory can be read one split at a time.
    """
    require(path)
    if path.is_file():
        return [path]
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in SUFFIXES)
    if split is not None:
        files = [p for p in files if split in p.name.split(".")[:-1]]
    if not files:
        which = f" for split {split!r}" if split else ""
        raise DataError(path, None, f"no {' / '.join(SUFFIXES)} files here{which}")
    return files


def load_corpus(path: str | os.PathLike, *, split: str | None = None) -> list[str]:
    """Non-blank lines (stripped) of a text file or of a directory's text files, in order.

    WikiText headings (`` = Title = ``) are text and are kept; blank lines are skipped.
    """
    lines: list[str] = []
    for file in corpus_files(Path(path), split):
        lines.extend(s for s in (line.strip() for _, line in numbered_lines(file)) if s)
    if not lines:
        raise DataError(path, None, "the corpus has no text (only blank lines)")
    return lines
