"""Data augmentation for distillation transfer sets (one module per family).

Families (``AUGMENTERS``): ``tang`` (masking, POS-guided replacement, n-gram sampling),
``tinybert`` (masked-LM / GloVe-neighbour replacement), ``wordnet`` (synonyms), ``tfidf``
(uninformative-word replacement), ``typo``, ``unigram``, ``blank``, ``shuffle``,
``contraction`` (noise.py) and ``crossover``. :func:`build_transfer_set` makes the
augmented set (originals kept, N distinct copies each) and writes it as JSON lines.
"""

from __future__ import annotations

from . import crossover, noise, tang, tfidf, tinybert, wordnet  # noqa: F401  (register the families)
from .registry import AUGMENTERS, Augmenter, build_augmenter, register_augmenter
from .transfer import augment_examples, build_transfer_set, read_transfer_set, write_transfer_set

__all__ = ["AUGMENTERS", "Augmenter", "augment_examples", "build_augmenter", "build_transfer_set",
           "read_transfer_set", "register_augmenter", "write_transfer_set"]
