"""Data-parallel distillation with 2 CPU processes (gloo) through torchrun + accelerate."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def test_two_process_distillation_learns(tiny_teacher, toy_task_dir, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           "-m", "bertdistill.cli", "distill", "--teacher", str(tiny_teacher), "--task", "tsv",
           "--data", str(toy_task_dir), "--recipe", "distilbert", "--output", str(out),
           "--cache-dir", str(tmp_path / "cache"), "--epochs", "6", "--lr", "1e-3", "--batch-size", "8"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "results.json").read_text())
    assert result["train"]["processes"] == 2
    assert result["dev"]["student"]["accuracy"] > 0.8, result["dev"]
