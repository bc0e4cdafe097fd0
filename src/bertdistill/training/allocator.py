"""Keep freed memory in the process (glibc malloc on Linux) during CPU training.

A distillation step frees and re-allocates the same large buffers every step: the dense
gradient of the word embeddings (vocabulary x hidden, 47 MB for BERT's 30,522 x 384),
activations, the optimizer's temporaries. glibc serves every allocation above its mmap
threshold (at most 32 MB) with a fresh ``mmap`` and returns it with ``munmap`` on free, so
each step pays page faults and the kernel's zeroing of those pages again (on the SST-2
step, profiled: ``fill_`` of the embedding gradient 11 % of a bf16 step, ``zero_grad``
3 %). Turning glibc's mmap path off and raising its trim threshold keeps those pages in
the heap for reuse: the effect that preloading tcmalloc or jemalloc gives, without an
extra library. The process keeps its peak memory instead of returning it to the system.

``BERTDISTILL_ALLOCATOR=system`` leaves malloc as it is. Elsewhere (macOS, Windows, musl)
this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import platform

log = logging.getLogger(__name__)

#: glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
#: freed memory kept at the top of the heap before it is given back (mallopt takes an int)
TRIM_THRESHOLD = 2**31 - 1
ENV = "BERTDISTILL_ALLOCATOR"
MODES = ("keep", "system")

_applied: str | None = None


def allocator_mode() -> str:
    mode = os.environ.get(ENV, "keep").strip().lower() or "keep"
    if mode not in MODES:
        raise ValueError(f"${ENV} must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def keep_freed_memory() -> str:
    """Apply ``$BERTDISTILL_ALLOCATOR`` (default ``keep``) once per process; returns what holds:
    ``"keep"``, ``"system"`` or ``"unsupported"`` (not glibc)."""
    global _applied
    mode = allocator_mode()
    if _applied is not None:
        return _applied
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
