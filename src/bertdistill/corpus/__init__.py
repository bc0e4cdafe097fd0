"""Raw text corpora for general (masked-LM) distillation.

``prepare_corpus`` turns text files into memory-mapped token shards once; ``TokenShards``
reads them; ``masking_probabilities`` + ``MlmMasker`` choose what to mask, per sequence and
seeded, so that a run masks the same way on any number of processes; ``MlmCollator`` makes
padded, masked batches.

Names are imported on first use, so that the tokenising worker processes (which import
``bertdistill.corpus.encode``) start without importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_WHERE = {
    "MlmCollator": "collate", "ShardDataset": "collate",
    "masking_probabilities": "counts",
    "IGNORE": "masking", "MlmMasker": "masking",
    "DEFAULT_SHARD_TOKENS": "prepare", "format_summary": "prepare", "prepare_corpus": "prepare",
    "TokenShards": "shards", "dtype_for_vocab": "shards",
    "continuation_mask": "vocab", "special_ids": "vocab", "vocab_hash": "vocab", "vocab_size": "vocab",
}

__all__ = sorted(_WHERE)

if TYPE_CHECKING:
    from .collate import MlmCollator, ShardDataset
    from .counts import masking_probabilities
    from .masking import IGNORE, MlmMasker
    from .prepare import DEFAULT_SHARD_TOKENS, format_summary, prepare_corpus
    from .shards import TokenShards, dtype_for_vocab
    from .vocab import continuation_mask, special_ids, vocab_hash, vocab_size


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
