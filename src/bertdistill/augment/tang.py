"""Tang et al. (2019) rule-based augmentation for a distillation transfer set.

Each word, independently: with probability ``p_mask`` it becomes ``[MASK]``; else with
probability ``p_pos`` it is replaced by a word of the training texts with the same
part-of-speech tag, drawn by frequency. Then, with probability ``p_ng``, the copy is cut
to one random n-gram with n uniform in 1..``max_ngram``.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections import Counter, defaultdict

from .pos import load_tagger
from .registry import Augmenter, check_positive_int, check_probability, register_augmenter

MASK_TOKEN = "[MASK]"


class FrequencySampler:
    """Draws an item with probability proportional to its count."""

    def __init__(self, counts: Counter):
        self.items = list(counts)
        self.cumulative = list(itertools.accumulate(counts[i] for i in self.items))

    def draw(self, rng: random.Random) -> str:
        return self.items[bisect.bisect_right(self.cumulative, rng.random() * self.cumulative[-1])]


@register_augmenter("tang")
class TangAugmenter(Augmenter):
    params = ("p_mask", "p_pos", "p_ng", "max_ngram", "tagger")

    def __init__(self, p_mask: float = 0.1, p_pos: float = 0.1, p_ng: float = 0.25, max_ngram: int = 5,
                 tagger="spacy"):
        self.p_mask = check_probability("p_mask", p_mask)
        self.p_pos = check_probability("p_pos", p_pos)
        self.p_ng = check_probability("p_ng", p_ng)
        if self.p_mask + self.p_pos > 1:
            raise ValueError(f"--p-mask + --p-pos must be <= 1, got {self.p_mask} + {self.p_pos}")
        self.max_ngram = check_positive_int("max_ngram", max_ngram)
        # the tagger is loaded now (a clear error if missing), only when POS replacement is on
        self.tagger = (load_tagger(tagger) if isinstance(tagger, str) else tagger) if self.p_pos > 0 else None
        self.tags: dict[str, list[str]] = {}
        self.by_tag: dict[str, FrequencySampler] = {}

    def fit(self, texts: list[str]) -> None:
        if self.tagger is None:
            return
        unique = list(dict.fromkeys(texts))  # each distinct text tagged once ...
        self.tags.update(zip(unique, self.tagger.tag_many([t.split() for t in unique])))
        counts: dict[str, Counter] = defaultdict(Counter)
        for text in texts:  # ... and every occurrence counted (draws follow corpus frequency)
            for word, tag in zip(text.split(), self.tags[text]):
                counts[tag][word] += 1
        self.by_tag = {tag: FrequencySampler(c) for tag, c in counts.items()}

    def augment(self, text: str, rng: random.Random, partner: str | None = None) -> str:
        words = text.split()
        tags = None
        if self.tagger is not None:
            tags = self.tags.get(text) or self.tagger.tag_many([words])[0]
        out = []
        for i, word in enumerate(words):
            x = rng.random()
            if x < self.p_mask:
                out.append(MASK_TOKEN)
            elif x < self.p_mask + self.p_pos and tags is not None and tags[i] in self.by_tag:
                out.append(self.by_tag[tags[i]].draw(rng))
            else:
                out.append(word)
        if out and rng.random() < self.p_ng:
            n = rng.randint(1, self.max_ngram)
            if n < len(out):
                start = rng.randint(0, len(out) - n)
                out = out[start : start + n]
        return " ".join(out)
