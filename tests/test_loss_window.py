"""A log row's loss and parts are means over its logging window (the 2-process mean is in
tests/test_distributed.py)."""

from __future__ import annotations

import json

import pytest
import torch

from bertdistill.training.engine import TrainConfig, TrainLoop
from bertdistill.training.loss_window import LossWindow


class _OneProcess:
    num_processes = 1


def test_window_means_by_hand_and_across_a_checkpoint():
    window = LossWindow()
    window.add(1.0, {"x": 2.0})
    window.add(3.0, {"x": 5.0})
    assert window.row(_OneProcess()) == (2.0, {"x": 3.5})
    assert window.steps == 0 and window.parts == {}  # the next row starts empty

    window.add(1.0, {"x": 1.0})
    saved = json.loads(json.dumps(window.merge(_OneProcess())))  # as state.json stores it
    resumed = LossWindow.restored(saved)
    resumed.add(4.0, {"x": 7.0})
    assert resumed.row(_OneProcess()) == (2.5, {"x": 4.0})
    assert LossWindow.restored(None).row(_OneProcess()) == (0.0, {})  # a checkpoint without a window


WEIGHTS = {"a": 0.3, "b": 0.7}


def test_logged_parts_are_window_means_whose_weighted_sum_is_the_logged_loss(tmp_path):
    steps: list[dict] = []

    def loss_step(module, batch):
        a = (module(batch["x"]).squeeze(-1) - batch["y"]).pow(2).mean()
        b = module.weight.pow(2).sum()
        loss = WEIGHTS["a"] * a + WEIGHTS["b"] * b
        steps.append({"loss": float(loss.detach()), "a": float(a.detach()), "b": float(b.detach())})
        return loss, {"a": float(a.detach()), "b": float(b.detach())}

    torch.manual_seed(0)
    feats = [{"input_ids": [1], "x": [i / 4, 1.0 - i / 8], "y": float(i % 3)} for i in range(16)]
    collate = lambda items: {"x": torch.tensor([f["x"] for f in items]),  # noqa: E731
                             "y": torch.tensor([f["y"] for f in items])}
    cfg = TrainConfig(max_steps=7, batch_size=2, lr=0.1, warmup_ratio=0.0, log_every=3, group_by_length=False)
    TrainLoop(torch.nn.Linear(2, 1), feats, collate, loss_step, config=cfg, output_dir=tmp_path).train()

    rows = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [3, 6, 7]
    for row, first in zip(rows, (0, 3, 6)):
        window = steps[first:row["step"]]
        for key in ("a", "b"):
            assert row["parts"][key] == pytest.approx(sum(s[key] for s in window) / len(window), rel=1e-12)
        assert row["loss"] == pytest.approx(sum(s["loss"] for s in window) / len(window), rel=1e-12)
        weighted = sum(w * row["parts"][k] for k, w in WEIGHTS.items())
        assert weighted == pytest.approx(row["loss"], rel=1e-6)  # float32 step losses, float64 sums
    # the steps of a window differ, so the last step's parts would not pass the checks above
    assert abs(steps[2]["a"] - rows[0]["parts"]["a"]) > 1e-3
