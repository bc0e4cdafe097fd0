"""Cross-over of two examples of the same label (a head of one, the tail of the other)."""

from __future__ import annotations

from .registry import Augmenter, register_augmenter


@register_augmenter("crossover")
class CrossOver(Augmenter):
    """The head of one example and the tail of another example of the same label."""

    needs_partner = True

    def augment(self, text, rng, partner=None):
        if partner is None:
            raise ValueError("cross-over needs a second example of the same label")
        a, b = text.split(), partner.split()
        return " ".join(a[: rng.randint(1, max(1, len(a)))] + b[rng.randint(0, max(0, len(b) - 1)):])
