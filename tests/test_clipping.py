"""Gradient clipping on the CPU: the same gradients as torch's clip_grad_norm_, bit for bit,
and no pass over the gradients when they are already within the bound."""

from __future__ import annotations

import pytest
import torch
from accelerate import Accelerator

from bertdistill.training import clipping
from bertdistill.training.clipping import clip_gradients


def _model_with_grads(scale: float) -> torch.nn.Module:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(50, 8), torch.nn.Linear(8, 3))
    out = model(torch.randint(0, 50, (4, 5))).sum() * scale
    out.backward()
    return model


@pytest.mark.parametrize("scale", [1e-3, 10.0])
def test_same_gradients_and_norm_as_torch(scale):
    ours, theirs = _model_with_grads(scale), _model_with_grads(scale)
    norm = clip_gradients(Accelerator(cpu=True), ours.parameters(), 1.0)
    want = torch.nn.utils.clip_grad_norm_(theirs.parameters(), 1.0)
    assert norm == float(want)
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert torch.equal(a.grad, b.grad)
    assert (float(want) > 1.0) == (scale == 10.0)  # both regimes are exercised


def test_no_pass_over_gradients_within_the_bound(monkeypatch):
    calls = []
    real = torch.nn.utils.clip_grads_with_norm_
    monkeypatch.setattr(clipping.torch.nn.utils, "clip_grads_with_norm_",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    small = _model_with_grads(1e-3)
    clip_gradients(Accelerator(cpu=True), small.parameters(), 1.0)
    assert calls == []
    large = _model_with_grads(10.0)
    clip_gradients(Accelerator(cpu=True), large.parameters(), 1.0)
    assert calls == [1]
    total = torch.linalg.vector_norm(torch.cat([p.grad.reshape(-1) for p in large.parameters()]))
    assert float(total) == pytest.approx(1.0, rel=1e-5)
