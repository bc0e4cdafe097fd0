"""Errors raised for bad input data: they always name the file (and line when known)."""

from __future__ import annotations


class DataError(ValueError):
    """A problem with input data, reported as ``path:line: message``."""

    def __init__(self, path: str | None, line: int | None, message: str):
        self.path = str(path) if path is not None else None
        self.line = line
        self.message = message
        where = self.path or "<data>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}")
