"""Dropout with masks drawn as bytes, for CPU training.

``nn.Dropout`` draws its mask with ``bernoulli_`` into a tensor of the input's dtype; on
the AMD CPUs this project runs on that draw is the slow part (0.7 ms per call on a batch of
32 SST-2 phrases, 9 % of a bf16 distillation step). Here a probability ``p = k / d`` with
``d <= 255`` (0.1 = 1/10, 0.15 = 3/20, ...) is drawn exactly as a uniform byte below ``d``
that is dropped when it is below ``k``: same distribution, a cheaper generator, and a
1-byte mask kept for the backward pass instead of a full-precision one. Probabilities
that are not such a fraction keep ``nn.Dropout``.

:func:`byte_dropout` swaps a model's ``nn.Dropout`` modules for the duration of a
``with`` block (the engine uses it around CPU training when ``$BERTDISTILL_DROPOUT=byte``)
and puts the originals back, so the trained model that is saved and returned has its usual
modules. It is opt-in: the masks differ from torch's draw for the same seed, so a run with
it does not reproduce a run without it (the SST-2 teacher of the benchmarks gave dev 0.8888
with it against 0.8945 without), and in repeated step timings its gain was within the
run-to-run spread (benchmarks/RESULTS.md, 2026-12-06).
"""

from __future__ import annotations

import contextlib
import os
from fractions import Fraction
from typing import Iterator

import torch
from torch import nn

#: largest denominator a probability may have (a byte holds the uniform draw)
MAX_DENOMINATOR = 255


def as_byte_fraction(p: float) -> tuple[int, int] | None:
    """``(k, d)`` with ``k / d == p`` exactly (as a float) and ``d <= 255``, or ``None``."""
    if not 0.0 < p < 1.0:
        return None
    frac = Fraction(p).limit_denominator(MAX_DENOMINATOR)
    if frac.numerator / frac.denominator != p:
        return None
    return frac.numerator, frac.denominator


class _ByteMaskDropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, k: int, d: int) -> torch.Tensor:
        keep = torch.randint(0, d, x.shape, dtype=torch.uint8, device=x.device) >= k
        scale = d / (d - k)
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return x.mul(keep).mul_(scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (keep,) = ctx.saved_tensors
        return grad.mul(keep).mul_(ctx.scale), None, None


class ByteDropout(nn.Module):
    """``nn.Dropout(p)`` for ``p = k / d``, ``d <= 255``, with a byte mask (see the module)."""

    def __init__(self, p: float):
        super().__init__()
        fraction = as_byte_fraction(p)
        if fraction is None:
            raise ValueError(f"dropout probability {p} is not k/d with d <= {MAX_DENOMINATOR}")
        self.p = p
        self.k, self.d = fraction

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        return _ByteMaskDropout.apply(x, self.k, self.d)

    def extra_repr(self) -> str:
        return f"p={self.p}"


@contextlib.contextmanager
def byte_dropout(model: nn.Module) -> Iterator[int]:
    """Within the block, ``model``'s ``nn.Dropout`` modules whose probability is a byte fraction
    are :class:`ByteDropout` modules (in the same training mode); yields how many were swapped."""
    swapped = []
    for parent in model.modules():
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout and not child.inplace and as_byte_fraction(child.p) is not None:
                new = ByteDropout(child.p)
                new.train(child.training)
                setattr(parent, name, new)
                swapped.append((parent, name, child, new))
    try:
        yield len(swapped)
    finally:
        for parent, name, original, new in swapped:
            original.train(new.training)
            setattr(parent, name, original)


#: ``$BERTDISTILL_DROPOUT``: ``torch`` (default: torch's own dropout) or ``byte`` (byte masks
#: while training on a CPU)
ENV = "BERTDISTILL_DROPOUT"
MODES = ("byte", "torch")


def dropout_mode() -> str:
    mode = os.environ.get(ENV, "torch").strip().lower() or "torch"
    if mode not in MODES:
        raise ValueError(f"${ENV} must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def training_dropout(model: nn.Module, device: torch.device) -> contextlib.AbstractContextManager:
    """The engine's choice around a training run: byte masks on a CPU when
    ``$BERTDISTILL_DROPOUT=byte``; torch's own dropout otherwise and on any other device."""
    if torch.device(device).type == "cpu" and dropout_mode() == "byte":
        return byte_dropout(model)
    return contextlib.nullcontext(0)
