"""Synonym replacement from WordNet 3.0 (EDA, Wei & Zou 2019), read from Debian's files.

``apt-get install wordnet-base`` puts the database in /usr/share/wordnet (index.* and
data.* per part of speech); ``WORDNET_DIR`` points elsewhere. It is optional: without it
this augmenter is refused with a message saying how to install it.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from .registry import Augmenter, check_probability, register_augmenter

POS_FILES = ("noun", "verb", "adj", "adv")
STOPWORDS = frozenset(
    "a an the and or but if of at by for with about to from in on is are was were be been am it its this that "
    "these those i me my we our you your he him his she her they them their what which who whom not no do does "
    "did have has had so than too very can will just".split()
)


def wordnet_dir() -> Path:
    folder = Path(os.environ.get("WORDNET_DIR", "/usr/share/wordnet"))
    if not all((folder / f"index.{p}").is_file() and (folder / f"data.{p}").is_file() for p in POS_FILES):
        raise FileNotFoundError(
            f"WordNet synonym replacement needs the WordNet 3.0 database in {folder} (index.noun, data.noun, ...): "
            "apt-get install wordnet-base, or set WORDNET_DIR"
        )
    return folder


class WordNet:
    """lemma -> synonyms (the other lemmas of all its synsets), for the four parts of speech."""

    def __init__(self, folder: Path | None = None):
        self.folder = folder or wordnet_dir()
        self._offsets: dict[str, list[tuple[str, int]]] = {}
        for pos in POS_FILES:
            with open(self.folder / f"index.{pos}", encoding="utf-8") as fh:
                for line in fh:
                    if line.startswith(" "):
                        continue  # licence header
                    parts = line.split()
                    n_synsets, n_pointers = int(parts[2]), int(parts[3])
                    offsets = parts[6 + n_pointers : 6 + n_pointers + n_synsets]
                    self._offsets.setdefault(parts[0], []).extend((pos, int(o)) for o in offsets)
        self._files = {pos: open(self.folder / f"data.{pos}", "rb") for pos in POS_FILES}
        self._cache: dict[str, list[str]] = {}

    def _synset_words(self, pos: str, offset: int) -> list[str]:
        fh = self._files[pos]
        fh.seek(offset)
        parts = fh.readline().decode("utf-8").split()
        count = int(parts[3], 16)
        return [parts[4 + 2 * i] for i in range(count)]

    def synonyms(self, word: str) -> list[str]:
        key = word.lower()
        if key not in self._cache:
            found: dict[str, None] = {}
            for pos, offset in self._offsets.get(key, []):
                for lemma in self._synset_words(pos, offset):
                    lemma = lemma.split("(")[0].replace("_", " ").lower()
                    if lemma != key:
                        found[lemma] = None
            self._cache[key] = list(found)
        return self._cache[key]


@register_augmenter("wordnet")
class WordNetAugmenter(Augmenter):
    """Replace about ``p`` of the (non-stop) words that have synonyms by a random synonym."""

    params = ("p",)

    def __init__(self, p: float = 0.1, *, wordnet: WordNet | None = None):
        self.p = check_probability("p", p)
        self.wordnet = wordnet if wordnet is not None else WordNet()

    def augment(self, text: str, rng: random.Random, partner: str | None = None) -> str:
        words = text.split()
        candidates = [i for i, w in enumerate(words) if w.lower() not in STOPWORDS and self.wordnet.synonyms(w)]
        if not candidates or self.p == 0:
            return text
        n = max(1, round(self.p * len(words)))
        for i in rng.sample(candidates, min(n, len(candidates))):
            words[i] = rng.choice(self.wordnet.synonyms(words[i]))
        return " ".join(words)
