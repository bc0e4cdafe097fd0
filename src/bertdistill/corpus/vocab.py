"""What a prepared corpus records about its tokenizer: vocabulary hash, special ids, word pieces.

A shard folder is only valid for the vocabulary it was tokenised with, so the folder keeps
a hash of the vocabulary (token -> id pairs, sorted by id) and readers compare it with the
tokenizer they are given. :func:`continuation_mask` tells whole-word masking which pieces
continue a word, for WordPiece ('##'), byte-level BPE ('Ġ') and sentencepiece ('▁') vocabularies.
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


# How a vocabulary marks word boundaries: WordPiece marks the pieces that continue a word
# ('##ing'); byte-level BPE (RoBERTa, GPT-2: 'Ġ') and sentencepiece (ALBERT, XLM-R, T5: '▁')
# mark the pieces that start one, every other piece continuing the word before it.
CONTINUATION_PREFIX = "##"
WORD_START_MARKERS = ("\u0120", "\u2581")  # 'Ġ' (byte-level space), '▁' (sentencepiece space)


def word_boundaries(tokenizer) -> tuple[str, str]:
    """("continuation", "##") or ("start", marker): how ``tokenizer``'s pieces mark words.

    The scheme whose marker begins the most vocabulary entries wins (a byte-level BPE
    vocabulary holds a few literal '###' tokens, a WordPiece one no 'Ġ'). A vocabulary with
    none of them (word-level, characters) cannot tell a word's pieces apart: ValueError
    naming ``--whole-word``.
    """
    tokens = list(tokenizer.get_vocab())
    counts = {CONTINUATION_PREFIX: sum(t.startswith(CONTINUATION_PREFIX) and len(t) > 2 for t in tokens)}
    counts.update({m: sum(t.startswith(m) for t in tokens) for m in WORD_START_MARKERS})
    marker = max(counts, key=counts.get)
    if counts[marker] == 0:
        raise ValueError(
            f"--whole-word: the vocabulary of tokenizer {tokenizer_name(tokenizer)!r} marks neither the "
            f"pieces that continue a word ('##', WordPiece) nor those that start one ('Ġ' byte-level BPE, "
            f"'▁' sentencepiece), so the pieces of a word cannot be grouped; leave --whole-word out")
    return ("continuation", marker) if marker == CONTINUATION_PREFIX else ("start", marker)


def continuation_mask(tokenizer, prefix: str | None = None):
    """Bool tensor over the vocabulary: True for pieces that continue a word.

    With ``prefix`` given, the pieces that start with it ('##ing'). By default the scheme is
    read from the vocabulary (:func:`word_boundaries`): WordPiece '##' pieces continue a word;
    with byte-level BPE ('Ġ') or sentencepiece ('▁') every piece WITHOUT the word-start marker
    continues one (so 'Ġun' 'bel' 'iev' 'able' is one word, and so is 'film' '.', as fairseq's
    whole-word masking groups them). Special tokens are never continuations; a sequence's first
    piece starts a word whatever it is, since the masker starts a word after any unmaskable
    position. Raises ValueError (naming ``--whole-word``) for a vocabulary without markers.
    """
    import torch

    kind, marker = ("continuation", prefix) if prefix is not None else word_boundaries(tokenizer)
    specials = set(getattr(tokenizer, "all_special_tokens", None) or [])
    mask = np.zeros(vocab_size(tokenizer), dtype=bool)
    for token, index in tokenizer.get_vocab().items():
        if token in specials:
            continue
        if kind == "continuation":
            mask[index] = token.startswith(marker) and len(token) > len(marker)
        else:
            mask[index] = not token.startswith(marker)
    return torch.from_numpy(mask)
