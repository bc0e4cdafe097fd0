"""Data-parallel training with 2 CPU processes (gloo) through torchrun + accelerate.

The two ranks train on different batches. With gradients all-reduced, both ranks end with
identical parameters, equal to one process that accumulates the same two batches per step
(the same effective batch). The same launch also trains the bare module without DDP
(gradients never synchronised): its ranks end up different from each other and from the
single process, which shows that the comparison would catch a missing synchronisation.

A second launch (tests/ddp_resume_worker.py) checks what the processes log (the mean over
the window and over the ranks, whose data differ) and that a run stopped after a checkpoint
and resumed ends with the uninterrupted run's weights, bit for bit, on both ranks, while
restoring rank 0's RNG state on every rank does not.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import ddp_resume_worker
import ddp_train
from bertdistill.training.checkpoint import latest_checkpoint, load_checkpoint
from bertdistill.training.engine import TrainConfig, TrainLoop

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


# ---- logging and exact resume across processes (tests/ddp_resume_worker.py) ---------------------------
def _launch(worker: str, *args: str) -> None:
    src = str(Path(ddp_train.__file__).resolve().parents[1] / "src")
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([src, str(TESTS), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(TESTS / worker), *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def resume_runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ddp_resume")
    _launch("ddp_resume_worker.py", str(root))
    return root


def _rows(run: Path) -> list[dict]:
    return [r for r in map(json.loads, (run / "log.jsonl").read_text().splitlines()) if "loss" in r]


def _weights(run: Path, rank: int) -> dict:
    return load_file(str(run / f"weights_rank{rank}.safetensors"))


def test_logged_loss_is_the_mean_over_the_window_and_over_processes(resume_runs):
    straight = resume_runs / "straight"
    seen = [json.loads((straight / f"seen_rank{r}.json").read_text()) for r in (0, 1)]
    assert len(seen[0]) == len(seen[1]) == 8  # one loss per optimizer step on each rank
    rows = _rows(straight)
    assert [r["step"] for r in rows] == [3, 6, 8]
    rank0_alone = []
    for row, first in zip(rows, (0, 3, 6)):
        window = slice(first, row["step"])  # steps first+1 .. step
        per_rank = [sum(s[window]) / len(s[window]) for s in seen]
        assert row["loss"] == pytest.approx(sum(per_rank) / 2, rel=1e-12, abs=1e-12)
        rank0_alone.append(abs(row["loss"] - per_rank[0]))
        # the parts go through the same means: they combine to the total as each step's do (float32 sums)
        parts = row["parts"]
        assert set(parts) == {"mse", "l2"}
        assert parts["mse"] + ddp_resume_worker.L2_WEIGHT * parts["l2"] == pytest.approx(row["loss"], rel=1e-6)
    assert max(rank0_alone) > 1e-3  # the ranks' data differ: logging rank 0 alone would fail the check


def test_resumed_two_process_run_equals_the_uninterrupted_one(resume_runs):
    straight, resumed, one_rng = (resume_runs / name for name in ("straight", "resumed", "one_rng"))
    start = _initial_weights()
    for rank in (0, 1):
        ref = _weights(straight, rank)
        assert _max_diff(ref, start) > 1e-2  # training moved the weights
        got = _weights(resumed, rank)
        for name in ref:
            assert torch.equal(ref[name], got[name]), f"rank {rank}: {name} differs after the resume"
        # each rank restored its own RNG: with rank 0's state on both ranks the run goes elsewhere
        assert _max_diff(ref, _weights(one_rng, rank)) > 1e-6
    seen = json.loads((resumed / "seen_rank0.json").read_text())
    assert len(seen) == 6  # the fresh loop started at the step-2 checkpoint: 6 steps redone
    # the log of the resumed run: rows equal the uninterrupted run's, the window across the resume included
    strip = lambda rows: [(r["step"], r["loss"], r["parts"]) for r in rows]  # noqa: E731
    assert strip(_rows(resumed)) == strip(_rows(straight))
    ckpt = latest_checkpoint(resumed / "checkpoints")
    assert sorted(p.name for p in ckpt.glob("rng_rank*.pt")) == ["rng_rank0.pt", "rng_rank1.pt"]


def test_a_two_process_checkpoint_is_refused_by_one_process(resume_runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(resume_runs / "straight", run)
    torch.manual_seed(0)
    cfg = TrainConfig(max_steps=8, batch_size=4, lr=0.05, warmup_ratio=0.0, seed=3, save_every=2, log_every=3)
    loop = TrainLoop(ddp_resume_worker.SeqNet(), ddp_resume_worker.features(), ddp_resume_worker.collate,
                     lambda m, b: (m(b["x"]).sum(), {}), config=cfg, output_dir=run)
    with pytest.raises(ValueError, match=r"world_size \(torchrun --nproc_per_node\): 2\b.*\b1\b"):
        loop.train()
    # load_checkpoint itself (it does not read run.json) refuses it from its RNG files
    ckpt = latest_checkpoint(run / "checkpoints")
    with pytest.raises(ValueError, match=r"written by 2 process\(es\) and this run has 1"):
        load_checkpoint(ckpt, model=loop.raw_module, optimizer=loop.optimizer, scheduler=loop.scheduler)


def _initial_weights() -> dict:
    torch.manual_seed(0)
    return {k: v.detach() for k, v in ddp_resume_worker.SeqNet().state_dict().items()}
