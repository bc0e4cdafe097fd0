"""The CPU allocator setting: glibc's mmap path off and a high trim threshold (the default), or
malloc left alone (BERTDISTILL_ALLOCATOR=system); a wrong value is refused naming the variable.
Each case runs in a fresh interpreter, as mallopt settings last for the process."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

PROBE = """
import ctypes, json, sys
from bertdistill.training.allocator import keep_freed_memory
mode = keep_freed_memory()
# glibc reports its settings through malloc_info: the XML has no mallopt values, so read the
# effect instead: with mmap off, a 64 MB block comes from the heap (sbrk), which moves the break
libc = ctypes.CDLL(None)
libc.sbrk.restype = ctypes.c_void_p
libc.malloc.restype = ctypes.c_void_p
before = libc.sbrk(0)
block = libc.malloc(64 << 20)
after = libc.sbrk(0)
libc.free(ctypes.c_void_p(block))
after_free = libc.sbrk(0)
print(json.dumps({"mode": mode, "heap_grew": after - before, "heap_after_free": after_free - before}))
"""


def _probe(env_value: str | None) -> dict:
    import json
    import os

    env = {k: v for k, v in os.environ.items() if k != "BERTDISTILL_ALLOCATOR"}
    if env_value is not None:
        env["BERTDISTILL_ALLOCATOR"] = env_value
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_keep_serves_large_blocks_from_the_heap_and_keeps_them_after_free():
    got = _probe(None)
    assert got["mode"] == "keep"
    assert got["heap_grew"] >= 64 << 20  # not an mmap of its own
    assert got["heap_after_free"] >= 64 << 20  # freed, but not trimmed back to the system


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_system_leaves_malloc_alone():
    got = _probe("system")
    assert got["mode"] == "system"
    assert got["heap_grew"] < 64 << 20  # glibc's default: a block this size is its own mmap


def test_unknown_mode_is_refused(monkeypatch):
    from bertdistill.training import allocator

    monkeypatch.setenv("BERTDISTILL_ALLOCATOR", "tcmalloc")
    with pytest.raises(ValueError, match="BERTDISTILL_ALLOCATOR"):
        allocator.allocator_mode()
    # refused when the run's settings are checked, before any data or model is read
    from bertdistill.training.engine import TrainConfig

    with pytest.raises(ValueError, match="BERTDISTILL_ALLOCATOR"):
        TrainConfig()
