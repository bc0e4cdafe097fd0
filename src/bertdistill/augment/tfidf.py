"""TF-IDF-guided replacement of uninformative words (UDA, Xie et al. 2020).

A word with a low TF-IDF score in its sentence is more likely to be replaced (the
average replacement probability over a sentence is ``p``), and the replacement is drawn
from the corpus vocabulary with a weight that favours uninformative (low-IDF) words, so
that the words carrying the label are kept.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections import Counter

from .registry import Augmenter, check_probability, register_augmenter


@register_augmenter("tfidf")
class TfidfAugmenter(Augmenter):
    params = ("p",)

    def __init__(self, p: float = 0.1):
        self.p = check_probability("p", p)
        self.idf: dict[str, float] = {}

    def fit(self, texts: list[str]) -> None:
        if not texts:
            raise ValueError("TF-IDF replacement needs texts to fit on: the transfer set is empty")
        docs = Counter(w for t in texts for w in set(t.split()))
        n = len(texts)
        self.idf = {w: math.log((n + 1) / (c + 1)) + 1.0 for w, c in docs.items()}
        words = sorted(self.idf)
        top = max(self.idf.values())
        weights = [top - self.idf[w] + 1e-6 for w in words]  # low IDF -> high weight
        self.words, self.cumulative = words, list(itertools.accumulate(weights))

    def _draw(self, rng: random.Random) -> str:
        return self.words[bisect.bisect_right(self.cumulative, rng.random() * self.cumulative[-1])]

    def augment(self, text: str, rng: random.Random, partner: str | None = None) -> str:
        if not self.idf:
            raise ValueError("tfidf augmenter used before fit(): it needs the corpus statistics")
        words = text.split()
        if not words:
            return text
        tf = Counter(words)
        default = max(self.idf.values())
        scores = [tf[w] * self.idf.get(w, default) for w in words]
        top = max(scores)
        gaps = [top - s for s in scores]
        mean = sum(gaps) / len(gaps)
        out = []
        for word, gap in zip(words, gaps):
            prob = min(1.0, self.p * gap / mean) if mean > 0 else self.p
            out.append(self._draw(rng) if rng.random() < prob else word)
        return " ".join(out)
