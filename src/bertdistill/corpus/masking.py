"""Masked-LM masking as DistilBERT does it, made independent of batching and process count.

For each sequence, ``ceil(mlm_probability x n)`` positions are drawn WITHOUT replacement,
where n is the number of maskable tokens (attended positions whose token has a non-zero
masking probability: [CLS], [SEP], [PAD] and other specials never are), each with
probability proportional to its token's smoothed weight (``counts.masking_probabilities``).
A chosen position becomes [MASK] with probability ``mask_ratio`` (0.8), a uniformly drawn
non-special token with ``random_ratio`` (0.1), and stays as it is otherwise (0.1).
``labels`` hold the original id at chosen positions and -100 elsewhere.

Deviation from DistilBERT's reference code, on purpose: the reference draws
``ceil(0.15 x tokens of the whole batch)`` positions over the flattened batch (counting
[CLS]/[SEP] in the budget), so a sequence's mask depends on which other sequences share
its batch, hence on the batch size and the number of processes. Here each sequence draws
its own budget with its own ``torch.Generator`` seeded by ``seeds[row]`` (see ``seed_for``:
base seed, epoch, sequence index), and only from its own attended tokens, so the mask of
a sequence is the same whatever the batch composition, padding length or process count,
and a new mask is drawn each epoch. The expected masked share is the same 15 %.

Sampling without replacement by weights uses exponential keys (Efraimidis & Spirakis):
the k positions with the largest ``log(u) / w`` (u uniform) are a weighted sample without
replacement, as ``torch.multinomial(w, k, replacement=False)`` would give.

Whole-word masking (``whole_word=True``): positions are grouped into words (a word starts
at a piece that is not a continuation piece, ``continuation[id]`` True for '##' pieces, or
for the pieces without a 'Ġ' / '▁' word-start marker: ``vocab.continuation_mask``);
words are ranked by the key of their first piece and taken whole, in that order, skipping
a word that would exceed the budget, until the budget is met (as BERT's whole-word masking
does), so at most ``ceil(p x n)`` positions are chosen.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np
import torch

IGNORE = -100


class MlmMasker:
    def __init__(self, probs: torch.Tensor, *, mask_token_id: int, vocab_size: int, mlm_probability: float = 0.15,
                 mask_ratio: float = 0.8, random_ratio: float = 0.1, whole_word: bool = False,
                 continuation: torch.Tensor | None = None):
        probs = torch.as_tensor(probs, dtype=torch.float64).flatten()
        if probs.numel() != vocab_size:
            raise ValueError(f"masking probabilities cover {probs.numel()} ids, the vocabulary has {vocab_size}")
        if (probs < 0).any() or not torch.isfinite(probs).all() or probs.sum() <= 0:
            raise ValueError("masking probabilities must be finite, >= 0, and not all 0")
        if not 0.0 < mlm_probability <= 1.0:
            raise ValueError(f"--mlm-probability must be in (0, 1], got {mlm_probability}")
        if mask_ratio < 0 or random_ratio < 0 or mask_ratio + random_ratio > 1.0 + 1e-9:
            raise ValueError(f"mask ratio {mask_ratio} and random ratio {random_ratio} must be >= 0 and sum to <= 1")
        if not 0 <= mask_token_id < vocab_size:
            raise ValueError(f"mask token id {mask_token_id} is outside the vocabulary of {vocab_size} ids")
        self.weights = probs.numpy()
        self.mask_token_id = int(mask_token_id)
        self.vocab_size = int(vocab_size)
        self.mlm_probability = float(mlm_probability)
        self.mask_ratio, self.random_ratio = float(mask_ratio), float(random_ratio)
        self.random_ids = np.flatnonzero(self.weights > 0)
        self.whole_word = bool(whole_word)
        if whole_word:
            if continuation is None:
                raise ValueError("whole-word masking needs `continuation` (True for pieces that continue a word), "
                                 "e.g. bertdistill.corpus.continuation_mask(tokenizer)")
            continuation = torch.as_tensor(continuation, dtype=torch.bool).flatten()
            if continuation.numel() != vocab_size:
                raise ValueError(f"continuation covers {continuation.numel()} ids, the vocabulary has {vocab_size}")
        self.continuation = None if continuation is None else continuation.numpy()

    @staticmethod
    def seed_for(base_seed: int, epoch: int, sequence_index: int) -> int:
        """A stable 63-bit seed for (run seed, epoch, sequence): the same on every machine and process."""
        text = f"{int(base_seed)}:{int(epoch)}:{int(sequence_index)}".encode()
        return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") >> 1

    def budget(self, maskable: int) -> int:
        """ceil(mlm_probability x maskable), robust to float noise (0.15 x 20 is 3, not 4)."""
        return min(maskable, math.ceil(round(self.mlm_probability * maskable, 9)))

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 seeds: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        if input_ids.dim() != 2 or attention_mask.shape != input_ids.shape:
            raise ValueError(f"input_ids {tuple(input_ids.shape)} and attention_mask "
                             f"{tuple(attention_mask.shape)} must be the same [batch, length] shape")
        if len(seeds) != input_ids.size(0):
            raise ValueError(f"{len(seeds)} seeds for a batch of {input_ids.size(0)} sequences")
        # numpy from here on: single-threaded, so no thread-pool contention in a busy trainer
        ids = input_ids.detach().cpu().numpy().astype(np.int64)
        attended = attention_mask.detach().cpu().numpy() != 0
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"token id outside the vocabulary of {self.vocab_size} ids in the batch")
        u, action, pick = self.draws(attended, seeds)
        w = self.weights[ids]
        maskable = attended & (w > 0)
        with np.errstate(divide="ignore"):
            keys = np.where(maskable, np.log1p(-u) / np.where(maskable, w, 1.0), -np.inf)
        budgets = np.array([self.budget(int(n)) for n in maskable.sum(1)], dtype=np.int64)
        if self.whole_word:
            chosen = np.zeros_like(maskable)
            for row, k in enumerate(budgets):
                chosen[row, self.whole_words(ids[row], keys[row], maskable[row], int(k))] = True
        else:  # the k largest keys of each row
            order = np.argsort(-keys, axis=1, kind="stable")
            ranks = np.empty_like(order)
            np.put_along_axis(ranks, order, np.arange(ids.shape[1])[None, :].repeat(ids.shape[0], 0), axis=1)
            chosen = ranks < budgets[:, None]
        n_random = len(self.random_ids)
        random_tokens = self.random_ids[np.minimum((pick * n_random).astype(np.int64), n_random - 1)]
        masked = ids.copy()
        masked[chosen & (action < self.mask_ratio)] = self.mask_token_id
        swap = chosen & (action >= self.mask_ratio) & (action < self.mask_ratio + self.random_ratio)
        masked[swap] = random_tokens[swap]
        labels = np.where(chosen, ids, IGNORE)
        device = input_ids.device
        return (torch.from_numpy(masked).to(device, input_ids.dtype), torch.from_numpy(labels).to(device))

    @staticmethod
    def draws(attended: np.ndarray, seeds: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Three uniform [B, L] draws (key, action, random token), filled only at attended positions.

        Row r draws 3 x n_r numbers from its own ``torch.Generator`` seeded by ``seeds[r]``, in
        the order of its attended positions, so a row's draws do not depend on padding or
        other rows.
        """
        counts = attended.sum(1).tolist()
        out = np.zeros((3, *attended.shape), dtype=np.float64)
        rows = [torch.rand(3, n, generator=torch.Generator().manual_seed(int(seed)), dtype=torch.float64)
                for n, seed in zip(counts, seeds)]
        if rows:
            flat = torch.cat(rows, dim=1).numpy()
            for i in range(3):
                out[i][attended] = flat[i]
        return out[0], out[1], out[2]

    def whole_words(self, ids: np.ndarray, keys: np.ndarray, maskable: np.ndarray, k: int) -> np.ndarray:
        """Positions of whole words, taken by decreasing key of their first piece, within budget k."""
        cont = self.continuation[ids] & maskable
        prev_maskable = np.concatenate([[False], maskable[:-1]])
        starts = maskable & ~(cont & prev_maskable)
        word = np.cumsum(starts) - 1  # word number of each maskable position
        first = np.flatnonzero(starts)
        sizes = np.bincount(word[maskable], minlength=first.size)
        take = np.zeros(first.size, dtype=bool)
        total = 0
        for w in np.argsort(-keys[first], kind="stable").tolist():
            if total + sizes[w] <= k:
                take[w] = True
                total += int(sizes[w])
                if total == k:
                    break
        return np.flatnonzero(maskable & take[np.maximum(word, 0)])
