"""Masked-LM batches from prepared corpus shards, and held-out masked-LM evaluation.

Shared by the two masked-LM recipes (``mlm_head`` and ``general_distill``):

* :func:`open_corpus` opens a folder written by ``bertdistill corpus prepare`` (memory-mapped,
  nothing is read yet) and checks it was tokenised with the model's tokenizer;
* :class:`ShardExamples` is the lazy sequence the training engine indexes batch by batch
  (``{"input_ids", "index"}``), with ``lengths`` for length grouping;
* :class:`MaskedCollate` pads a batch and masks it with the corpus package's ``MlmMasker``,
  each row seeded by (seed, epoch, sequence index): a new mask every time a sequence is seen,
  the same one whatever the number of processes or the batch it lands in;
* :func:`evaluate_mlm` gives masked-token accuracy and cross-entropy on a held-out corpus,
  with masks fixed by a seed so that two models are scored on the same positions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..corpus import MlmMasker, TokenShards, masking_probabilities
from ..data.encode import Collator, length_grouped_batches
from ..models.inputs import model_inputs

IGNORE_INDEX = -100


def open_corpus(path: str | Path, tokenizer, *, flag: str = "--corpus") -> TokenShards:
    """The prepared shards in ``path``, checked against ``tokenizer`` (error naming ``flag``)."""
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"{flag} {folder}: no such folder; prepare one with "
                                "`bertdistill corpus prepare --text FILE --tokenizer T --output DIR`")
    try:
        shards = TokenShards(folder, tokenizer=tokenizer)
    except (ValueError, FileNotFoundError) as err:
        raise type(err)(f"{flag} {folder}: {err}") from None
    if len(shards) == 0:
        raise ValueError(f"{flag} {folder}: the prepared corpus holds no sequence")
    return shards


def check_vocabulary(tokenizer, config, *, model_flag: str, tokenizer_name: str) -> None:
    """The tokenizer's ids must index the model's embedding rows (read from the config only)."""
    size = getattr(config, "vocab_size", None)
    if size is not None and len(tokenizer) > int(size):
        raise ValueError(
            f"the tokenizer {tokenizer_name} has {len(tokenizer)} tokens but {model_flag} has "
            f"vocab_size {size}: ids from {size} upwards have no embedding. Use the tokenizer saved "
            f"with the model (and shards prepared with it)")


class ShardExamples(Sequence):
    """The training engine's view of the shards: item i is ``{"input_ids", "index": i}``.

    Only the rows of a batch are read (memory-mapped); ``lengths`` comes from the shard index.
    ``limit`` keeps the first ``limit`` sequences (documented subsets for benchmarks).
    """

    def __init__(self, shards: TokenShards, limit: int | None = None):
        self.shards = shards
        self.size = len(shards) if limit is None else min(int(limit), len(shards))
        self.lengths = shards.lengths[: self.size]

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self.size:
            raise IndexError(i)
        return {"input_ids": self.shards[i], "index": int(i)}


def build_masker(shards: TokenShards, tokenizer, *, mlm_probability: float = 0.15,
                 smoothing: float = 0.7, whole_word: bool = False) -> MlmMasker:
    """DistilBERT masking: probabilities max(count, 1)^-smoothing from the corpus's counts."""
    if not 0 < mlm_probability < 1:
        raise ValueError(f"--mlm-probability must be between 0 and 1, got {mlm_probability}")
    if tokenizer.mask_token_id is None:
        raise ValueError("the tokenizer has no [MASK] token; masked-LM training needs one")
    probs = masking_probabilities(shards.token_counts, smoothing=smoothing,
                                  special_ids=tokenizer.all_special_ids)
    continuation = None
    if whole_word:
        vocab = tokenizer.convert_ids_to_tokens(list(range(len(probs))))
        continuation = np.array([str(t).startswith("##") for t in vocab], dtype=bool)
    return MlmMasker(probs, mask_token_id=tokenizer.mask_token_id, vocab_size=len(probs),
                     mlm_probability=mlm_probability, whole_word=whole_word, continuation=continuation)


class MaskedCollate:
    """Pad a batch of ``ShardExamples`` items and mask it.

    ``epoch`` is a callable giving the epoch the engine is in (read from its state), so a
    sequence gets a new mask in every epoch. The batch holds ``input_ids`` (masked),
    ``attention_mask`` and ``labels`` (original ids at masked positions, -100 elsewhere);
    ``tokens`` counts the real tokens collated (for tokens/s).
    """

    def __init__(self, masker: MlmMasker, pad_token_id: int, seed: int, epoch: Callable[[], int]):
        self.masker = masker
        self.pad = Collator(pad_token_id)
        self.seed = int(seed)
        self.epoch = epoch
        self.tokens = 0

    def __call__(self, items: list[dict]) -> dict:
        batch = self.pad([{"input_ids": f["input_ids"]} for f in items])
        epoch = int(self.epoch())
        seeds = [MlmMasker.seed_for(self.seed, epoch, f["index"]) for f in items]
        masked, labels = self.masker(batch["input_ids"], batch["attention_mask"], seeds)
        self.tokens += int(batch["attention_mask"].sum())
        return {"input_ids": masked, "attention_mask": batch["attention_mask"], "labels": labels}


def evaluation_batches(shards: TokenShards, batch_size: int, max_sequences: int | None) -> list[list[int]]:
    """Evenly spread sequences (all of them, or ``max_sequences``), batched by length."""
    n = len(shards)
    if max_sequences is not None and max_sequences < n:
        indices = np.unique(np.linspace(0, n - 1, num=max_sequences).round().astype(np.int64))
    else:
        indices = np.arange(n)
    lengths = shards.lengths[indices]
    batches = length_grouped_batches(lengths.tolist(), batch_size, shuffle=False)
    return [[int(indices[i]) for i in b] for b in batches]


@torch.no_grad()
def evaluate_mlm(model: torch.nn.Module, shards: TokenShards, collate: MaskedCollate, *,
                 batch_size: int = 16, max_sequences: int | None = None, desc: str = "mlm eval") -> dict:
    """Masked-token accuracy and mean cross-entropy (nats) of ``model`` on ``shards``.

    ``collate`` fixes the masks (its seed and epoch), so the same call scores two models on
    the same masked positions. Also returns the perplexity exp(loss) and the counts.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total_loss, correct, count = 0.0, 0, 0
    batches = evaluation_batches(shards, batch_size, max_sequences)
    for indices in tqdm(batches, desc=desc, leave=False, dynamic_ncols=True):
        batch = collate([{"input_ids": shards[i], "index": i} for i in indices])
        batch = {k: v.to(device) for k, v in batch.items()}
        logits = model(**model_inputs(model, batch)).logits
        picked = batch["labels"] != IGNORE_INDEX
        chosen = logits[picked].float()
        targets = batch["labels"][picked]
        total_loss += float(F.cross_entropy(chosen, targets, reduction="sum"))
        correct += int((chosen.argmax(-1) == targets).sum())
        count += int(picked.sum())
    model.train(was_training)
    loss = total_loss / max(count, 1)
    return {"mlm_loss": loss, "mlm_accuracy": correct / max(count, 1), "perplexity": math.exp(min(loss, 50.0)),
            "masked_tokens": count, "sequences": sum(len(b) for b in batches)}
