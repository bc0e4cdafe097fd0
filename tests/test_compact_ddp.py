"""--compact-embeddings under 2 CPU processes (gloo, torchrun + accelerate) trains the model the
dense matrix trains there: the compact rows are a parameter of the DDP module, so their
gradients are all-reduced like every other weight's."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

HERE = Path(__file__).parent
WORDS = "bert.embeddings.word_embeddings.weight"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_processes(teacher: Path, data: Path, out: Path, compact: bool) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
           str(HERE / "compact_ddp_worker.py"), str(teacher), str(data), str(out), "1" if compact else "0"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 or _teardown_crash_after_the_run(proc, out), proc.stderr[-3000:]
    return load_file(str(out / "student" / "model.safetensors"))


def _teardown_crash_after_the_run(proc: subprocess.CompletedProcess, out: Path) -> bool:
    """A known, intermittent fault: after the run is complete (the main process wrote results.json
    last), the second rank is sometimes aborted or segfaults while the interpreter shuts down.
    Tolerated here so that the models are still compared; anything else fails the test."""
    rank1_at_exit = "local_rank: 1" in proc.stderr and ("exitcode: -6" in proc.stderr or "exitcode: -11" in proc.stderr)
    return rank1_at_exit and (out / "results.json").is_file()


def test_compact_embeddings_under_two_processes_give_the_dense_runs_model(tiny_teacher, toy_task_dir, tmp_path):
    dense = _two_processes(tiny_teacher, toy_task_dir, tmp_path / "dense", compact=False)
    compact = _two_processes(tiny_teacher, toy_task_dir, tmp_path / "compact", compact=True)
    assert dense.keys() == compact.keys()
    for key in dense:
        assert torch.allclose(dense[key], compact[key], rtol=1e-5, atol=1e-7), key
    # the word embeddings trained (so the equality is not two untouched copies of the teacher's rows)
    start = load_file(str(tiny_teacher / "model.safetensors"))[WORDS]
    assert float((dense[WORDS] - start).abs().max()) > 1e-4
