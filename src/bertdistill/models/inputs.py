"""Pick from a batch the tensors a model's forward accepts (DistilBERT has no token_type_ids)."""

from __future__ import annotations

import inspect
from functools import lru_cache

import torch


@lru_cache(maxsize=64)
def _accepted(cls: type) -> frozenset[str]:
    return frozenset(inspect.signature(cls.forward).parameters)


def model_inputs(model: torch.nn.Module, batch: dict, *, labels: bool = False) -> dict:
    """The entries of ``batch`` that ``model.forward`` takes; ``labels`` only when asked."""
    accepted = _accepted(type(model))
    return {
        k: v for k, v in batch.items()
        if k in accepted and (labels or k != "labels")
    }
