"""Predictions of a saved model on raw texts: labels, scores or entity tags, one dict each.

The task comes from the model folder: bertdistill's ``labels.json`` when present, else the
checkpoint's own config (``problem_type`` regression, a token-classification head, or a
sequence-classification head with its ``id2label``). Token classification splits each
text on whitespace and tags every word by its first word piece (words cut off by
truncation get ``O``); entities are read from the IOB2 tags.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from .data.errors import DataError
from .data.examples import TaskSpec
from .export.runtime import load_for_inference
from .models.inputs import model_inputs
from .models.loading import (
    LABELS_FILE,
    hub_errors,
    load_tokenizer,
    pretrained_kwargs,
    quiet_transformers,
    resolve_model,
    task_from_labels,
)


def model_task(model: str) -> TaskSpec:
    """The TaskSpec a model folder (or hub id) was trained for."""
    source = resolve_model(model)
    if (Path(source) / LABELS_FILE).is_file():
        return task_from_labels(source)
    from transformers import AutoConfig

    with quiet_transformers(), hub_errors(model):
        config = AutoConfig.from_pretrained(source, **pretrained_kwargs())
    architectures = " ".join(getattr(config, "architectures", None) or [])
    labels = [str(config.id2label[i]) for i in range(config.num_labels)] if config.id2label else None
    if "ForTokenClassification" in architectures:
        return TaskSpec("tagging", "token_classification", labels, ("entity_f1",))
    if getattr(config, "problem_type", None) == "regression" or config.num_labels == 1:
        return TaskSpec("regression", "regression", None, ("pearson",))
    if "ForSequenceClassification" in architectures:
        return TaskSpec("classification", "classification", labels, ("accuracy",))
    raise ValueError(f"--model {model} has no task head (architectures: {architectures or 'none'}); "
                     "predict needs a fine-tuned or distilled model folder")


def read_texts(path: str | Path) -> list[str]:
    """Texts from a file: one per non-blank line, or a ``text`` field per line of a .jsonl file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, "no such file (--input)")
    texts = []
    with open(path, encoding="utf-8-sig") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            if path.suffix.lower() in (".jsonl", ".ndjson"):
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise DataError(path, number, f"invalid JSON: {err.msg}") from None
                if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                    raise DataError(path, number, 'expected an object with a "text" string')
                texts.append(row["text"])
            else:
                texts.append(line.rstrip("\r\n"))
    if not texts:
        raise DataError(path, None, "no texts in this file (--input)")
    return texts


def entities(words: Sequence[str], tags: Sequence[str]) -> list[dict]:
    """Entity spans ``{"type", "start", "end", "text"}`` (word indices, end exclusive) from IOB2 tags."""
    found: list[dict] = []
    for i, tag in enumerate(tags):
        prefix, _, kind = tag.partition("-")
        if prefix == "I" and found and found[-1]["type"] == kind and found[-1]["end"] == i:
            found[-1]["end"] = i + 1
        elif prefix in ("B", "I") and kind:
            found.append({"type": kind, "start": i, "end": i + 1})
    for ent in found:
        ent["text"] = " ".join(words[ent["start"]:ent["end"]])
    return found


def predict_texts(model: str, texts: Iterable[str], *, batch_size: int = 32, max_length: int = 128) -> list[dict]:
    """One result per text: ``label``, ``score`` and ``probabilities`` (classification),
    ``score`` (regression) or ``words``, ``tags`` and ``entities`` (token classification)."""
    texts = list(texts)
    if not texts:
        raise ValueError("no texts to predict: give --text or --input")
    if batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {batch_size}")
    task = model_task(model)
    tokenizer = load_tokenizer(model)
    net = load_for_inference(model, task)  # a saved PyTorch folder or an exported ONNX one
    results = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            chunk = texts[start:start + batch_size]
            if task.kind == "token_classification":
                results.extend(_tag(net, tokenizer, task, chunk, max_length))
            else:
                enc = tokenizer(chunk, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
                logits = net(**model_inputs(net, dict(enc))).logits.float()
                for text, row in zip(chunk, logits):
                    results.append(_sequence_result(task, text, row))
    return results


def _sequence_result(task: TaskSpec, text: str, logits: torch.Tensor) -> dict:
    if task.kind == "regression":
        return {"text": text, "score": float(logits[0])}
    probs = logits.softmax(-1).tolist()
    best = max(range(len(probs)), key=probs.__getitem__)
    return {"text": text, "label": task.labels[best], "score": probs[best],
            "probabilities": dict(zip(task.labels, probs))}


def _tag(net, tokenizer, task: TaskSpec, chunk: list[str], max_length: int) -> list[dict]:
    words = [text.split() for text in chunk]
    enc = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length, padding=True,
                    return_tensors="pt")
    ids = net(**model_inputs(net, dict(enc))).logits.argmax(-1)
    out = []
    for i, (text, ws) in enumerate(zip(chunk, words)):
        tags = ["O"] * len(ws)
        seen = set()
        for pos, word in enumerate(enc.word_ids(i)):
            if word is not None and word not in seen:
                seen.add(word)
                tags[word] = task.labels[int(ids[i, pos])]
        out.append({"text": text, "words": ws, "tags": tags, "entities": entities(ws, tags)})
    return out
