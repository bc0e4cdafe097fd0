"""Keep freed memory in the process (glibc malloc on Linux) during CPU training.

A distillation step frees and re-allocates the same large buffers every step: the dense
gradient of the word embeddings (vocabulary x hidden, 47 MB for BERT's 30,522 x 384),
activations, the optimizer's temporaries. glibc serves every allocation above its mmap
threshold (at most 32 MB) with a fresh ``mmap`` and returns it with ``munmap`` on free, so
each step pays page faults and the kernel's zeroing of those pages again. Turning glibc's
mmap path off and raising its trim threshold keeps those pages in the heap for reuse: the
effect that preloading tcmalloc or jemalloc gives, without an extra library. The process
keeps its peak memory instead of returning it to the system.

``--cpu-allocator keep`` (the default, ``TrainConfig.cpu_allocator``) does this;
``--cpu-allocator system`` leaves malloc as it is. The setting lasts for the process: the
first training run in it decides, and a later run asking for the other one is told so.
Elsewhere (macOS, Windows, musl) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import platform

log = logging.getLogger(__name__)

#: glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
#: freed memory kept at the top of the heap before it is given back (mallopt takes an int)
TRIM_THRESHOLD = 2**31 - 1
#: values of ``--cpu-allocator``
CPU_ALLOCATORS = ("keep", "system")

_applied: str | None = None
_asked: str | None = None


def check_cpu_allocator(mode: str) -> None:
    """ValueError naming ``--cpu-allocator`` for a value it does not take."""
    if mode not in CPU_ALLOCATORS:
        raise ValueError(f"--cpu-allocator must be {' or '.join(CPU_ALLOCATORS)}, got {mode!r}")


def keep_freed_memory(mode: str = "keep") -> str:
    """Apply ``mode`` (``keep`` or ``system``) once per process; returns what holds: ``"keep"``,
    ``"system"`` or ``"unsupported"`` (not glibc, or mallopt refused)."""
    global _applied, _asked
    check_cpu_allocator(mode)
    if _applied is not None:
        if mode != _asked:
            log.warning("--cpu-allocator %s: this process already runs with --cpu-allocator %s (an earlier "
                        "run in it set malloc up, and that lasts for the process); left as it is", mode, _asked)
        return _applied
    _asked = mode
    if mode == "system":
        _applied = "system"
        return _applied
    libc_name = platform.libc_ver()[0]
    path = ctypes.util.find_library("c") if libc_name == "glibc" else None
    if not path:
        _applied = "unsupported"
        return _applied
    libc = ctypes.CDLL(path)
    ok = libc.mallopt(M_MMAP_MAX, 0) == 1 and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    _applied = "keep" if ok else "unsupported"
    if not ok:
        log.warning("glibc mallopt refused the allocator settings; malloc left as it is")
    return _applied
