"""--cpu-allocator: glibc's mmap path off and a high trim threshold (keep, the default), or
malloc left alone (system); a wrong value is refused naming the option. Each case runs in a
fresh interpreter, as mallopt settings last for the process."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

PROBE = """
import ctypes, json, sys
from bertdistill.training.allocator import keep_freed_memory
mode = keep_freed_memory(sys.argv[1]) if len(sys.argv) > 1 else keep_freed_memory()
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


def _probe(mode: str | None) -> dict:
    import json

    done = subprocess.run([sys.executable, "-c", PROBE, *([mode] if mode else [])], capture_output=True, text=True,
                          timeout=120)
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


def test_unknown_mode_is_refused():
    from bertdistill.training import allocator

    with pytest.raises(ValueError, match="--cpu-allocator must be keep or system, got 'tcmalloc'"):
        allocator.keep_freed_memory("tcmalloc")
    # refused when the run's settings are checked, before any data or model is read
    from bertdistill.training.engine import TrainConfig

    with pytest.raises(ValueError, match="--cpu-allocator"):
        TrainConfig(cpu_allocator="tcmalloc")


RUN_PROBE = """
import ctypes, json, sys
from bertdistill.training.engine import TrainConfig, make_accelerator
from bertdistill.training import allocator
make_accelerator(TrainConfig(cpu_allocator=sys.argv[1]))
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
block = libc.malloc(64 << 20)
heap = [line.split()[0] for line in open("/proc/self/maps") if line.rstrip().endswith("[heap]")][0]
low, high = (int(x, 16) for x in heap.split("-"))
print(json.dumps({"mode": allocator._applied, "in_heap": low <= block < high}))
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
@pytest.mark.parametrize("mode, in_heap", [("system", False), ("keep", True)])
def test_the_run_s_setting_reaches_malloc(mode, in_heap):
    """make_accelerator applies TrainConfig.cpu_allocator: with keep a 64 MB block is served from
    the heap, with system it is an mmap of its own (outside the [heap] mapping)."""
    import json

    done = subprocess.run([sys.executable, "-c", RUN_PROBE, mode], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got == {"mode": mode, "in_heap": in_heap}
