"""Masked-LM batches from prepared corpus shards, and held-out masked-LM evaluation.

Shared by the two masked-LM recipes (``mlm_head`` and ``general_distill``), on top of the
corpus package (``bertdistill.corpus``: ``TokenShards``, ``ShardDataset``, ``MlmMasker``,
``MlmCollator``):

* :func:`open_corpus` opens a folder written by ``bertdistill corpus prepare`` (memory-mapped,
  nothing is read yet) and checks it was tokenised with the model's tokenizer;
* :func:`check_vocabulary` checks a tokenizer against the model: its ids must index the
  model's embedding rows, and a tokenizer given apart from the model must have the same
  vocabulary as the one saved with it (same hash as the corpus's ``meta.json`` keeps);
* :func:`build_masker` makes DistilBERT's masker from the corpus's token counts;
* :class:`EpochCollate` is the engine's collate: ``MlmCollator`` with the epoch the engine is
  in, so a sequence gets a new mask every epoch, seeded by (seed, epoch, sequence index) and
  the same whatever the number of processes or the batch it lands in;
* :func:`evaluate_mlm` gives masked-token accuracy and cross-entropy on a held-out corpus,
  with masks fixed by a seed so that two models are scored on the same positions.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..corpus import (IGNORE, MlmCollator, MlmMasker, ShardDataset, TokenShards, continuation_mask,
                      masking_probabilities, vocab_hash)
from ..corpus.vocab import word_boundaries
from ..data.encode import length_grouped_batches
from ..models.inputs import model_inputs
from ..models.loading import load_tokenizer, resolve_model

PREPARE_HINT = "prepare one with `bertdistill corpus prepare --text FILE --tokenizer T --output DIR`"

# Files that say a model folder holds its own tokenizer (WordPiece, byte-level BPE, sentencepiece).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "spiece.model",
                   "sentencepiece.bpe.model")


def open_corpus(path: str | Path, tokenizer, *, flag: str = "--corpus") -> TokenShards:
    """The prepared shards in ``path``, checked against ``tokenizer`` (errors name ``flag``)."""
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"{flag} {folder}: no such folder; {PREPARE_HINT}")
    try:
        shards = TokenShards(folder, tokenizer=tokenizer)
    except ValueError as err:  # DataError is a ValueError and names the file itself
        raise ValueError(f"{flag} {folder}: {err}") from None
    if len(shards) == 0:
        raise ValueError(f"{flag} {folder}: the prepared corpus holds no sequence")
    return shards


def corpus_fingerprint(shards: TokenShards) -> str:
    """A short hash naming a prepared corpus (its inputs, options and vocabulary, from meta.json)."""
    text = json.dumps(shards.meta.get("fingerprint"), sort_keys=True, default=str)
    return hashlib.sha256(f"{text}|{len(shards)}|{shards.meta.get('tokens')}".encode()).hexdigest()[:16]


def saved_tokenizer(model: str):
    """The tokenizer saved with ``model`` (folder, alias or hub id), or None when it has none."""
    source = Path(resolve_model(model))
    if source.is_dir() and not any((source / name).is_file() for name in TOKENIZER_FILES):
        return None
    try:
        return load_tokenizer(model)
    except (OSError, ValueError):  # a hub repository without tokenizer files
        return None


def check_vocabulary(tokenizer, config, *, model_flag: str, tokenizer_name: str, model: str | None = None) -> None:
    """The tokenizer's ids must index the model's embedding rows (read from the config only).

    With ``model`` (a tokenizer given apart from the model, ``--tokenizer``), a tokenizer saved
    with the model must have the same vocabulary (token -> id, compared by the hash that a
    prepared corpus keeps): the same size is not enough, an id would name another token."""
    size = getattr(config, "vocab_size", None)
    if size is not None and len(tokenizer) > int(size):
        raise ValueError(
            f"the tokenizer {tokenizer_name} has {len(tokenizer)} tokens but {model_flag} has "
            f"vocab_size {size}: ids from {size} upwards have no embedding. Use the tokenizer saved "
            f"with the model (and shards prepared with it)")
    own = saved_tokenizer(model) if model is not None else None
    if own is not None and vocab_hash(own) != vocab_hash(tokenizer):
        raise ValueError(
            f"the tokenizer {tokenizer_name} has another vocabulary than the one saved with {model_flag} "
            f"({len(tokenizer)} and {len(own)} tokens, other token -> id pairs): the model would read its "
            f"ids as other tokens. Leave --tokenizer out to use the model's own (and prepare the corpus "
            f"with it: `bertdistill corpus prepare --tokenizer {model}`)")


def check_masking(tokenizer, *, whole_word: bool = False) -> None:
    """What masking needs from the tokenizer, checked before any weights load: a [MASK] token
    and, for ``--whole-word``, a vocabulary that marks word pieces ('##', 'Ġ' or '▁')."""
    if tokenizer.mask_token_id is None:
        raise ValueError("the tokenizer has no [MASK] token; masked-LM training needs one")
    if whole_word:
        word_boundaries(tokenizer)


def build_masker(shards: TokenShards, tokenizer, *, mlm_probability: float = 0.15,
                 smoothing: float = 0.7, whole_word: bool = False) -> MlmMasker:
    """DistilBERT masking: probabilities max(count, 1)^-smoothing from the corpus's counts."""
    check_masking(tokenizer, whole_word=whole_word)
    probs = masking_probabilities(shards.token_counts, smoothing=smoothing, special_ids=tokenizer.all_special_ids)
    return MlmMasker(probs, mask_token_id=tokenizer.mask_token_id, vocab_size=shards.vocab_size,
                     mlm_probability=mlm_probability, whole_word=whole_word,
                     continuation=continuation_mask(tokenizer) if whole_word else None)


class EpochCollate:
    """``MlmCollator`` called with the epoch ``epoch()`` returns (the engine's state).

    The batch holds ``input_ids`` (masked), ``attention_mask``, ``labels`` (original ids at
    masked positions, -100 elsewhere), the unmasked ids and the sequence indices. ``tokens``
    counts the real tokens collated (for tokens/s).
    """

    def __init__(self, collator: MlmCollator, epoch: Callable[[], int]):
        self.collator = collator
        self.epoch = epoch
        self.tokens = 0

    def __call__(self, items: list[dict]) -> dict:
        batch = self.collator(items, epoch=int(self.epoch()))
        self.tokens += int(batch["attention_mask"].sum())
        return batch


def open_corpora(cfg, tokenizer) -> tuple[TokenShards, TokenShards | None]:
    """``cfg.corpus`` and the optional ``cfg.eval_corpus``, checked against ``tokenizer`` (which
    must also serve the masking ``cfg.whole_word`` asks for)."""
    check_masking(tokenizer, whole_word=cfg.whole_word)
    held_out = open_corpus(cfg.eval_corpus, tokenizer, flag="--eval-corpus") if cfg.eval_corpus else None
    return open_corpus(cfg.corpus, tokenizer, flag="--corpus"), held_out


def masked_batches(cfg, tokenizer, shards: TokenShards, held_out: TokenShards | None, *, seed: int,
                   epoch: Callable[[], int]) -> tuple[ShardDataset, EpochCollate, MlmCollator | None]:
    """The engine's examples and collate for ``shards`` (a new mask each epoch, seeded by ``seed``),
    and the held-out collator (masks fixed by ``cfg.eval_seed``). ``cfg`` gives
    ``mlm_probability``, ``smoothing``, ``whole_word`` and ``eval_seed``."""
    options = {"mlm_probability": cfg.mlm_probability, "smoothing": cfg.smoothing, "whole_word": cfg.whole_word}
    pad = tokenizer.pad_token_id
    collate = EpochCollate(MlmCollator(shards, pad, build_masker(shards, tokenizer, **options), base_seed=seed),
                           epoch=epoch)
    eval_collator = None
    if held_out is not None:
        eval_collator = MlmCollator(held_out, pad, build_masker(held_out, tokenizer, **options), base_seed=cfg.eval_seed)
    return ShardDataset(shards), collate, eval_collator


def masked_logits(model: torch.nn.Module, batch: dict, picked: torch.Tensor) -> torch.Tensor:
    """The masked-LM logits at the ``picked`` positions only ([n picked, V]).

    The vocabulary projection is most of a small model's cost; BERT, RoBERTa and DistilBERT
    masked-LMs run their encoder on the whole batch and their head on the picked rows. Other
    models compute all logits and are indexed.
    """
    inputs = model_inputs(model, batch)
    if hasattr(model, "bert") and hasattr(model, "cls"):
        return model.cls(model.bert(**inputs).last_hidden_state[picked])
    if hasattr(model, "roberta") and hasattr(model, "lm_head"):
        return model.lm_head(model.roberta(**inputs).last_hidden_state[picked])
    if hasattr(model, "distilbert") and hasattr(model, "vocab_projector"):
        hidden = model.distilbert(**inputs).last_hidden_state[picked]
        return model.vocab_projector(model.vocab_layer_norm(model.activation(model.vocab_transform(hidden))))
    return model(**inputs).logits[picked]


def evaluation_batches(shards: TokenShards, batch_size: int, max_sequences: int | None) -> list[list[int]]:
    """Evenly spread sequences (all of them, or ``max_sequences``), batched by length."""
    n = len(shards)
    if max_sequences is not None and max_sequences < n:
        indices = np.unique(np.linspace(0, n - 1, num=max_sequences).round().astype(np.int64))
    else:
        indices = np.arange(n)
    batches = length_grouped_batches(shards.lengths[indices].tolist(), batch_size, shuffle=False)
    return [[int(indices[i]) for i in b] for b in batches]


@torch.no_grad()
def evaluate_mlm(model: torch.nn.Module, shards: TokenShards, collator: MlmCollator, *,
                 batch_size: int = 16, max_sequences: int | None = None, desc: str = "mlm eval") -> dict:
    """Masked-token accuracy and mean cross-entropy (nats) of ``model`` on ``shards``.

    Masks come from ``collator`` at epoch 0 (fixed by its seed), so two calls score two models
    on the same masked positions. Also returns the perplexity exp(loss) and the counts.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total_loss, correct, count = 0.0, 0, 0
    batches = evaluation_batches(shards, batch_size, max_sequences)
    for indices in tqdm(batches, desc=desc, leave=False, dynamic_ncols=True):
        batch = collator([{"input_ids": shards[i], "index": i} for i in indices], epoch=0)
        batch = {k: v.to(device) for k, v in batch.items()}
        picked = batch["labels"] != IGNORE
        chosen = masked_logits(model, batch, picked).float()
        targets = batch["labels"][picked]
        total_loss += float(F.cross_entropy(chosen, targets, reduction="sum"))
        correct += int((chosen.argmax(-1) == targets).sum())
        count += int(picked.sum())
    model.train(was_training)
    loss = total_loss / max(count, 1)
    return {"mlm_loss": loss, "mlm_accuracy": correct / max(count, 1), "perplexity": math.exp(min(loss, 50.0)),
            "masked_tokens": count, "sequences": sum(len(b) for b in batches)}
