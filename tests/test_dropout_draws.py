"""--dropout-draws fast: 16-bit draws with the rounded drop probability, torch's scaling,
gradients through the same mask, identity in eval mode; swapped in for CPU training only and
put back after; a value the option does not take is refused naming it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bertdistill.training.dropout import WordDropout, training_dropout, uniform_words, word_threshold


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


def test_fast_draws_swapped_in_on_a_cpu_and_put_back():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.1), nn.Sequential(nn.Dropout(0.0), nn.Dropout(0.2)))
    originals = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    model.train()
    with training_dropout(model, torch.device("cpu"), "torch") as n:
        assert n == 0 and type(model[1]) is nn.Dropout
    with training_dropout(model, torch.device("cpu"), "fast") as n:
        assert n == 2  # p = 0 is no dropout: left as it is
        assert isinstance(model[1], WordDropout) and isinstance(model[2][1], WordDropout)
        assert type(model[2][0]) is nn.Dropout
        model.eval()
        assert not model[1].training
    assert [m for m in model.modules() if isinstance(m, nn.Dropout)] == originals
    assert not any(m.training for m in originals)  # the mode set inside the block is kept
    with training_dropout(model, torch.device("meta"), "fast") as n:  # not a CPU: torch's dropout
        assert n == 0 and type(model[1]) is nn.Dropout


def test_unknown_draws_are_refused_naming_the_option():
    with pytest.raises(ValueError, match="--dropout-draws must be torch or fast, got 'byte'"):
        training_dropout(nn.Dropout(0.1), torch.device("cpu"), "byte")
    from bertdistill.training.engine import TrainConfig

    with pytest.raises(ValueError, match="--dropout-draws"):
        TrainConfig(dropout_draws="byte")
