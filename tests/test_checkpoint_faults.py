"""Crash safety: a run killed at each point of the checkpoint write sequence resumes to the
same final weights (and the same log) as a run that was never interrupted.

The primitives the sequence uses (safetensors' save_file, torch.save, os.replace and the
pruning's shutil.rmtree) are wrapped; the k-th call leaves a realistic partial effect (half
a file written, one file of the old folder deleted) and raises ``Killed``, a BaseException
that nothing in the engine catches, as a SIGKILL would stop the process there.

A full disk (``OSError(ENOSPC)`` from a writer) ends the run with one line naming the folder;
the new checkpoint's folder is removed, ``latest`` still names the last good checkpoint, and
running again resumes from it to the same weights.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from bertdistill.durable import DiskWriteError
from bertdistill.training import checkpoint as ckpt
from bertdistill.training.checkpoint import checkpoint_step, latest_checkpoint
from bertdistill.training.engine import TrainConfig, TrainLoop


class Killed(BaseException):
    """The process died here."""


class Faults:
    """Counts calls to the write primitives; the call numbered ``fail_at`` is the kill."""

    def __init__(self, monkeypatch, fail_at: int | None = None):
        self.fail_at, self.calls = fail_at, []
        save_file, torch_save, replace, rmtree = ckpt.save_file, torch.save, os.replace, shutil.rmtree

        def partial_write(path) -> None:
            Path(path).write_bytes(b"\x00" * 7)  # a torn file

        def hit(kind: str) -> bool:
            self.calls.append(kind)
            return len(self.calls) - 1 == self.fail_at

        def fake_save_file(tensors, path, *a, **k):
            if hit("save_file"):
                partial_write(path)
                raise Killed
            return save_file(tensors, path, *a, **k)

        def fake_torch_save(obj, path, *a, **k):
            if hit("torch.save"):
                partial_write(path)
                raise Killed
            return torch_save(obj, path, *a, **k)

        def fake_replace(src, dst, *a, **k):
            if hit("os.replace"):
                raise Killed
            return replace(src, dst, *a, **k)

        def fake_rmtree(path, *a, **k):
            if hit("rmtree"):
                files = sorted(p for p in Path(path).rglob("*") if p.is_file())
                if files:
                    files[0].unlink()  # the delete had started
                raise Killed
            return rmtree(path, *a, **k)

        monkeypatch.setattr(ckpt, "save_file", fake_save_file)
        monkeypatch.setattr(torch, "save", fake_torch_save)
        monkeypatch.setattr(os, "replace", fake_replace)
        monkeypatch.setattr(shutil, "rmtree", fake_rmtree)


class Net(torch.nn.Module):
    """Dropout makes the result depend on the restored RNG state."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(3, 8)
        self.drop = torch.nn.Dropout(0.3)
        self.b = torch.nn.Linear(8, 1)

    def forward(self, x):
        return self.b(self.drop(torch.tanh(self.a(x)))).squeeze(-1)


FEATS = [{"input_ids": [1] * (2 + i % 5), "x": [i / 10, (i % 3) - 1.0, 1.0], "y": float(i % 2)} for i in range(24)]


def _collate(items):
    return {"x": torch.tensor([f["x"] for f in items]), "y": torch.tensor([f["y"] for f in items])}


def _loss(module, batch):
    loss = (module(batch["x"]) - batch["y"]).pow(2).mean()
    return loss, {"mse": float(loss.detach())}


def _run(out: Path) -> tuple[dict, TrainLoop]:
    torch.manual_seed(0)
    model = Net()
    evals = iter(range(100))
    # eval and save steps coincide at 6, and the final save repeats the step-6 checkpoint
    cfg = TrainConfig(max_steps=6, batch_size=4, grad_accum=1, save_every=2, eval_every=3, lr=0.05, seed=5,
                      log_every=1)
    loop = TrainLoop(model, FEATS, _collate, _loss, config=cfg, output_dir=out,
                     evaluate=lambda: {"score": float(next(evals) % 2)}, main_metric="score")
    loop.train()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, loop


def _steps(out: Path) -> list:
    return [(r["step"], "eval" in r) for r in map(json.loads, (out / "log.jsonl").read_text().splitlines())]


def test_kill_at_every_write_primitive_then_resume_gives_the_same_weights(tmp_path, monkeypatch):
    with monkeypatch.context() as m:
        counter = Faults(m)
        reference, _ = _run(tmp_path / "straight")
    kinds = counter.calls
    assert {"save_file", "torch.save", "os.replace", "rmtree"} <= set(kinds), kinds
    ref_log = _steps(tmp_path / "straight")

    for k, kind in enumerate(kinds):
        out = tmp_path / f"kill{k}"
        with monkeypatch.context() as m:
            Faults(m, fail_at=k)
            with pytest.raises(Killed):
                _run(out)
        # whatever `latest` points at is a complete checkpoint
        latest = latest_checkpoint(out / "checkpoints")
        if latest is not None:
            assert (latest / "trainer.pt").stat().st_size > 100, (k, kind)
            ckpt.load_file(str(latest / "model.safetensors"))
        weights, loop = _run(out)  # a fresh loop, no faults: resumes
        assert loop.state.step == 6
        for name, value in reference.items():
            assert torch.equal(value, weights[name]), f"kill at call {k} ({kind}): {name} differs"
        assert _steps(out) == ref_log, f"kill at call {k} ({kind}): the log differs"
        left = sorted(p.name for p in (out / "checkpoints").iterdir())
        assert len([n for n in left if n.startswith("ckpt-")]) == 1 and not any(".partial" in n for n in left), left


def test_same_step_is_saved_under_a_new_name_and_latest_is_never_deleted(tmp_path):
    _, loop = _run(tmp_path / "run")
    first = latest_checkpoint(loop.ckpt_dir)
    assert checkpoint_step(first) == 6
    loop._save()  # the same step again
    second = latest_checkpoint(loop.ckpt_dir)
    assert first != second and checkpoint_step(second) == 6
    assert not first.exists() and second.exists()


def test_hand_damaged_pointer_is_reported_not_silently_restarted(tmp_path):
    _, loop = _run(tmp_path / "run")
    shutil.rmtree(latest_checkpoint(loop.ckpt_dir))
    with pytest.raises(RuntimeError, match="missing or incomplete.*--no-resume"):
        _run(tmp_path / "run")


def test_scaler_and_cuda_rng_states_travel_with_the_checkpoint(tmp_path, monkeypatch):
    """Exact resume on a GPU needs the mixed-precision scaler and every device's RNG: both are
    written and restored (the CUDA calls are stood in for on this CPU-only machine)."""
    device_states = {0: torch.tensor([1, 2, 3], dtype=torch.uint8), 1: torch.tensor([4, 5], dtype=torch.uint8)}
    restored = {}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [device_states[0], device_states[1]])
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda states: restored.update(enumerate(states)))

    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    scaler = torch.amp.GradScaler("cpu", init_scale=96.0, growth_interval=7)  # not a fresh scaler's values
    path = ckpt.save_checkpoint(tmp_path, model=model, optimizer=optimizer, scheduler=scheduler,
                                state=ckpt.TrainState(step=3), scaler=scaler)

    fresh = torch.amp.GradScaler("cpu", init_scale=2.0 ** 16)
    device_states.update({0: torch.tensor([9], dtype=torch.uint8), 1: torch.tensor([9], dtype=torch.uint8)})
    ckpt.load_checkpoint(path, model=model, optimizer=optimizer, scheduler=scheduler, scaler=fresh)
    assert fresh.get_scale() == 96.0 and fresh.state_dict()["growth_interval"] == 7
    assert [restored[0].tolist(), restored[1].tolist()] == [[1, 2, 3], [4, 5]]


def _full_disk(monkeypatch, writer: str, nth: int) -> None:
    """The ``nth`` call (1-based) of one checkpoint writer fails as on a full disk, leaving a torn file."""
    calls = [0]

    def fails(path) -> bool:
        calls[0] += 1
        if calls[0] != nth:
            return False
        Path(path).write_bytes(b"\x00" * 7)
        return True

    def enospc() -> OSError:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if writer == "pointer":
        real_pointer = ckpt.write_text_atomic

        def fake_pointer(path, text):
            if fails(Path(path).with_name(Path(path).name + ".tmp")):
                raise enospc()
            return real_pointer(path, text)

        monkeypatch.setattr(ckpt, "write_text_atomic", fake_pointer)
    elif writer == "save_file":
        real_save_file = ckpt.save_file

        def fake_save_file(tensors, path, *a, **k):
            if fails(path):
                raise enospc()
            return real_save_file(tensors, path, *a, **k)

        monkeypatch.setattr(ckpt, "save_file", fake_save_file)
    else:
        real_torch_save = torch.save

        def fake_torch_save(obj, path, *a, **k):
            if fails(path):
                raise enospc()
            return real_torch_save(obj, path, *a, **k)

        monkeypatch.setattr(torch, "save", fake_torch_save)


# the second checkpoint (step 4): its weights, its RNG file (trainer.pt and rng_rank0.pt per checkpoint), its pointer
@pytest.mark.parametrize("writer, nth", [("save_file", 2), ("torch.save", 4), ("pointer", 2)])
def test_full_disk_in_a_checkpoint_keeps_the_last_good_one_and_the_rerun_resumes(tmp_path, monkeypatch, writer, nth):
    reference, _ = _run(tmp_path / "straight")
    out = tmp_path / "full"
    with monkeypatch.context() as m:
        _full_disk(m, writer, nth)
        with pytest.raises(DiskWriteError) as caught:
            _run(out)
    root = out / "checkpoints"
    good = latest_checkpoint(root)
    assert checkpoint_step(good) == 2
    message = str(caught.value)
    assert caught.value.errno == errno.ENOSPC and "\n" not in message
    assert message.startswith(f"could not write the checkpoint {root / 'ckpt-4-'}")
    assert f"No space left on device; the last good checkpoint {good} is kept" in message
    # no partial folder, no finished-but-unpointed folder, no torn pointer
    assert sorted(p.name for p in root.iterdir()) == sorted(["latest", good.name])

    weights, loop = _run(out)  # the disk has space again: resumes from step 2
    assert loop.state.step == 6
    for name, value in reference.items():
        assert torch.equal(value, weights[name]), f"{writer}: {name} differs"
    assert _steps(out) == _steps(tmp_path / "straight")


def test_full_disk_at_the_first_checkpoint_says_none_is_kept(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _full_disk(monkeypatch, "save_file", 1)
    with pytest.raises(DiskWriteError, match=r"No space left on device; no earlier checkpoint exists"):
        _run(Path("run"))
    assert sorted(p.name for p in Path("run/checkpoints").iterdir()) == []
