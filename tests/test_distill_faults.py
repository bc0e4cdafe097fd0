"""A tiny ``bertdistill distill`` run hit by a full disk or killed at random instants, then run
again with the same command, ends with the student of a run that was never interrupted,
byte for byte (its weights file, its last checkpoint, its log's losses).

Each run is a separate process started through tests/cli_with_fault.py, which can fail the
N-th checkpoint or model write (``OSError(ENOSPC)``, or half a file written and SIGKILL).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bertdistill.training.checkpoint import checkpoint_step, latest_checkpoint

HERE = Path(__file__).parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
STEPS, SAVE_EVERY, EVAL_EVERY = 30, 3, 10


def _command(teacher: Path, task: Path, out: Path, fault: tuple[str, str, int] = ("kill", "checkpoint", 0)) -> list:
    kind, writer, nth = fault
    return [sys.executable, str(HERE / "cli_with_fault.py"), kind, writer, str(nth), "distill",
            "--teacher", str(teacher), "--task", "tsv", "--data", str(task), "--output", str(out),
            "--max-steps", str(STEPS), "--save-every", str(SAVE_EVERY), "--eval-every", str(EVAL_EVERY),
            "--batch-size", "8", "--seed", "3", "--cache-dir", str(out.parent / "cache"), "--latency-runs", "0"]


def _finish(cmd: list) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)


def _losses(out: Path) -> list:
    rows = map(json.loads, (out / "log.jsonl").read_text().splitlines())
    return [(r["step"], r["loss"], r["parts"]) for r in rows if "loss" in r]


def _assert_same_result(out: Path, straight: Path) -> None:
    student = "student/model.safetensors"
    assert (out / student).read_bytes() == (straight / student).read_bytes()
    ours, theirs = (latest_checkpoint(p / "checkpoints") for p in (out, straight))
    assert checkpoint_step(ours) == checkpoint_step(theirs) == STEPS
    assert (ours / "model.safetensors").read_bytes() == (theirs / "model.safetensors").read_bytes()
    assert _losses(out) == _losses(straight)


@pytest.fixture(scope="module")
def straight(tiny_teacher, toy_task_dir, tmp_path_factory) -> tuple[Path, float]:
    """The uninterrupted run (which also builds the shared teacher cache) and its duration."""
    out = tmp_path_factory.mktemp("distill_faults") / "straight"
    started = time.perf_counter()
    proc = _finish(_command(tiny_teacher, toy_task_dir, out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, time.perf_counter() - started


def test_full_disk_ends_in_one_line_and_the_same_command_then_finishes_the_run(straight, tiny_teacher,
                                                                                toy_task_dir):
    reference, _ = straight
    out = reference.parent / "full_disk"
    root = out / "checkpoints"

    # the 2nd checkpoint (step 6) cannot be written
    proc = _finish(_command(tiny_teacher, toy_task_dir, out, ("enospc", "checkpoint", 2)))
    assert proc.returncode == 2
    line = proc.stderr.strip().splitlines()[-1]
    good = latest_checkpoint(root)
    assert line.startswith(f"bertdistill distill: error: could not write the checkpoint {root / 'ckpt-6-'}"), line
    assert f"No space left on device; the last good checkpoint {good} is kept" in line
    assert checkpoint_step(good) == 3 and sorted(p.name for p in root.iterdir()) == sorted(["latest", good.name])

    # the same command again: resumes at step 3; the student (first written at step 10) cannot be written
    proc = _finish(_command(tiny_teacher, toy_task_dir, out, ("enospc", "model", 1)))
    assert proc.returncode == 2
    line = proc.stderr.strip().splitlines()[-1]
    assert line == (f"bertdistill distill: error: could not write the model {out / 'student'}: No space left on "
                    "device; nothing was saved there; free space and run the command again"), line
    assert not any(p.name.startswith(".student") for p in out.iterdir())  # its temporary folder is gone
    assert checkpoint_step(latest_checkpoint(root)) == 9

    proc = _finish(_command(tiny_teacher, toy_task_dir, out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resumed from" in proc.stdout + proc.stderr
    _assert_same_result(out, reference)


def _kill_at(cmd: list, delay: float) -> int:
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        return proc.wait()


def _kill_after_next_checkpoint(cmd: list, root: Path, delay: float) -> int:
    before = (root / "latest").read_text() if (root / "latest").exists() else None
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while proc.poll() is None and time.time() < deadline:
        now = (root / "latest").read_text() if (root / "latest").exists() else None
        if now not in (None, before):
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    return proc.wait()


def test_killed_at_random_instants_the_same_command_ends_with_the_uninterrupted_student(straight, tiny_teacher,
                                                                                        toy_task_dir):
    reference, duration = straight
    rng = random.Random(11)
    out = reference.parent / "killed"
    root = out / "checkpoints"
    cmd = _command(tiny_teacher, toy_task_dir, out)
    def killed_in(writer: str, nth: int) -> int:  # half of the file on disk, then SIGKILL
        return _finish(_command(tiny_teacher, toy_task_dir, out, ("kill", writer, nth))).returncode

    attempts = [
        lambda: killed_in("checkpoint", rng.randint(1, 4)),  # a fresh run writes 11 checkpoints: it is hit
        lambda: _kill_at(cmd, rng.uniform(0.2, 0.8) * duration),  # anywhere: start-up, training, saving
        lambda: _kill_after_next_checkpoint(cmd, root, rng.uniform(0.0, 0.3)),  # during training
        lambda: killed_in("model", 1),  # inside the student's write, if one is still to come
    ]
    codes = [attempt() for attempt in attempts]
    assert codes[0] == -signal.SIGKILL, codes
    proc = None
    for _ in range(3):  # then the same command until it finishes
        if codes[-1] == 0:
            break
        proc = _finish(cmd)
        codes.append(proc.returncode)
    assert codes[-1] == 0, (codes, proc.stderr[-3000:] if proc else "")
    _assert_same_result(out, reference)
