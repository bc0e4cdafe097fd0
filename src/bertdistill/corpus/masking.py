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
at a piece that is not a continuation piece, ``continuation[id]`` True for '##' pieces);
words are ranked by the key of their first piece and taken whole, in that order, skipping
a word that would exceed the budget, until the budget is met (as BERT's whole-word masking
does), so at most ``ceil(p x n)`` positions are chosen.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

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
        self.weights = probs
        self.mask_token_id = int(mask_token_id)
        self.vocab_size = int(vocab_size)
        self.mlm_probability = float(mlm_probability)
        self.mask_ratio, self.random_ratio = float(mask_ratio), float(random_ratio)
        self.random_ids = torch.nonzero(probs > 0).flatten()
        self.whole_word = bool(whole_word)
        if whole_word:
            if continuation is None:
                raise ValueError("whole-word masking needs `continuation` (True for '##' pieces), "
                                 "e.g. bertdistill.corpus.continuation_mask(tokenizer)")
            continuation = torch.as_tensor(continuation, dtype=torch.bool).flatten()
            if continuation.numel() != vocab_size:
                raise ValueError(f"continuation covers {continuation.numel()} ids, the vocabulary has {vocab_size}")
        self.continuation = continuation

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
        device = input_ids.device
        ids = input_ids.cpu().long()
        attended = attention_mask.cpu().bool()
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.vocab_size):
            raise ValueError(f"token id outside the vocabulary of {self.vocab_size} ids in the batch")
        u, action, pick = self.draws(attended, seeds)
        w = self.weights[ids]
        maskable = attended & (w > 0)
        keys = torch.where(maskable, torch.log1p(-u) / torch.where(maskable, w, 1.0), -math.inf)
        budgets = [self.budget(int(n)) for n in maskable.sum(1)]
        if self.whole_word:
            chosen = torch.zeros_like(maskable)
            for row, k in enumerate(budgets):
                chosen[row, self.whole_words(ids[row], keys[row], maskable[row], k)] = True
        else:  # the k largest keys of each row
            order = torch.argsort(keys, dim=1, descending=True, stable=True)
            ranks = torch.empty_like(order).scatter_(1, order, torch.arange(ids.size(1)).expand_as(order))
            chosen = ranks < torch.tensor(budgets, dtype=torch.long).unsqueeze(1)
        random_tokens = self.random_ids[(pick * len(self.random_ids)).long().clamp_(max=len(self.random_ids) - 1)]
        masked = ids.clone()
        to_mask = chosen & (action < self.mask_ratio)
        to_swap = chosen & (action >= self.mask_ratio) & (action < self.mask_ratio + self.random_ratio)
        masked[to_mask] = self.mask_token_id
        masked[to_swap] = random_tokens[to_swap]
        labels = torch.where(chosen, ids, torch.full_like(ids, IGNORE))
        return masked.to(device, input_ids.dtype), labels.to(device)

    @staticmethod
    def draws(attended: torch.Tensor, seeds: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Three uniform [B, L] draws (key, action, random token), filled only at attended positions.

        Row r draws 3 x n_r numbers from its own generator seeded by ``seeds[r]``, in the order
        of its attended positions, so a row's draws do not depend on padding or other rows.
        """
        counts = attended.sum(1).tolist()
        rows = [torch.rand(3, n, generator=torch.Generator().manual_seed(int(seed)), dtype=torch.float64)
                for n, seed in zip(counts, seeds)]
        out = torch.zeros((3, *attended.shape), dtype=torch.float64)
        if rows:
            flat = torch.cat(rows, dim=1)
            for i in range(3):
                out[i][attended] = flat[i]
        return out[0], out[1], out[2]

    def whole_words(self, ids: torch.Tensor, keys: torch.Tensor, maskable: torch.Tensor, k: int) -> torch.Tensor:
        """Positions of whole words, taken by decreasing key of their first piece, within budget k."""
        cont = self.continuation[ids] & maskable
        prev_maskable = torch.cat([torch.tensor([False]), maskable[:-1]])
        starts = maskable & ~(cont & prev_maskable)
        word = torch.cumsum(starts.long(), 0) - 1  # word number of each maskable position
        first = torch.nonzero(starts).flatten()
        sizes = torch.bincount(word[maskable], minlength=first.numel())
        picked: list[int] = []
        total = 0
        for w in torch.argsort(keys[first], descending=True, stable=True).tolist():
            size = int(sizes[w])
            if total + size <= k:
                picked.append(w)
                total += size
                if total == k:
                    break
        if not picked:
            return torch.zeros(0, dtype=torch.long)
        take = torch.zeros(first.numel(), dtype=torch.bool)
        take[picked] = True
        return torch.nonzero(maskable & take[word.clamp(min=0)]).flatten()
