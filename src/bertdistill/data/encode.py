"""Tokenisation into feature dicts, NER label alignment, dynamic padding, length grouping."""

from __future__ import annotations

import numbers
import random
from collections.abc import Sequence

import torch

from .errors import DataError
from .examples import Example, TaskSpec

IGNORE_INDEX = -100
_ENCODE_CHUNK = 1000  # examples per tokenizer call


def _where(example: Example) -> tuple[str | None, int | None]:
    src = example.source or ""
    path, _, line = src.rpartition(":")
    if path and line.isdigit():
        return path, int(line)
    return (src or None), None


def _label_for(task: TaskSpec, example: Example):
    label = example.label
    if task.kind == "classification":
        if isinstance(label, bool) or not isinstance(label, numbers.Integral):
            raise DataError(*_where(example), f"class label must be an int id, got {label!r}")
        label = int(label)
        if not 0 <= label < task.num_labels:
            raise DataError(
                *_where(example), f"class id {label} out of range for {task.num_labels} labels"
            )
        return label
    if task.kind == "regression":
        try:
            return float(label)
        except (TypeError, ValueError):
            raise DataError(*_where(example), f"regression label must be a number, got {label!r}") from None
    return label


def encode(
    task: TaskSpec, examples: Sequence[Example], tokenizer, max_length: int = 128
) -> list[dict]:
    """Tokenise ``examples`` into one feature dict each.

    Keys: ``input_ids``, ``token_type_ids`` (when the tokenizer produces them) and ``labels``
    (int class id, float score, or for token classification one id per word piece: the
    word's tag id on its first piece, -100 on the other pieces and on special tokens).
    Examples whose label is None get no ``labels`` key. Sequences are truncated to
    ``max_length`` pieces (pairs: longest first); words cut off by truncation, or that
    tokenise to no piece at all, lose their tags (they are not scored).
    Needs a fast tokenizer for token classification (``word_ids``).
    """
    if max_length < 2:
        raise ValueError(f"max_length must be at least 2, got {max_length}")
    token_task = task.kind == "token_classification"
    features: list[dict] = []
    for start in range(0, len(examples), _ENCODE_CHUNK):
        chunk = examples[start : start + _ENCODE_CHUNK]
        if token_task:
            texts = []
            for ex in chunk:
                if isinstance(ex.text, str) or ex.text is None:
                    raise DataError(
                        *_where(ex), "token classification needs the text as a list of words"
                    )
                texts.append([str(w) for w in ex.text])
            enc = tokenizer(texts, is_split_into_words=True, truncation=True, max_length=max_length)
        else:
            texts = []
            for ex in chunk:
                if not isinstance(ex.text, str):
                    raise DataError(*_where(ex), f"expected the text as a string, got {type(ex.text).__name__}")
                texts.append(ex.text)
            pairs = [ex.text_pair for ex in chunk]
            if task.pair or any(p is not None for p in pairs):
                missing = [ex for ex, p in zip(chunk, pairs) if p is None]
                if missing:
                    raise DataError(*_where(missing[0]), f"task {task.name!r} is a pair task but this example has no second text")
                enc = tokenizer(texts, pairs, truncation="longest_first", max_length=max_length)
            else:
                enc = tokenizer(texts, truncation=True, max_length=max_length)
        has_types = "token_type_ids" in enc
        for i, ex in enumerate(chunk):
            feature = {"input_ids": list(enc["input_ids"][i])}
            if has_types:
                feature["token_type_ids"] = list(enc["token_type_ids"][i])
            if ex.label is not None:
                if token_task:
                    tags = list(ex.label)
                    if len(tags) != len(ex.text):
                        raise DataError(
                            *_where(ex), f"{len(ex.text)} words but {len(tags)} tags"
                        )
                    labels, label_words = [], []
                    previous = None
                    for word in enc.word_ids(i):
                        if word is None or word == previous:
                            labels.append(IGNORE_INDEX)
                        else:
                            label_words.append(word)
                            tag = int(tags[word])
                            if not 0 <= tag < task.num_labels:
                                raise DataError(
                                    *_where(ex), f"tag id {tag} out of range for {task.num_labels} tags"
                                )
                            labels.append(tag)
                        previous = word
                    feature["labels"] = labels
                    # every word's tag and which word each labelled piece starts, so that
                    # evaluation scores words cut off by truncation (as "O") instead of dropping them
                    feature["word_tags"] = tags
                    feature["label_words"] = label_words
                else:
                    feature["labels"] = _label_for(task, ex)
            features.append(feature)
    return features


class Collator:
    """Pads a list of feature dicts into a batch of tensors (dynamic padding).

    ``input_ids`` are padded with ``pad_token_id``, ``token_type_ids`` with 0, token labels
    with -100; ``attention_mask`` is built. Scalar labels become a long tensor (class ids)
    or a float tensor (scores). Other keys holding numbers are stacked as tensors; anything
    else is passed through as a list. ``pad_to_multiple_of`` rounds the padded length up.
    """

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int | None = None):
        if pad_token_id is None:
            raise ValueError("pad_token_id is None: the tokenizer has no padding token")
        if pad_to_multiple_of is not None and pad_to_multiple_of < 1:
            raise ValueError(f"pad_to_multiple_of must be positive, got {pad_to_multiple_of}")
        self.pad_token_id = int(pad_token_id)
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, features: Sequence[dict]) -> dict:
        if not features:
            raise ValueError("cannot collate an empty batch")
        lengths = [len(f["input_ids"]) for f in features]
        width = max(lengths)
        m = self.pad_to_multiple_of
        if m:
            width = -(-width // m) * m
        n = len(features)
        input_ids = torch.full((n, width), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros((n, width), dtype=torch.long)
        for i, (f, length) in enumerate(zip(features, lengths)):
            input_ids[i, :length] = torch.as_tensor(f["input_ids"], dtype=torch.long)
            attention[i, :length] = 1
        batch: dict = {"input_ids": input_ids, "attention_mask": attention}
        if "token_type_ids" in features[0]:
            types = torch.zeros((n, width), dtype=torch.long)
            for i, (f, length) in enumerate(zip(features, lengths)):
                types[i, :length] = torch.as_tensor(f["token_type_ids"], dtype=torch.long)
            batch["token_type_ids"] = types
        with_labels = sum("labels" in f for f in features)
        if with_labels not in (0, n):
            raise ValueError(f"{with_labels} of {n} features in a batch have labels; all or none must")
        if with_labels:
            batch["labels"] = self._labels([f["labels"] for f in features], lengths, width)
        for key in features[0]:
            if key in batch or key in ("input_ids", "token_type_ids", "labels", "attention_mask"):
                continue
            values = [f.get(key) for f in features]
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                dtype = torch.float32 if any(isinstance(v, float) for v in values) else torch.long
                batch[key] = torch.tensor(values, dtype=dtype)
            elif all(isinstance(v, torch.Tensor) for v in values) and len({v.shape for v in values}) == 1:
                batch[key] = torch.stack(values)
            else:
                batch[key] = values
        return batch

    @staticmethod
    def _labels(labels: list, lengths: list[int], width: int) -> torch.Tensor:
        if isinstance(labels[0], (list, tuple)):
            out = torch.full((len(labels), width), IGNORE_INDEX, dtype=torch.long)
            for i, (row, length) in enumerate(zip(labels, lengths)):
                if len(row) != length:
                    raise ValueError(f"feature {i}: {len(row)} token labels for {length} tokens")
                out[i, :length] = torch.as_tensor(row, dtype=torch.long)
            return out
        if any(isinstance(v, float) for v in labels):
            return torch.tensor(labels, dtype=torch.float32)
        return torch.tensor(labels, dtype=torch.long)


def length_grouped_batches(
    lengths: Sequence[int],
    batch_size: int,
    *,
    shuffle: bool = True,
    seed: int = 0,
    megabatch_mult: int = 50,
    drop_last: bool = False,
) -> list[list[int]]:
    """Batches of indices whose lengths are similar, to cut padding.

    With ``shuffle``: the indices are shuffled, cut into megabatches of
    ``batch_size * megabatch_mult``, sorted by length (longest first) inside each, cut into
    batches, and the batch order is shuffled; the batch holding the longest sequence goes
    first so memory problems show at once. The same ``seed`` gives the same batches.
    Without ``shuffle``: all indices sorted by length, longest first. ``drop_last`` drops
    the one batch smaller than ``batch_size``, if any.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if megabatch_mult < 1:
        raise ValueError(f"megabatch_mult must be positive, got {megabatch_mult}")
    n = len(lengths)
    if n == 0:
        return []
    rng = random.Random(seed)
    if shuffle:
        order = list(range(n))
        rng.shuffle(order)
        mega = batch_size * megabatch_mult
        groups = [order[i : i + mega] for i in range(0, n, mega)]
    else:
        groups = [list(range(n))]
    batches: list[list[int]] = []
    for group in groups:
        group.sort(key=lambda i: -lengths[i])  # stable: ties keep their (shuffled) order
        batches.extend(group[i : i + batch_size] for i in range(0, len(group), batch_size))
    if drop_last:
        batches = [b for b in batches if len(b) == batch_size]
    if shuffle and batches:
        rng.shuffle(batches)
        longest = max(range(len(batches)), key=lambda b: max(lengths[i] for i in batches[b]))
        batches[0], batches[longest] = batches[longest], batches[0]
    return batches


def sequential_batches(n: int, batch_size: int) -> list[list[int]]:
    """Indices 0..n-1 in order, cut into batches of ``batch_size`` (for evaluation)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    return [list(range(i, min(i + batch_size, n))) for i in range(0, n, batch_size)]


def padded_tokens(batches: Sequence[Sequence[int]], lengths: Sequence[int]) -> int:
    """Total tokens fed to the model once each batch is padded to its longest member."""
    return sum(len(b) * max(lengths[i] for i in b) for b in batches if b)
