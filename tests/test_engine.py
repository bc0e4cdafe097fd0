"""The training engine: learning, exact resume after SIGKILL, the NaN guard."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from bertdistill import api
from bertdistill.training.checkpoint import checkpoint_step, latest_checkpoint
from bertdistill.training.engine import TrainConfig, TrainingDiverged, TrainLoop


def test_finetune_learns_toy_task(tiny_encoder_dir, toy_task_dir, tmp_path):
    out = tmp_path / "ft"
    result = api.finetune("tsv", str(tiny_encoder_dir), str(out), str(toy_task_dir),
                          train=TrainConfig(epochs=6, lr=1e-3, batch_size=16, warmup_ratio=0.1, seed=1))
    assert result["dev"]["accuracy"] > 0.8, result["dev"]
    rows = [json.loads(l) for l in (out / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert losses[-1] < 0.5 * losses[0], losses
    assert (out / "best" / "config.json").exists()
    assert json.loads((out / "best" / "metrics.json").read_text())["dev"]["accuracy"] == result["dev"]["accuracy"]


def _cli(out: Path, encoder: Path, task: Path, steps: int) -> list[str]:
    return [sys.executable, "-m", "bertdistill.cli", "finetune", "--task", "tsv", "--data", str(task),
            "--model", str(encoder), "--output", str(out), "--max-steps", str(steps), "--save-every", "2",
            "--eval-every", "1000", "--batch-size", "8", "--lr", "1e-3", "--seed", "3"]


def _final_weights(out: Path) -> dict:
    return load_file(str(latest_checkpoint(out / "checkpoints") / "model.safetensors"))


def test_resume_after_sigkill_gives_same_result(tiny_encoder_dir, toy_task_dir, tmp_path):
    steps = 24
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    straight = tmp_path / "straight"
    subprocess.run(_cli(straight, tiny_encoder_dir, toy_task_dir, steps), check=True, env=env,
                   capture_output=True)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cli(killed, tiny_encoder_dir, toy_task_dir, steps), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        ckpt = latest_checkpoint(killed / "checkpoints")
        if ckpt is not None and checkpoint_step(ckpt) >= 6:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stopped_at = checkpoint_step(latest_checkpoint(killed / "checkpoints"))
    assert stopped_at < steps, "the run finished before it could be killed"

    resumed = subprocess.run(_cli(killed, tiny_encoder_dir, toy_task_dir, steps), check=True, env=env,
                             capture_output=True, text=True)
    assert "resumed from" in resumed.stdout + resumed.stderr
    a, b = _final_weights(straight), _final_weights(killed)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)


class _Linear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Linear(2, 1)


def test_nan_loss_stops_with_clear_message_and_keeps_checkpoint(tmp_path):
    calls = {"n": 0}

    def loss_step(module, batch):
        calls["n"] += 1
        loss = module.w(batch["x"]).pow(2).mean()
        if calls["n"] > 4:
            loss = loss * float("nan")
        return loss, {}

    feats = [{"input_ids": [1, 2], "x": [0.5, -0.5]} for _ in range(8)]
    collate = lambda items: {"x": torch.tensor([f["x"] for f in items])}  # noqa: E731
    loop = TrainLoop(_Linear(), feats, collate, loss_step, output_dir=tmp_path,
                     config=TrainConfig(epochs=10, batch_size=2, save_every=2, lr=0.1))
    with pytest.raises(TrainingDiverged, match=r"loss became nan at optimizer step 5.*last good checkpoint"):
        loop.train()
    assert checkpoint_step(latest_checkpoint(tmp_path / "checkpoints")) == 4


def test_gradient_accumulation_matches_one_large_batch(tmp_path):
    """Two micro-batches of 2 give the same update as one batch of 4 (mean losses)."""
    torch.manual_seed(0)
    feats = [{"input_ids": [1], "x": [float(i), 1.0], "y": float(i % 3)} for i in range(4)]
    collate = lambda items: {"x": torch.tensor([f["x"] for f in items]),  # noqa: E731
                             "y": torch.tensor([f["y"] for f in items])}

    def loss_step(module, batch):
        return (module.w(batch["x"]).squeeze(-1) - batch["y"]).pow(2).mean(), {}

    results = []
    for bs, accum in ((4, 1), (2, 2)):
        torch.manual_seed(0)
        model = _Linear()
        cfg = TrainConfig(max_steps=1, batch_size=bs, grad_accum=accum, lr=0.1, warmup_ratio=0.0,
                          group_by_length=False, max_grad_norm=0.0, weight_decay=0.0)
        TrainLoop(model, feats, collate, loss_step, config=cfg, output_dir=tmp_path / f"{bs}").train()
        results.append(model.w.weight.detach().clone())
    torch.testing.assert_close(results[0], results[1])


def test_fused_foreach_and_loop_adamw_give_the_same_weights(tmp_path):
    """The optimizer option changes the kernels, not the update: equal weights after 6 steps,
    and each run really used the kernels it asked for."""
    feats = [{"input_ids": [1], "x": [float(i) / 3, 1.0], "y": float(i % 3)} for i in range(12)]
    collate = lambda items: {"x": torch.tensor([f["x"] for f in items]),  # noqa: E731
                             "y": torch.tensor([f["y"] for f in items])}

    def loss_step(module, batch):
        return (module.w(batch["x"]).squeeze(-1) - batch["y"]).pow(2).mean(), {}

    weights = {}
    for kind in ("loop", "foreach", "fused"):
        torch.manual_seed(0)
        model = _Linear()
        start = model.w.weight.detach().clone()
        cfg = TrainConfig(max_steps=6, batch_size=2, lr=0.05, warmup_ratio=0.0, group_by_length=False,
                          weight_decay=0.1, optimizer=kind)
        loop = TrainLoop(model, feats, collate, loss_step, config=cfg, output_dir=tmp_path / kind)
        group = loop.optimizer.optimizer.param_groups[0] if hasattr(loop.optimizer, "optimizer") \
            else loop.optimizer.param_groups[0]
        assert bool(group["fused"]) == (kind == "fused") and bool(group["foreach"]) == (kind == "foreach")
        loop.train()
        weights[kind] = model.w.weight.detach().clone()
    assert (weights["loop"] - start).abs().min() > 1e-3  # it trained (same start for every kind)
    torch.testing.assert_close(weights["fused"], weights["loop"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(weights["foreach"], weights["loop"], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="--optimizer must be fused, foreach or loop"):
        TrainConfig(optimizer="sgd")


@pytest.mark.parametrize("mode", ["torch", "fast"])
def test_cpu_training_dropout_and_the_model_given_back_unchanged(tmp_path, mode):
    """With --dropout-draws fast the model's nn.Dropout runs as WordDropout during CPU training
    (by default it stays nn.Dropout); afterwards the model has its own module again. The grad
    norm before clipping is logged."""
    import json

    from torch import nn

    from bertdistill.training.dropout import WordDropout

    class Dropped(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 1)
            self.drop = nn.Dropout(0.1)

    model = Dropped()
    original = model.drop
    seen = []

    def loss_step(module, batch):
        seen.append(type(module.drop))
        return ((module.lin(module.drop(batch["x"])).squeeze(-1) - batch["y"]) ** 2).mean(), {}

    feats = [{"input_ids": [1], "x": [float(i), 1.0], "y": 1.0} for i in range(8)]
    collate = lambda items: {"x": torch.tensor([f["x"] for f in items]),  # noqa: E731
                             "y": torch.tensor([f["y"] for f in items])}
    cfg = TrainConfig(max_steps=4, batch_size=2, lr=0.01, log_every=1, group_by_length=False, dropout_draws=mode)
    TrainLoop(model, feats, collate, loss_step, config=cfg, output_dir=tmp_path).train()
    assert seen and set(seen) == {WordDropout if mode == "fast" else nn.Dropout}
    assert model.drop is original
    logged = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    norms = [r["grad_norm"] for r in logged if "grad_norm" in r]
    assert len(norms) == 4 and all(n > 0 for n in norms)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the warning is about CPU training")
@pytest.mark.parametrize("precision,native,warned", [("bf16", False, True), ("bf16", True, False),
                                                      ("no", False, False)])
def test_bf16_on_a_cpu_without_bf16_instructions_is_warned_about(monkeypatch, caplog, precision, native, warned):
    import logging

    from bertdistill.training import engine

    monkeypatch.setattr(engine, "cpu_has_bf16", lambda: native)
    with caplog.at_level(logging.WARNING, logger="bertdistill.training.engine"):
        engine.make_accelerator(TrainConfig(mixed_precision=precision))
    assert ("neither AVX-512 BF16 nor AMX" in caplog.text) is warned, caplog.text
