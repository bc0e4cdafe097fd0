"""One bertdistill run per output folder: an exclusive lock, held while the run writes there.

Two runs writing one ``--output`` at once would mix their checkpoints, logs and students.
A run takes an exclusive ``flock`` on ``<output>/.bertdistill.lock`` before it reads or
writes anything there, and writes who holds it (pid, host, start time, command) into the
file; a second run is refused with one line naming the first. The kernel drops the lock
when the holding process ends, however it ends (a SIGKILL included), so a killed run never
leaves a stale lock: the file stays, the lock does not. A run refused before it wrote
anything (bad data, a clash with the folder's checkpoint) takes away the folder it created
for its lock, so a typo in ``--output`` leaves no empty folder behind.

Under several processes (torchrun, accelerate launch) only the main one (``RANK`` 0) takes
the lock; the other ranks write nothing of their own into the folder. Within one process
the lock of a folder is shared: a second claim (a nested or repeated run of the same
process) reuses it, and it is released when the last holder lets go or is collected.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shlex
import sys
import time
import weakref
from pathlib import Path

from .partials import host

log = logging.getLogger(__name__)

LOCK_FILE = ".bertdistill.lock"


class RunFolderBusy(ValueError):
    """Another bertdistill run holds the folder (a user error: one line, exit code 2)."""


class RunLock:
    """An open, exclusively locked file; closing it releases the lock."""

    def __init__(self, path: Path, fd: int, what: str):
        self.path, self.what = path, what
        self._fd: int | None = fd
        self._users = 1
        self.created_folder: Path | None = None  # removed on release when it holds only the lock file
        self.remove_file = False  # remove the lock file on release (a lock file beside its target)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Let go of one claim; the lock is dropped with the last one."""
        self._users -= 1
        if self._users <= 0:
            self._close()

    def _close(self) -> None:
        if self._fd is None:
            return
        folder, empty = self.created_folder, False
        if folder is not None:
            try:
                empty = [p.name for p in folder.iterdir()] == [self.path.name]
            except OSError:
                pass
        if empty or self.remove_file:  # unlinked while still locked: a waiting run re-opens the path (lock_file)
            self.path.unlink(missing_ok=True)
        os.close(self._fd)  # closing the last descriptor drops the flock
        self._fd = None
        if empty:
            try:
                folder.rmdir()
            except OSError:  # another run created its lock file there meanwhile
                pass

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:
        try:
            self._close()
        except Exception:  # at interpreter exit the modules may be gone; the kernel drops the lock anyway
            pass


_HELD: "weakref.WeakValueDictionary[str, RunLock]" = weakref.WeakValueDictionary()


def command_line() -> str:
    """The command of this process, as the lock file records it: ``bertdistill distill ...``
    for the command line, ``python <script or -c / -m> ...`` for Python."""
    argv = list(sys.argv) or [""]
    if Path(argv[0]).name == "bertdistill":
        return shlex.join(["bertdistill", *argv[1:]])
    return shlex.join([Path(sys.executable).name, *[a for a in argv if a]])


def holder(fd: int) -> dict:
    """What the lock file open as ``fd`` says about its holder (``{}`` when not yet written)."""
    for _ in range(20):  # the holder writes right after it took the lock
        raw = os.pread(fd, 65536, 0)
        if raw:
            try:
                return json.loads(raw.decode("utf-8", "replace"))
            except ValueError:
                return {}
        time.sleep(0.05)
    return {}


def describe(info: dict) -> str:
    """``pid N, started <time>, command <command>`` (the host too when it is another machine)."""
    parts = [f"pid {info.get('pid', '?')}" + (f" on {info['host']}" if info.get("host") not in (None, host()) else "")]
    if info.get("started"):
        parts.append(f"started {info['started']}")
    if info.get("command"):
        parts.append(f"command {info['command']}")
    return ", ".join(parts) if info else "holder unknown"


def lock_file(path: str | os.PathLike, what: str, *, hint: str = "", remove_on_release: bool = False) -> RunLock:
    """Take the exclusive lock of ``path`` (created if missing) for the run ``what`` names;
    ``remove_on_release`` deletes the file when the lock is let go (a killed holder leaves it).

    Raises :class:`RunFolderBusy` (one line: ``<what> is in use by another bertdistill run
    (pid N, started ..., command ...)``) when another process holds it.
    """
    path = Path(path)
    key = str(path.resolve())
    mine = _HELD.get(key)
    if mine is not None and mine.held:
        mine._users += 1
        return mine
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info = holder(fd)
            os.close(fd)
            raise RunFolderBusy(f"{what} is in use by another bertdistill run ({describe(info)}){hint}") from None
        except OSError as err:  # a file system without locks (some network mounts): go on, unprotected
            log.warning("cannot lock %s (%s): two runs on this folder at once would not be refused", path,
                        err.strerror or err)
            break
        if same_file(fd, path):
            break
        os.close(fd)  # locked a file its holder removed on its way out: lock the path's file anew
    info = {"pid": os.getpid(), "host": host(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": command_line()}
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
    lock = RunLock(path, fd, what)
    lock.remove_file = remove_on_release
    _HELD[key] = lock
    return lock


def same_file(fd: int, path: Path) -> bool:
    """Whether the open ``fd`` is still the file at ``path``."""
    try:
        here = os.stat(path)
    except FileNotFoundError:
        return False
    there = os.fstat(fd)
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def is_main_process() -> bool:
    """Whether this is the main process of a launch (``RANK`` 0, or no launcher at all)."""
    rank = os.environ.get("RANK", "0").strip() or "0"
    return not rank.isdigit() or int(rank) == 0


def lock_run_folder(output: str | os.PathLike) -> RunLock | None:
    """Create the run folder ``output`` if needed and lock it (on the main process; other ranks
    get None). Keep the returned lock as long as the run writes there."""
    if not is_main_process():
        return None
    folder = Path(output)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    lock = lock_file(folder / LOCK_FILE, str(folder), hint="; wait for it to end or give another --output")
    if created and lock.created_folder is None:
        lock.created_folder = folder
    return lock
