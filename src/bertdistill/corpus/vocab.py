"""What a prepared corpus records about its tokenizer: vocabulary hash, special ids, '##' pieces.

A shard folder is only valid for the vocabulary it was tokenised with, so the folder keeps
a hash of the vocabulary (token -> id pairs, sorted by id) and readers compare it with the
tokenizer they are given.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np


def resolve_tokenizer(tokenizer):
    """A tokenizer object from a name, alias or folder (``minilm-l6`` works), or the object itself."""
    if isinstance(tokenizer, (str, os.PathLike)):
        from ..models.loading import load_tokenizer

        return load_tokenizer(tokenizer)
    return tokenizer


def tokenizer_name(tokenizer) -> str:
    """The name or path a tokenizer was loaded from (for messages and meta.json)."""
    return str(getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__)


def vocab_size(tokenizer) -> int:
    """Number of ids the tokenizer can produce: the largest id + 1 (added tokens included)."""
    return max(tokenizer.get_vocab().values()) + 1


def vocab_hash(tokenizer) -> str:
    """sha256 of the vocabulary as a JSON list of [token, id] pairs sorted by id."""
    pairs = sorted(tokenizer.get_vocab().items(), key=lambda kv: (kv[1], kv[0]))
    text = json.dumps(pairs, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def special_ids(tokenizer) -> dict[str, int]:
    """The special tokens' ids by role (cls, sep, pad, mask, unk; those the tokenizer has)."""
    out = {}
    for role in ("cls", "sep", "pad", "mask", "unk"):
        value = getattr(tokenizer, f"{role}_token_id", None)
        if value is not None:
            out[role] = int(value)
    return out


def continuation_mask(tokenizer, prefix: str = "##"):
    """Bool tensor over the vocabulary: True for word pieces that continue a word ('##ing')."""
    import torch

    mask = np.zeros(vocab_size(tokenizer), dtype=bool)
    for token, index in tokenizer.get_vocab().items():
        if token.startswith(prefix) and len(token) > len(prefix):
            mask[index] = True
    return torch.from_numpy(mask)
