"""Byte-mask dropout: the exact drop probability, torch's scaling, gradients through the same
mask, identity in eval mode; swapped in for training and put back after; bad settings named."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bertdistill.training.dropout import (ByteDropout, WordDropout, as_byte_fraction, byte_dropout, dropout_mode,
                                          training_dropout, uniform_words, word_threshold)


def test_probabilities_that_are_byte_fractions():
    assert as_byte_fraction(0.1) == (1, 10)
    assert as_byte_fraction(0.15) == (3, 20)
    assert as_byte_fraction(0.5) == (1, 2)
    assert as_byte_fraction(1 / 3) == (1, 3)
    assert as_byte_fraction(0.123456) is None
    assert as_byte_fraction(0.0) is None and as_byte_fraction(1.0) is None
    with pytest.raises(ValueError, match="0.123456"):
        ByteDropout(0.123456)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_drop_rate_scaling_and_gradient(dtype):
    torch.manual_seed(0)
    drop = ByteDropout(0.1).train()
    x = (torch.rand(400, 500) + 0.5).to(dtype).requires_grad_()
    y = drop(x)
    assert y.dtype == dtype
    kept = y != 0
    rate = 1 - kept.float().mean().item()
    assert abs(rate - 0.1) < 0.004, rate  # 200,000 draws: sd of the rate 0.0007
    torch.testing.assert_close(y[kept], (x[kept] / 0.9).to(dtype))
    g = torch.randn(400, 500, dtype=dtype)
    y.backward(g)
    torch.testing.assert_close(x.grad, torch.where(kept, g / 0.9, 0).to(dtype))
    drop.eval()
    assert drop(x) is x


def test_swapped_for_training_and_put_back():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.1), nn.Sequential(nn.Dropout(0.123456), nn.Dropout(0.2)))
    originals = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    model.train()
    with byte_dropout(model) as n:
        assert n == 2
        assert isinstance(model[1], ByteDropout) and isinstance(model[2][1], ByteDropout)
        assert type(model[2][0]) is nn.Dropout  # 0.123456 is no byte fraction: torch's
        model.eval()
        assert not model[1].training
    assert [m for m in model.modules() if isinstance(m, nn.Dropout)] == originals
    assert not any(m.training for m in originals)  # the mode set inside the block is kept


def test_environment_switch(monkeypatch):
    """Opt-in: torch's dropout unless $BERTDISTILL_DROPOUT=byte; a wrong value is refused."""
    model = nn.Sequential(nn.Dropout(0.1))
    monkeypatch.delenv("BERTDISTILL_DROPOUT", raising=False)
    with training_dropout(model, torch.device("cpu")) as n:
        assert n == 0 and type(model[0]) is nn.Dropout
    monkeypatch.setenv("BERTDISTILL_DROPOUT", "byte")
    with training_dropout(model, torch.device("cpu")) as n:
        assert n == 1 and isinstance(model[0], ByteDropout)
    assert type(model[0]) is nn.Dropout
    monkeypatch.setenv("BERTDISTILL_DROPOUT", "fast")
    with training_dropout(model, torch.device("cpu")) as n:
        assert n == 1 and isinstance(model[0], WordDropout)
    assert type(model[0]) is nn.Dropout
    monkeypatch.setenv("BERTDISTILL_DROPOUT", "bytes")
    with pytest.raises(ValueError, match="BERTDISTILL_DROPOUT"):
        dropout_mode()


def test_word_draws_are_uniform_16_bit_values():
    torch.manual_seed(0)
    draws = uniform_words(1_000_001)
    assert draws.dtype == torch.int16 and draws.shape == (1_000_001,)
    counts = torch.bincount((draws.long() + 2**15) >> 12, minlength=16).double()  # 16 bins of 4,096 values
    expected = draws.numel() / 16
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 40, chi2  # 15 degrees of freedom: P(chi2 > 40) < 0.001
    assert int(draws.min()) < -32000 and int(draws.max()) > 32000


@pytest.mark.parametrize("p", [0.1, 0.3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_word_dropout_rate_scaling_and_gradient(p, dtype):
    threshold = word_threshold(p)
    assert threshold == round(p * 65536) and abs(threshold / 65536 - p) <= 2**-17
    torch.manual_seed(1)
    drop = WordDropout(p).train()
    x = (torch.rand(400, 500) + 0.5).to(dtype).requires_grad_()
    y = drop(x)
    kept = y != 0
    rate = 1 - kept.float().mean().item()
    assert abs(rate - p) < 0.005, rate  # 200,000 draws: sd of the rate 0.001 at p = 0.3
    scale = 65536 / (65536 - threshold)
    torch.testing.assert_close(y[kept], (x[kept] * scale).to(dtype))
    g = torch.randn(400, 500, dtype=dtype)
    y.backward(g)
    torch.testing.assert_close(x.grad, torch.where(kept, g * scale, 0).to(dtype))
    drop.eval()
    assert drop(x) is x
