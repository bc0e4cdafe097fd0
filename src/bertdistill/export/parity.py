"""Parity of an exported model with its PyTorch source on real inputs, bounded.

Two numbers: the largest absolute logit difference and the share of predictions (class ids,
or tag ids at real tokens) on which both agree. ``check_parity`` raises ``ParityError`` when
either is past its bound, so a broken export never ships silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from ..evaluation import forward_arguments


class ParityError(ValueError):
    """The exported model's outputs are too far from the PyTorch model's.

    A ValueError so that the CLI reports it as an error with the bound options to change."""


@dataclass
class Parity:
    max_abs_diff: float
    agreement: float | None       # None for regression (no labels to agree on)
    compared: int                 # examples compared
    max_diff_bound: float
    min_agreement_bound: float

    @property
    def ok(self) -> bool:
        agree_ok = self.agreement is None or self.agreement >= self.min_agreement_bound
        return self.max_abs_diff <= self.max_diff_bound and agree_ok

    def describe(self, name: str) -> str:
        agree = "n/a" if self.agreement is None else f"{self.agreement:.2%}"
        return (f"parity {name} vs PyTorch on {self.compared} examples: largest |logit diff| "
                f"{self.max_abs_diff:.2e} (bound {self.max_diff_bound:g}), label agreement {agree} "
                f"(bound {self.min_agreement_bound:.0%})")

    def as_dict(self) -> dict:
        return asdict(self) | {"ok": self.ok}


def _logits(model, batch: dict) -> torch.Tensor:
    accepted = forward_arguments(model)
    inputs = {k: v for k, v in batch.items() if k in accepted and k != "labels" and torch.is_tensor(v)}
    with torch.inference_mode():
        return model(**inputs).logits.float().cpu()


def compare(reference, candidate, features: Sequence[dict], collator, *, regression: bool = False,
            batch_size: int = 32, max_diff: float, min_agreement: float) -> Parity:
    """Run both models over ``features`` (encoded examples) and compare their logits."""
    if not features:
        raise ValueError("parity needs at least one example")
    reference.eval()
    worst, agree, total = 0.0, 0, 0
    for start in range(0, len(features), batch_size):
        batch = collator([{k: v for k, v in f.items() if k != "labels"} for f in features[start:start + batch_size]])
        ref, cand = _logits(reference, batch), _logits(candidate, batch)
        if ref.shape != cand.shape:
            raise ParityError(f"logit shapes differ: PyTorch {tuple(ref.shape)}, exported {tuple(cand.shape)}")
        if ref.dim() == 3:  # token level: only real tokens count
            keep = batch["attention_mask"].bool()
            ref, cand = ref[keep], cand[keep]
        worst = max(worst, float((ref - cand).abs().max()))
        agree += int((ref.argmax(-1) == cand.argmax(-1)).sum())
        total += ref.shape[0]
    return Parity(worst, None if regression else agree / total, len(features), max_diff, min_agreement)


def check_parity(parity: Parity, name: str) -> Parity:
    """Print the parity line; raise ParityError when a bound is broken."""
    print(parity.describe(name))
    if not parity.ok:
        raise ParityError(
            f"{parity.describe(name)}: outside the bounds, the export was not written "
            "(loosen with --max-logit-diff / --min-agreement only if the difference is understood)"
        )
    return parity
