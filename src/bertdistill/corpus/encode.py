"""Tokenise a batch of documents and cut them into [CLS] ... [SEP] sequences (numpy, no Python loop per token).

``SequenceEncoder`` holds a copy of the fast tokenizer's Rust backend with truncation and
padding switched off (tokenizer.json files often carry ``max_length`` truncation, which
would silently drop the end of every long document). A document of n word pieces becomes
ceil(n / (max_length - 2)) sequences of at most ``max_length - 2`` pieces, each wrapped in
[CLS] ... [SEP]; the last piece keeps the remainder. A sequence shorter than ``min_length``
tokens ([CLS]/[SEP] included), or whose share of [UNK] among its word pieces is above
``max_unk_ratio``, is dropped and counted. The encoder is picklable (it carries the
tokenizer as JSON), so worker processes rebuild it without loading transformers.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain

import numpy as np


@dataclass
class Encoded:
    """Kept sequences of one batch, back to back, and what was dropped."""

    ids: np.ndarray          # int64, all kept sequences concatenated
    lengths: np.ndarray      # int64, length of each kept sequence (specials included)
    documents: int = 0
    too_short: int = 0
    too_many_unknown: int = 0


class SequenceEncoder:
    def __init__(self, tokenizer_json: str, *, cls_id: int, sep_id: int, unk_id: int | None,
                 max_length: int, min_length: int, max_unk_ratio: float):
        self.tokenizer_json = tokenizer_json
        self.cls_id, self.sep_id, self.unk_id = cls_id, sep_id, unk_id
        self.max_length, self.min_length, self.max_unk_ratio = max_length, min_length, max_unk_ratio
        self._tokenizer = None

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_tokenizer"} | {"_tokenizer": None}

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            tok = Tokenizer.from_str(self.tokenizer_json)
            tok.no_truncation()
            tok.no_padding()
            self._tokenizer = tok
        return self._tokenizer

    def tokenize(self, lines: list[str]) -> list[list[int]]:
        """Word-piece ids of each line, without special tokens."""
        return [e.ids for e in self.tokenizer.encode_batch_fast(lines, add_special_tokens=False)]

    def __call__(self, lines: list[str]) -> Encoded:
        return self.cut(self.tokenize(lines))

    def cut(self, docs: list[list[int]]) -> Encoded:
        """Cut tokenised documents into sequences, drop the short / mostly-unknown ones."""
        doc_len = np.fromiter((len(d) for d in docs), dtype=np.int64, count=len(docs))
        flat = np.fromiter(chain.from_iterable(docs), dtype=np.int64, count=int(doc_len.sum()))
        room = self.max_length - 2
        empty = int((doc_len == 0).sum())
        doc_len = doc_len[doc_len > 0]
        pieces = -(-doc_len // room)                      # ceil: sequences per document
        # content length of every sequence: `room` except the last piece of each document
        seq_len = np.full(int(pieces.sum()), room, dtype=np.int64)
        last = np.cumsum(pieces) - 1
        seq_len[last] = doc_len - (pieces - 1) * room
        starts = np.concatenate([[0], np.cumsum(seq_len)[:-1]]).astype(np.int64)
        keep = seq_len + 2 >= self.min_length
        too_short = int((~keep).sum()) + empty
        unknown_drop = np.zeros_like(keep)
        if self.unk_id is not None and self.max_unk_ratio < 1.0 and seq_len.size:
            unk = np.add.reduceat((flat == self.unk_id).astype(np.int64), starts)
            unknown_drop = keep & (unk > self.max_unk_ratio * seq_len)
            keep &= ~unknown_drop
        kept_len = seq_len[keep]
        content = flat[np.repeat(keep, seq_len)]
        out_len = kept_len + 2
        out = np.empty(int(out_len.sum()), dtype=np.int64)
        out_start = np.cumsum(out_len) - out_len
        seq_of_token = np.repeat(np.arange(kept_len.size), kept_len)
        out[np.arange(content.size) + 2 * seq_of_token + 1] = content
        out[out_start] = self.cls_id
        out[out_start + out_len - 1] = self.sep_id
        return Encoded(out, out_len, documents=len(docs), too_short=too_short,
                       too_many_unknown=int(unknown_drop.sum()))


_WORKER_ENCODER: SequenceEncoder | None = None


def init_worker(encoder: SequenceEncoder) -> None:
    """Pool initializer: keep the encoder in the worker process."""
    global _WORKER_ENCODER
    _WORKER_ENCODER = encoder


def encode_in_worker(lines: list[str]) -> Encoded:
    return _WORKER_ENCODER(lines)
