"""Durable file primitives shared by checkpoints and corpus shards: fsync a file or a folder,
and the error a failed write (a full disk) ends a run with.

A rename is only atomic and durable once the renamed file and its folder are fsynced; both
the checkpoint writer (``training/checkpoint.py``) and the shard writer (``corpus/shards.py``)
build their write sequences from these two calls.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_file(path: str | Path) -> None:
    """Flush ``path``'s content to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | Path) -> None:
    """Make a rename / creation inside ``path`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class DiskWriteError(OSError):
    """Writing a folder failed (disk full, quota, lost mount): one line for the user, who can
    free space and run the same command again. The partial folder is already removed.

    An ``OSError``, so the command line reports it as bad input (one line, exit code 2);
    ``errno`` is the cause's (``errno.ENOSPC`` for a full disk).
    """

    def __init__(self, message: str, errno: int | None = None):
        super().__init__(message)
        self.errno = errno

    @classmethod
    def writing(cls, what: str, folder: str | Path, cause: OSError, kept: str) -> "DiskWriteError":
        """``could not write <what> <folder>: <cause>; <kept>``."""
        reason = cause.strerror or " ".join(str(cause).split()) or type(cause).__name__
        return cls(f"could not write {what} {folder}: {reason}; {kept}", cause.errno)
