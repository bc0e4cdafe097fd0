"""Dropout with cheaper random draws, for CPU training (``--dropout-draws fast``).

``nn.Dropout`` draws one ``bernoulli_`` value per element; on a CPU that draw is a visible
share of a small model's training step (1.0 ms for the mask of a batch of 32 SST-2 phrases,
32 x 14 x 384). :class:`WordDropout` cuts each 64-bit random word into four 16-bit draws, so
the generator runs once per four elements (0.17 ms for the same mask), and drops an element
when its draw is below ``round(p * 2**16)``. The drop probability is thus ``p`` rounded to a
multiple of 2**-16 (0.1 becomes 0.1000061) and the kept values are scaled by
``1 / (1 - that)``, so expectations are kept exactly; any ``p`` works. The mask kept for the
backward pass is one byte per element.

:func:`training_dropout` swaps a model's ``nn.Dropout`` modules for the duration of a
``with`` block (the engine uses it around CPU training) and puts the originals back, so the
trained model that is saved and returned has its usual modules. It is opt-in: the masks are
another random stream than torch's for the same seed, so a run with it does not reproduce a
run without it. Dropout applied as a function inside a module (attention probabilities under
sdpa) keeps torch's draw.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch
from torch import nn

#: values of ``--dropout-draws`` (``TrainConfig.dropout_draws``): torch's own dropout, or 16-bit
#: draws cut from 64-bit words while training on a CPU
DROPOUT_DRAWS = ("torch", "fast")


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


def check_dropout_draws(draws: str) -> None:
    """ValueError naming ``--dropout-draws`` for a value it does not take."""
    if draws not in DROPOUT_DRAWS:
        raise ValueError(f"--dropout-draws must be {' or '.join(DROPOUT_DRAWS)}, got {draws!r}")


def training_dropout(model: nn.Module, device: torch.device | str,
                     draws: str = "torch") -> contextlib.AbstractContextManager:
    """The engine's dropout around a training run: with ``draws="fast"`` on a CPU, the model's
    ``nn.Dropout`` modules draw 16-bit words (:class:`WordDropout`); torch's own dropout otherwise
    and on any other device. Yields how many modules were swapped."""
    check_dropout_draws(draws)
    if torch.device(device).type == "cpu" and draws == "fast":
        return word_dropout(model)
    return contextlib.nullcontext(0)
