"""Surface noise: typos, unigram and blank noise, local shuffles, contractions.

``typo``: each word, with probability ``p``, gets one character edit; ``mode`` random
(delete / insert / swap / substitute a random letter) or qwerty (a letter becomes one of
its keyboard neighbours). ``unigram``: a word is replaced with probability ``p`` by a
word drawn from the corpus unigram distribution (Xie et al. 2017). ``blank``: a word
becomes ``_`` with probability ``p``. ``shuffle``: each word moves at most ``window``
places (sort by position + U[0, window + 1), Lample et al. 2018). ``contraction``:
expansions ("do not") become contractions ("don't") and back, each with probability ``p``.
"""

from __future__ import annotations

import bisect
import itertools
import random
import string
from collections import Counter

from .registry import Augmenter, check_positive_int, check_probability, register_augmenter

QWERTY_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _qwerty_neighbours() -> dict[str, str]:
    where = {c: (r, i) for r, row in enumerate(QWERTY_ROWS) for i, c in enumerate(row)}
    out = {}
    for c, (r, i) in where.items():
        near = [d for d, (r2, i2) in where.items() if d != c and abs(r2 - r) <= 1 and abs(i2 - i) <= 1]
        out[c] = "".join(sorted(near))
    return out


QWERTY = _qwerty_neighbours()


def typo(word: str, rng: random.Random, mode: str) -> str:
    """One character edit of ``word`` (unchanged if it has no letter to edit)."""
    letters = [i for i, c in enumerate(word) if c.lower() in QWERTY]
    if not letters:
        return word
    i = rng.choice(letters)
    if mode == "qwerty":
        return word[:i] + rng.choice(QWERTY[word[i].lower()]) + word[i + 1:]
    op = rng.choice(("delete", "insert", "swap", "substitute"))
    if op == "delete" and len(word) > 1:
        return word[:i] + word[i + 1:]
    if op == "swap" and i + 1 < len(word):
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if op == "insert":
        return word[:i] + rng.choice(string.ascii_lowercase) + word[i:]
    return word[:i] + rng.choice([c for c in string.ascii_lowercase if c != word[i].lower()]) + word[i + 1:]


@register_augmenter("typo")
class TypoAugmenter(Augmenter):
    params = ("p", "mode")

    def __init__(self, p: float = 0.1, mode: str = "qwerty"):
        self.p = check_probability("p", p)
        if mode not in ("random", "qwerty"):
            raise ValueError(f"--mode must be random or qwerty, got {mode!r}")
        self.mode = mode

    def augment(self, text, rng, partner=None):
        return " ".join(typo(w, rng, self.mode) if rng.random() < self.p else w for w in text.split())


@register_augmenter("unigram")
class UnigramNoise(Augmenter):
    params = ("p",)

    def __init__(self, p: float = 0.1):
        self.p = check_probability("p", p)
        self.words: list[str] = []

    def fit(self, texts):
        counts = Counter(w for t in texts for w in t.split())
        if not counts:
            raise ValueError("unigram noise needs texts to fit on: the transfer set is empty")
        self.words = list(counts)
        self.cumulative = list(itertools.accumulate(counts[w] for w in self.words))

    def augment(self, text, rng, partner=None):
        if not self.words:
            raise ValueError("unigram augmenter used before fit(): it needs the corpus word counts")
        out = []
        for w in text.split():
            if rng.random() < self.p:
                w = self.words[bisect.bisect_right(self.cumulative, rng.random() * self.cumulative[-1])]
            out.append(w)
        return " ".join(out)


@register_augmenter("blank")
class BlankNoise(Augmenter):
    params = ("p",)

    def __init__(self, p: float = 0.1):
        self.p = check_probability("p", p)

    def augment(self, text, rng, partner=None):
        return " ".join("_" if rng.random() < self.p else w for w in text.split())


@register_augmenter("shuffle")
class LocalShuffle(Augmenter):
    params = ("window",)

    def __init__(self, window: int = 3):
        self.window = check_positive_int("window", window)

    def augment(self, text, rng, partner=None):
        words = text.split()
        keys = [i + rng.uniform(0, self.window + 1) for i in range(len(words))]
        return " ".join(w for _, w in sorted(zip(keys, words), key=lambda kv: kv[0]))


#: expanded form -> contracted form, both as tokenised text (SST-2 splits "don't" as "do n't")
CONTRACTIONS = {
    "do not": "do n't", "does not": "does n't", "did not": "did n't", "is not": "is n't",
    "are not": "are n't", "was not": "was n't", "were not": "were n't", "can not": "ca n't",
    "cannot": "ca n't", "will not": "wo n't", "would not": "would n't", "could not": "could n't",
    "should not": "should n't", "have not": "have n't", "has not": "has n't", "had not": "had n't",
    "it is": "it 's", "that is": "that 's", "there is": "there 's", "what is": "what 's",
    "i am": "i 'm", "you are": "you 're", "we are": "we 're", "they are": "they 're",
    "i have": "i 've", "you have": "you 've", "we have": "we 've", "they have": "they 've",
    "i will": "i 'll", "you will": "you 'll", "it will": "it 'll", "they will": "they 'll",
    "i would": "i 'd", "you would": "you 'd", "let us": "let 's",
}


@register_augmenter("contraction")
class ContractionAugmenter(Augmenter):
    params = ("p",)

    def __init__(self, p: float = 0.5):
        self.p = check_probability("p", p)
        pairs = list(CONTRACTIONS.items()) + [(c, e) for e, c in CONTRACTIONS.items() if e != "cannot"]
        self.rules: dict[str, list] = {}  # first word -> (source words, replacement words)
        for a, b in pairs:
            self.rules.setdefault(a.split()[0], []).append((a.split(), b.split()))

    def augment(self, text, rng, partner=None):
        words, out, i = text.split(), [], 0
        while i < len(words):
            for src, dst in self.rules.get(words[i].lower(), ()):
                if [w.lower() for w in words[i : i + len(src)]] == src and rng.random() < self.p:
                    out.extend(dst)
                    i += len(src)
                    break
            else:
                out.append(words[i])
                i += 1
        return " ".join(out)
