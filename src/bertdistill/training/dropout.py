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

:class:`WordDropout` (``$BERTDISTILL_DROPOUT=fast``) goes further: it cuts 64-bit random
words into four 16-bit draws, so the generator runs once per four elements (0.17 ms for a
32 x 14 x 384 mask, against 1.0 ms for ``bernoulli_`` and 0.45 ms for a byte per element),
and drops an element when its draw is below ``round(p * 2**16)``. The drop probability is
thus ``p`` rounded to a multiple of 2**-16 (0.1 becomes 0.1000061) and the kept values are
scaled by ``1 / (1 - that)``, so expectations are kept exactly; any ``p`` works.
"""

from __future__ import annotations

import contextlib
import os
from fractions import Fraction
from typing import Callable, Iterator

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


class _MaskDropout(torch.autograd.Function):
    """``x * keep * scale`` with the 1-byte ``keep`` mask saved for the backward pass."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:
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
        keep = torch.randint(0, self.d, x.shape, dtype=torch.uint8, device=x.device) >= self.k
        return _MaskDropout.apply(x, keep, self.d / (self.d - self.k))

    def extra_repr(self) -> str:
        return f"p={self.p}"


#: bits of one uniform draw of :class:`WordDropout`
WORD_BITS = 16


def word_threshold(p: float) -> int:
    """Draws below this (of 2**16) are dropped: ``round(p * 2**16)``, at least 1 and below 2**16."""
    return min(max(round(p * 2**WORD_BITS), 1), 2**WORD_BITS - 1)


def uniform_words(n: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``n`` uniform 16-bit draws (as int16, -2**15 .. 2**15 - 1), four from each 64-bit word."""
    words = torch.randint(-2**63, 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64, device=device)
    return words.view(torch.int16)[:n]


class WordDropout(nn.Module):
    """``nn.Dropout(p)`` with 16-bit draws cut from 64-bit random words (see the module)."""

    def __init__(self, p: float):
        super().__init__()
        if not 0.0 < p < 1.0:
            raise ValueError(f"dropout probability {p} is not between 0 and 1")
        self.p = p
        self.threshold = word_threshold(p)
        self.scale = 2**WORD_BITS / (2**WORD_BITS - self.threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        draws = uniform_words(x.numel(), x.device).view(x.shape)
        keep = draws >= self.threshold - 2 ** (WORD_BITS - 1)
        return _MaskDropout.apply(x, keep, self.scale)

    def extra_repr(self) -> str:
        return f"p={self.p} (drawn as {self.threshold}/{2**WORD_BITS})"


def byte_dropout(model: nn.Module) -> contextlib.AbstractContextManager:
    """Within the block, ``model``'s ``nn.Dropout`` modules whose probability is a byte fraction
    are :class:`ByteDropout` modules (in the same training mode); yields how many were swapped."""
    return swap_dropout(model, lambda p: ByteDropout(p) if as_byte_fraction(p) is not None else None)


def word_dropout(model: nn.Module) -> contextlib.AbstractContextManager:
    """Within the block, ``model``'s ``nn.Dropout`` modules (0 < p < 1) are :class:`WordDropout`
    modules; yields how many were swapped."""
    return swap_dropout(model, lambda p: WordDropout(p) if 0.0 < p < 1.0 else None)


@contextlib.contextmanager
def swap_dropout(model: nn.Module, make: Callable[[float], nn.Module | None]) -> Iterator[int]:
    """Within the block, each (not in-place) ``nn.Dropout`` of ``model`` for which ``make(p)`` gives
    a module is replaced by it, in the same training mode; the originals are put back after."""
    swapped = []
    for parent in model.modules():
        for name, child in list(parent.named_children()):
            new = make(child.p) if type(child) is nn.Dropout and not child.inplace else None
            if new is not None:
                new.train(child.training)
                setattr(parent, name, new)
                swapped.append((parent, name, child, new))
    try:
        yield len(swapped)
    finally:
        for parent, name, original, new in swapped:
            original.train(new.training)
            setattr(parent, name, original)


#: ``$BERTDISTILL_DROPOUT``: ``torch`` (default: torch's own dropout), ``byte`` (byte masks while
#: training on a CPU) or ``fast`` (16-bit draws cut from 64-bit words while training on a CPU)
ENV = "BERTDISTILL_DROPOUT"
MODES = ("byte", "fast", "torch")


def dropout_mode() -> str:
    mode = os.environ.get(ENV, "torch").strip().lower() or "torch"
    if mode not in MODES:
        raise ValueError(f"${ENV} must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def training_dropout(model: nn.Module, device: torch.device) -> contextlib.AbstractContextManager:
    """The engine's choice around a training run: on a CPU, byte masks when
    ``$BERTDISTILL_DROPOUT=byte`` and word draws when ``fast``; torch's own dropout otherwise and
    on any other device."""
    mode = dropout_mode()
    if torch.device(device).type == "cpu" and mode != "torch":
        return byte_dropout(model) if mode == "byte" else word_dropout(model)
    return contextlib.nullcontext(0)
