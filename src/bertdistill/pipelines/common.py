"""Small helpers every recipe's run uses: a seeded subset of a split, and JSON-safe results."""

from __future__ import annotations

import json

import torch


def seeded_subset(examples: list, n: int | None, seed: int) -> list:
    """``n`` examples drawn with ``seed`` (in their original order), or all of them."""
    if n is None or n >= len(examples):
        return examples
    order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(seed))[:n]
    return [examples[i] for i in sorted(order.tolist())]


def jsonable(obj):
    """``obj`` with everything JSON cannot hold turned into strings (paths, dtypes, ...)."""
    return json.loads(json.dumps(obj, default=str))
