"""Checks that an output folder or file can be written, made before any work.

A run that trains for an hour and then cannot write its results has wasted the hour. These
checks create what is missing (parent folders, a probe file), write to it, and remove what
they created, so that a read-only disk, a missing permission or a parent that is a file is
reported at once: a ValueError naming the flag and the path (exit 2 in the CLI).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def check_writable_folder(path: str | os.PathLike, flag: str = "--output") -> None:
    """``path`` is (or can be made) a folder in which files can be created and written."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{flag} {path}: this is an existing file; give a folder")
    created = _make_parents(folder, flag, path)
    try:
        _probe(folder, flag, path)
    finally:
        _remove(created)


def check_writable_file(path: str | os.PathLike, flag: str = "--output") -> None:
    """``path`` is (or can be made) a file that can be written; an existing file is left as it is."""
    file = Path(path)
    if file.is_dir():
        raise ValueError(f"{flag} {path}: this is a folder; give a file name")
    created = _make_parents(file.parent, flag, path)
    try:
        if file.exists():
            try:
                with open(file, "ab"):  # append mode: opened for writing, nothing changed
                    pass
            except OSError as err:
                raise ValueError(f"{flag} {path}: cannot write this file ({_reason(err)})") from None
        else:
            _probe(file.parent, flag, path)
    finally:
        _remove(created)


def _make_parents(folder: Path, flag: str, given) -> list[Path]:
    """Create ``folder`` and its missing parents; returns those created, deepest last."""
    missing = []
    current = folder
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    if current.exists() and not current.is_dir():
        raise ValueError(f"{flag} {given}: {current} is a file, so no folder can be made inside it")
    created = []
    for part in reversed(missing):
        try:
            part.mkdir()
        except FileExistsError:
            continue  # made meanwhile by another process: not ours to remove
        except OSError as err:
            _remove(created)
            raise ValueError(f"{flag} {given}: cannot create the folder {part} ({_reason(err)})") from None
        created.append(part)
    return created


def _probe(folder: Path, flag: str, given) -> None:
    """Create, write and remove a file in ``folder``."""
    try:
        fd, name = tempfile.mkstemp(prefix=".bertdistill-write-check-", dir=folder)
    except OSError as err:
        raise ValueError(f"{flag} {given}: cannot write in {folder} ({_reason(err)})") from None
    try:
        os.write(fd, b"ok")
    except OSError as err:
        raise ValueError(f"{flag} {given}: cannot write in {folder} ({_reason(err)})") from None
    finally:
        os.close(fd)
        os.unlink(name)


def _remove(created: list[Path]) -> None:
    for part in reversed(created):
        try:
            part.rmdir()
        except OSError:
            pass  # something else was put there meanwhile


def _reason(err: OSError) -> str:
    return err.strerror or type(err).__name__
