"""The augmentation registry: a name -> an :class:`Augmenter` class, and its checked options.

Every augmenter works on whitespace-separated words (the benchmark sets are tokenised
already), is seeded through the ``random.Random`` it is handed, and validates its options
in ``__init__`` with messages that name the CLI flag (``--p-mask``), before any work.
"""

from __future__ import annotations

import random
from typing import Callable, ClassVar

AUGMENTERS: dict[str, type["Augmenter"]] = {}


def register_augmenter(name: str) -> Callable[[type["Augmenter"]], type["Augmenter"]]:
    def wrap(cls: type[Augmenter]) -> type[Augmenter]:
        if name in AUGMENTERS:
            raise ValueError(f"augmenter {name!r} is already registered")
        cls.name = name
        AUGMENTERS[name] = cls
        return cls
    return wrap


def flag(param: str) -> str:
    """The CLI flag of an option: ``p_mask`` -> ``--p-mask``."""
    return "--" + param.replace("_", "-")


def check_probability(param: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{flag(param)} must be a probability in [0, 1], got {value!r}")
    return float(value)


def check_positive_int(param: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{flag(param)} must be an integer >= {minimum}, got {value!r}")
    return value


class Augmenter:
    """One augmentation family. ``fit`` sees the texts to augment once (vocabulary, tags,
    statistics); ``augment`` returns one perturbed copy of a text. Augmenters that combine
    two examples (cross-over) set ``needs_partner`` and take ``partner``."""

    name: ClassVar[str] = ""
    params: ClassVar[tuple[str, ...]] = ()
    needs_partner: ClassVar[bool] = False

    def fit(self, texts: list[str]) -> None:
        """Default: nothing to learn from the texts."""

    def augment(self, text: str, rng: random.Random, partner: str | None = None) -> str:  # pragma: no cover
        raise NotImplementedError


def build_augmenter(name: str, **params) -> Augmenter:
    """An augmenter by name with its options; unknown names and options are refused."""
    if name not in AUGMENTERS:
        raise ValueError(f"unknown augmentation --method {name!r}; known: {', '.join(sorted(AUGMENTERS))}")
    cls = AUGMENTERS[name]
    unknown = sorted(set(params) - set(cls.params))
    if unknown:
        allowed = ", ".join(flag(p) for p in cls.params) or "none"
        raise ValueError(f"{', '.join(flag(p) for p in unknown)} does not apply to --method {name}; "
                         f"its options: {allowed}")
    return cls(**params)
