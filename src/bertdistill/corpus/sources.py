"""Where raw text comes from: text files, folders of them, or a task's sentences (``task:sst2``).

Every source is checked before any tokenisation: a missing file raises FileNotFoundError,
an empty file, one with only blank lines, or a binary one (NUL byte or invalid UTF-8 in its
first KB) a DataError naming it. Files are streamed line by line (one paragraph or document
per line, blank lines skipped); a task's sentences are few enough to be read whole.

``task:NAME[:SPLIT]`` reads a registered task through ``bertdistill.data.load_task`` (its
offline default data): ``task:sst2`` is the SST-2 train phrases, ``task:rotten_tomatoes``
the Rotten Tomatoes train reviews. A folder gives its ``.txt``/``.raw``/``.tokens`` files
(``bertdistill.data.corpus.corpus_files``), e.g. WikiText-2's raw valid and test files.
"""

from __future__ import annotations

import codecs
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from ..data.corpus import corpus_files
from ..data.errors import DataError

HEAD_BYTES = 1024
TASK_PREFIX = "task:"
WHITESPACE = b" \t\r\n\x0b\x0c"


def check_text_file(path: Path) -> None:
    """DataError unless ``path`` looks like UTF-8 text with at least one non-blank line."""
    if not path.exists():
        raise FileNotFoundError(f"--text {path}: no such file")
    if not path.is_file():
        raise DataError(path, None, "not a regular file")
    if path.stat().st_size == 0:
        raise DataError(path, None, "empty file: no text to prepare")
    with open(path, "rb") as f:
        head = f.read(HEAD_BYTES)
        nul = head.find(b"\x00")
        if nul >= 0:
            raise DataError(path, None, f"binary file (NUL byte at offset {nul}), not UTF-8 text")
        try:
            codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        except UnicodeDecodeError as err:
            raise DataError(path, None, f"not UTF-8 text (invalid byte at offset {err.start})") from None
        chunk = head
        while chunk:
            if chunk.strip(WHITESPACE):
                return
            chunk = f.read(1 << 20)
    raise DataError(path, None, "only blank lines: no text to prepare")


class FileSource:
    """A UTF-8 text file, streamed: one document per non-blank line."""

    def __init__(self, path: Path):
        self.path = path
        self.name = str(path)

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    def fingerprint(self) -> dict:
        st = self.path.stat()
        return {"source": str(self.path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}

    def lines(self) -> Iterator[tuple[str, int]]:
        """(stripped non-blank line, bytes read since the previous yield)."""
        pending = 0
        with open(self.path, "rb") as f:
            for number, raw in enumerate(f, 1):
                pending += len(raw)
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise DataError(self.path, number, f"not UTF-8 text ({err.reason} at byte {err.start})") from None
                text = text.lstrip("\ufeff").strip() if number == 1 else text.strip()
                if text:
                    yield text, pending
                    pending = 0


class TaskSource:
    """The texts of one split of a registered task (``task:sst2``, ``task:rotten_tomatoes:dev``)."""

    def __init__(self, spec: str):
        parts = spec[len(TASK_PREFIX):].split(":")
        if not parts[0] or len(parts) > 2:
            raise ValueError(f"--text {spec!r}: write task:NAME or task:NAME:SPLIT (e.g. task:sst2)")
        from ..data import load_task

        self.name = spec
        split = parts[1] if len(parts) == 2 else "train"
        data = load_task(parts[0], splits=[split])
        if split not in data.splits:
            raise ValueError(f"--text {spec!r}: task {parts[0]!r} has no {split!r} split")
        self.texts = []
        for example in data.splits[split]:
            for text in (example.text, example.text_pair):
                text = " ".join(text) if isinstance(text, list) else (text or "")
                if text.strip():
                    self.texts.append(text.strip())
        if not self.texts:
            raise DataError(spec, None, "the task split has no text")
        digest = hashlib.sha256("\n".join(self.texts).encode("utf-8")).hexdigest()
        self._fingerprint = {"source": spec, "texts": len(self.texts), "sha256": digest}
        self.size = sum(len(t.encode("utf-8")) + 1 for t in self.texts)

    def fingerprint(self) -> dict:
        return dict(self._fingerprint)

    def lines(self) -> Iterator[tuple[str, int]]:
        for text in self.texts:
            yield text, len(text.encode("utf-8")) + 1


def resolve_sources(texts) -> list[FileSource | TaskSource]:
    """Sources for ``--text`` values (files, folders, ``task:`` specs), each checked; none is empty."""
    if isinstance(texts, (str, os.PathLike)):
        texts = [texts]
    if not texts:
        raise ValueError("--text: give at least one text file, folder or task:NAME")
    sources: list[FileSource | TaskSource] = []
    for item in texts:
        if isinstance(item, str) and item.startswith(TASK_PREFIX):
            sources.append(TaskSource(item))
            continue
        path = Path(item).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"--text {item}: no such file or folder")
        for file in corpus_files(path) if path.is_dir() else [path]:
            check_text_file(file)
            sources.append(FileSource(file))
    return sources
