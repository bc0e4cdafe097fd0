"""Predictions of a model on encoded features, and end-to-end evaluation on examples."""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from .data.encode import IGNORE_INDEX, Collator, encode
from .data.examples import Example, TaskSpec
from .metrics import compute_metrics


def forward_arguments(model) -> set[str]:
    """The named arguments of ``model.forward`` (DistilBERT, e.g., has no token_type_ids)."""
    params = inspect.signature(model.forward).parameters.values()
    return {
        p.name
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }


def _model_inputs(batch: dict, accepted: set[str], device) -> dict:
    return {
        k: v.to(device)
        for k, v in batch.items()
        if k in accepted and k != "labels" and isinstance(v, torch.Tensor)
    }


def predict(
    model,
    task: TaskSpec,
    features: Sequence[dict],
    collator: Collator,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    *,
    desc: str = "predict",
):
    """Run ``model`` over ``features``; returns ``(predictions, references)`` in input order.

    Shapes are those ``compute_metrics`` takes: class ids (argmax), float scores (the single
    regression output), or for token classification one list of tag names per sentence,
    read at the positions whose label is not -100 (first word pieces), references likewise.
    ``references`` is None when the features have no labels (token classification needs
    them: they carry the word alignment). Features are run longest first to cut padding;
    the model is moved to ``device`` and left in the train/eval mode it had.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    n = len(features)
    labelled = sum("labels" in f for f in features)
    if labelled not in (0, n):
        raise ValueError(f"{labelled} of {n} features have labels; all or none must")
    has_labels = n > 0 and labelled == n
    token_task = task.kind == "token_classification"
    if token_task and n and not has_labels:
        raise ValueError(
            "token classification predictions need labelled features: the labels mark each "
            "word's first piece"
        )
    names = task.labels or []
    outside = "O" if "O" in names else (names[0] if names else "O")
    accepted = forward_arguments(model)
    order = sorted(range(n), key=lambda i: -len(features[i]["input_ids"]))
    predictions: list = [None] * n
    references: list | None = [None] * n if has_labels else None
    was_training = model.training
    model.to(device)
    model.eval()
    try:
        with torch.inference_mode():
            starts = range(0, n, batch_size)
            for start in tqdm(starts, total=len(starts), desc=desc, disable=None, leave=False):
                index = order[start : start + batch_size]
                batch = collator([features[i] for i in index])
                logits = model(**_model_inputs(batch, accepted, device)).logits.float().cpu()
                labels = batch.get("labels")
                if token_task:
                    best = logits.argmax(-1)
                    for row, i in enumerate(index):
                        keep = labels[row] != IGNORE_INDEX
                        predicted = [names[t] for t in best[row][keep].tolist()]
                        feature = features[i]
                        if "word_tags" in feature:  # score every word; unseen ones count as "O"
                            words = [outside] * len(feature["word_tags"])
                            for word, tag in zip(feature["label_words"], predicted):
                                words[word] = tag
                            predictions[i] = words
                            references[i] = [names[t] for t in feature["word_tags"]]
                        else:
                            predictions[i] = predicted
                            references[i] = [names[t] for t in labels[row][keep].tolist()]
                    continue
                if task.kind == "regression":
                    values = logits.reshape(len(index), -1)[:, 0].tolist()
                else:
                    values = logits.argmax(-1).tolist()
                for row, i in enumerate(index):
                    predictions[i] = values[row]
                if has_labels:
                    for row, i in enumerate(index):
                        references[i] = labels[row].item()
    finally:
        model.train(was_training)
    return predictions, references


def evaluate_model(
    model,
    tokenizer,
    task: TaskSpec,
    examples: Sequence[Example],
    batch_size: int = 64,
    max_length: int = 128,
    device: str | torch.device = "cpu",
) -> dict:
    """Encode ``examples``, predict with ``model`` and score: ``compute_metrics``'s dict."""
    if not examples:
        raise ValueError(f"task {task.name!r}: no examples to evaluate")
    features = encode(task, examples, tokenizer, max_length=max_length)
    return evaluate_features(model, task, features, Collator(tokenizer.pad_token_id), batch_size, device)


def evaluate_features(model, task: TaskSpec, features: list[dict], collator, batch_size: int = 64,
                      device: str | torch.device | None = None) -> dict:
    """Score already-encoded ``features`` (on the model's own device unless one is given)."""
    device = device if device is not None else next(model.parameters()).device
    predictions, references = predict(model, task, features, collator, batch_size, device)
    if references is None:
        raise ValueError(f"task {task.name!r}: the examples have no labels, nothing to score")
    return compute_metrics(task, predictions, references)
