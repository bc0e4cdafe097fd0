"""General distillation on 2 CPU processes (gloo) equals 1 process with the same effective batch."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from general_ddp_worker import run
from general_fixtures import prepare, save_tiny_mlm, write_text

HERE = Path(__file__).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def test_two_processes_match_one_process_and_unsynced_gradients_are_caught(tmp_path):
    teacher = save_tiny_mlm(tmp_path / "teacher", seed=0)  # no dropout: both runs compute the same
    corpus = prepare(write_text(tmp_path / "train.txt", 40, 1), str(teacher), tmp_path / "corpus")
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
           str(HERE / "general_ddp_worker.py"), str(teacher), str(corpus), str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]

    # 1 process, 2 batches accumulated per step = 2 processes x 1 batch each
    single = run(str(teacher), str(corpus), tmp_path / "single", grad_accum=2)
    start = load_file(str(teacher / "model.safetensors"))["bert.embeddings.word_embeddings.weight"]
    rank0 = load_file(str(out / "normal" / "rank0.safetensors"))
    rank1 = load_file(str(out / "normal" / "rank1.safetensors"))
    assert _max_diff(rank0, rank1) == 0.0  # DDP keeps the replicas identical
    assert _max_diff(rank0, single) < 1e-5
    moved = float((single["distilbert.embeddings.word_embeddings.weight"] - start).abs().max())
    assert moved > 1e-4  # the student (copied from the teacher) trained: the equality is not a no-op

    # the fault: without gradient all-reduce the ranks drift apart and away from the 1-process run
    bad0 = load_file(str(out / "unsynced" / "rank0.safetensors"))
    bad1 = load_file(str(out / "unsynced" / "rank1.safetensors"))
    assert _max_diff(bad0, bad1) > 1e-4
    assert _max_diff(bad0, single) > 1e-4
