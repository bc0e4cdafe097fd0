"""Predictions of a saved model on raw texts: labels, scores or entity tags, one dict each.

The task comes from the model folder: bertdistill's ``labels.json`` when present, a BiLSTM
student's config.json (it reads its own word vocabulary), else the checkpoint's own config (``problem_type`` regression, a token-classification head, or a
sequence-classification head with its ``id2label``). Token classification splits each
text on whitespace and tags every word by its first word piece (words cut off by
truncation get ``O``); entities are read from the IOB2 tags.
"""

from __future__ import annotations

import codecs
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from .data.errors import DataError
from .data.examples import TaskSpec
from .export.runtime import load_for_inference
from .models.checks import check_max_length, is_bilstm_folder, read_config
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
    if is_bilstm_folder(source):
        return bilstm_task(source)
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


def _decode_text(path: Path, raw: bytes) -> str:
    """``raw`` as UTF-8 text (a BOM dropped), else DataError naming ``path`` and what it is instead."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataError(path, None, "UTF-16 text (byte-order mark); save it as UTF-8 (--input)")
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise DataError(path, raw[:nul].count(b"\n") + 1, f"binary file or UTF-16 text (NUL byte at "
                                                          f"offset {nul}); save it as UTF-8 text (--input)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(path, raw[:err.start].count(b"\n") + 1,
                        f"not UTF-8 text (invalid byte 0x{raw[err.start]:02x} at offset {err.start}); save it "
                        "as UTF-8 (--input)") from None


def read_texts(path: str | Path) -> list[str]:
    """Texts from a file: one per non-blank line, or a ``text`` field per line of a .jsonl file.

    The file must be UTF-8 text: a UTF-16 or binary file is a DataError naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, "no such file (--input)")
    texts = []
    content = _decode_text(path, path.read_bytes())
    for number, line in enumerate(io.StringIO(content, newline=None), 1):
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


def bilstm_task(folder: str | Path) -> TaskSpec:
    """The task of a word-level BiLSTM student, from its config.json (kind, labels, pairs)."""
    config = read_config(folder)
    kind = config.get("kind", "classification")
    if kind == "regression":
        return TaskSpec("regression", "regression", None, ("pearson",), bool(config.get("pair")))
    id2label = {int(k): str(v) for k, v in (config.get("id2label") or {}).items()}
    labels = [id2label.get(i, f"LABEL_{i}") for i in range(int(config["num_labels"]))]
    return TaskSpec("classification", "classification", labels, ("accuracy",), bool(config.get("pair")))


def predict_texts(model: str, texts: Iterable[str], *, batch_size: int = 32, max_length: int = 128) -> list[dict]:
    """One result per text: ``label``, ``score`` and ``probabilities`` (classification),
    ``score`` (regression) or ``words``, ``tags`` and ``entities`` (token classification).

    ``model`` is a saved PyTorch folder, an exported ONNX folder or a word-level BiLSTM
    student; ``max_length`` may not exceed the model's position embeddings."""
    texts = list(texts)
    if not texts:
        raise ValueError("no texts to predict: give --text or --input")
    if batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {batch_size}")
    task = model_task(model)
    source = resolve_model(model)
    if is_bilstm_folder(source):
        return _predict_bilstm(source, task, texts, batch_size=batch_size, max_length=max_length)
    max_length = check_max_length(source, max_length, "--max-length", name=model)
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


def _predict_bilstm(folder: str, task: TaskSpec, texts: list[str], *, batch_size: int, max_length: int) -> list[dict]:
    """Predictions of a BiLSTM student: its own word vocabulary, no position limit."""
    from .students.bilstm import WordCollator, load_bilstm

    if task.pair:
        raise ValueError(f"--model {folder} is a BiLSTM student of a sentence-pair task: predict reads single "
                         "texts; score pairs with `bertdistill evaluate`")
    net, words = load_bilstm(folder)
    collate = WordCollator()
    results = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            chunk = texts[start:start + batch_size]
            batch = collate([{"input_ids": words.encode(text, max_length)} for text in chunk])
            logits = net(**batch).logits.float()
            results.extend(_sequence_result(task, text, row) for text, row in zip(chunk, logits))
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
