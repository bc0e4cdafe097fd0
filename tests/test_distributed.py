"""Data-parallel training with 2 CPU processes (gloo) through torchrun + accelerate.

The two ranks train on different batches. With gradients all-reduced, both ranks end with
identical parameters, equal to one process that accumulates the same two batches per step
(the same effective batch). The same launch also trains the bare module without DDP
(gradients never synchronised): its ranks end up different from each other and from the
single process, which shows that the comparison would catch a missing synchronisation.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

import ddp_train

TESTS = Path(__file__).parent


def _params(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def _max_diff(a: dict, b: dict) -> float:
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def test_two_processes_equal_one_process_with_the_same_effective_batch(tmp_path):
    src = str(Path(ddp_train.__file__).resolve().parents[1] / "src")
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(TESTS / "ddp_train.py"), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    ddp_train.run(tmp_path / "single", grad_accum=2, unsynced=False)
    single = _params(tmp_path / "single" / "rank0.pt")
    torch.manual_seed(0)
    start = {k: v.detach() for k, v in ddp_train.Net().state_dict().items()}
    assert single["steps"] == 8 and single["processes"] == 1
    assert _max_diff(single["params"], start) > 1e-2  # training moved the weights

    r0, r1 = (_params(tmp_path / "synced" / f"rank{r}.pt") for r in (0, 1))
    assert r0["processes"] == r1["processes"] == 2 and r0["steps"] == r1["steps"] == 8
    assert _max_diff(r0["params"], r1["params"]) == 0.0
    assert _max_diff(r0["params"], single["params"]) < 1e-5

    u0, u1 = (_params(tmp_path / "unsynced" / f"rank{r}.pt") for r in (0, 1))
    assert _max_diff(u0["params"], u1["params"]) > 1e-3
    assert _max_diff(u0["params"], single["params"]) > 1e-3
