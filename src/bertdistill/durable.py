"""Durable file primitives shared by checkpoints and corpus shards: fsync a file or a folder.

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
