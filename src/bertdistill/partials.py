"""Temporary folders that a killed process leaves behind, named so that the next run can tell.

A folder being written for ``target`` is ``.<target name>.partial-<host>-<pid>`` beside it;
it becomes ``target`` by a rename once complete. A process killed half-way (SIGKILL, power
loss) leaves its partial folder; a later writer of the same ``target`` removes the partial
folders whose process is gone (same host, pid no longer running). Used by the teacher cache
(``distill/cache.py``) and by ``export`` (``export/package.py``).
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

MARK = ".partial-"


def host() -> str:
    """This machine's name, as partial folders and run locks record it."""
    return socket.gethostname() or "localhost"


def partial_path(target: str | os.PathLike) -> Path:
    """Where this process writes ``target`` before renaming it into place."""
    target = Path(target)
    return target.parent / f".{target.name}{MARK}{host()}-{os.getpid()}"


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this machine (one of another user counts as running)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner(path: Path, target: Path) -> tuple[str, int] | None:
    """``(host, pid)`` of a partial folder of ``target``, or None when ``path`` is not one."""
    prefix = f".{target.name}{MARK}"
    if not path.name.startswith(prefix):
        return None
    who, sep, pid = path.name[len(prefix):].rpartition("-")
    if not sep or not pid.isdigit():
        return None
    return who, int(pid)


def stale_partials(target: str | os.PathLike, *, everyone: bool = False) -> list[Path]:
    """The partial folders of ``target`` left by processes that are gone; with ``everyone`` (the
    caller holds ``target``'s lock, so no other writer can be running), every other one too."""
    target = Path(target)
    if not target.parent.is_dir():
        return []
    mine = partial_path(target)
    found = []
    for path in target.parent.iterdir():
        who = owner(path, target)
        if who is None or path == mine:
            continue
        if everyone or (who[0] == host() and not pid_alive(who[1])):
            found.append(path)
    return sorted(found)


def remove_stale_partials(target: str | os.PathLike, *, everyone: bool = False) -> list[Path]:
    """Delete :func:`stale_partials` of ``target``; returns what was removed."""
    removed = []
    for path in stale_partials(target, everyone=everyone):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed
