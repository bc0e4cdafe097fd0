"""The files of one teacher-cache entry and their checks, without torch (``cache list`` reads them).

An entry is a folder holding ``features.safetensors`` and ``meta.json``; the meta records the
features file's size (``bytes``) and sha256 (``sha256``), written by ``distill/cache.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

FEATURES_FILE = "features.safetensors"
META_FILE = "meta.json"


def file_digest(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes, read in 1 MB pieces."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_meta(folder: Path) -> dict:
    """An entry's ``meta.json``; ValueError naming the file when it is missing or not a JSON object."""
    path = folder / META_FILE
    if not path.is_file():
        raise ValueError(f"{path} is missing")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON ({err})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path} is not a JSON object")
    return meta


def check_entry(folder: str | os.PathLike, *, checksum: bool = True) -> str | None:
    """Why the cache entry ``folder`` cannot be used, or None when it is whole: its meta is
    read, the features file's size compared and (``checksum``) its sha256 recomputed."""
    folder = Path(folder)
    try:
        meta = read_meta(folder)
    except ValueError as err:
        return str(err)
    file = folder / FEATURES_FILE
    if not file.is_file():
        return f"{file} is missing"
    size, digest = meta.get("bytes"), meta.get("sha256")
    if not isinstance(size, int) or not isinstance(digest, str):
        return f"{folder / META_FILE} records no size and checksum (written by an older bertdistill)"
    actual = file.stat().st_size
    if actual != size:
        return f"{file} has {actual:,} bytes, {size:,} were written"
    if checksum and file_digest(file) != digest:
        return f"{file} does not match its checksum (bytes changed since it was written)"
    return None
