"""Parity of an exported model with its PyTorch source on real inputs, bounded.

Two numbers: the largest absolute logit difference and the share of predictions (class ids,
or tag ids at real tokens) on which both agree. ``check_parity`` raises ``ParityError`` when
either is past its bound, so a broken export never ships silently.

Extractive QA (``compare_spans``) is compared on what a user gets, the decoded answers: both
models' start and end logits over a question's windows go through the same n-best decoding
(``data.qa_spans``), and the share of questions whose answer span (its characters in the
context) is the same is the agreement; the largest logit difference is taken at the tokens
decoding reads (the context and [CLS]). The mean token F1 between the two answers says how
far the answers that moved went.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
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


@dataclass
class SpanParity:
    """Parity of an extractive-QA export: answers compared question by question."""

    max_abs_diff: float           # largest |start or end logit difference| at context tokens and [CLS]
    agreement: float              # share of questions whose answer span is the same (characters)
    answer_f1: float              # mean token F1 of the export's answer against PyTorch's (1 when the same)
    compared: int                 # questions compared
    windows: int                  # their windows
    max_diff_bound: float
    min_agreement_bound: float

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.max_diff_bound and self.agreement >= self.min_agreement_bound

    def describe(self, name: str) -> str:
        return (f"parity {name} vs PyTorch on {self.compared} questions ({self.windows} windows): largest "
                f"|start/end logit diff| {self.max_abs_diff:.2e} (bound {self.max_diff_bound:g}), same answer "
                f"span {self.agreement:.2%} (bound {self.min_agreement_bound:.0%}), answer F1 {self.answer_f1:.4f}")

    def as_dict(self) -> dict:
        return asdict(self) | {"ok": self.ok, "measure": "answer spans"}


def compare_spans(reference, candidate, examples: Sequence, features: Sequence[dict], collator, options, *,
                  max_diff: float, min_agreement: float, batch_size: int = 32) -> SpanParity:
    """Answer ``examples`` (questions, windowed as ``features`` with ``options``) with both models
    and compare the decoded spans and the logits decoding reads."""
    from ..data.qa_spans import best_spans
    from ..metrics.squad import token_f1
    from ..qa_evaluation import qa_logits

    if not examples or not features:
        raise ValueError("parity needs at least one question")
    ref_start, ref_end = qa_logits(reference, features, collator, batch_size, "cpu", desc="parity PyTorch")
    cand_start, cand_end = qa_logits(candidate, features, collator, batch_size, "cpu", desc="parity export")
    worst = 0.0
    for i, feature in enumerate(features):
        read = np.array([t == 0 or o is not None for t, o in enumerate(feature["context_offsets"])])
        for ref, cand in ((ref_start[i], cand_start[i]), (ref_end[i], cand_end[i])):
            if ref.shape != cand.shape:
                raise ParityError(f"span logit shapes differ: PyTorch {ref.shape}, exported {cand.shape}")
            worst = max(worst, float(np.abs(ref[read] - cand[read]).max()))
    decode = {"n_best": options.n_best, "max_answer_length": options.max_answer_length}
    ours = best_spans(examples, features, ref_start, ref_end, **decode)
    theirs = best_spans(examples, features, cand_start, cand_end, **decode)
    same = [(a["start"], a["end"], a["text"]) == (b["start"], b["end"], b["text"]) for a, b in zip(ours, theirs)]
    f1 = [1.0 if s else token_f1(b["text"], a["text"]) for s, a, b in zip(same, ours, theirs)]
    return SpanParity(worst, sum(same) / len(same), sum(f1) / len(f1), len(examples), len(features),
                      max_diff, min_agreement)


def check_parity(parity: Parity | SpanParity, name: str) -> Parity | SpanParity:
    """Print the parity line; raise ParityError when a bound is broken."""
    print(parity.describe(name))
    if not parity.ok:
        raise ParityError(
            f"{parity.describe(name)}: outside the bounds, the export was not written "
            "(loosen with --max-logit-diff / --min-agreement only if the difference is understood)"
        )
    return parity
