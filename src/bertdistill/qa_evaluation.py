"""Extractive QA: a model's start / end logits over features, answers, and their SQuAD scores."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .data.examples import Example
from .data.qa_features import QaOptions, encode_qa
from .data.qa_spans import best_spans
from .evaluation import forward_arguments
from .metrics.squad import squad_metrics


def qa_logits(model, features: Sequence[dict], collator, batch_size: int = 64, device=None, *,
              desc: str = "QA evaluate") -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Start and end logits of every feature (one array per feature, its own length), in order.

    Features run longest first to cut padding; the model keeps its train/eval mode. ``model`` is
    any module called like a Hugging Face QA model (``.start_logits`` / ``.end_logits``): a PyTorch
    model, or an exported ONNX folder's ``export.runtime.OnnxModel`` (no parameters: run on the CPU).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    accepted = forward_arguments(model)
    order = sorted(range(len(features)), key=lambda i: -len(features[i]["input_ids"]))
    starts: list = [None] * len(features)
    ends: list = [None] * len(features)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            batches = range(0, len(order), batch_size)
            for first in tqdm(batches, total=len(batches), desc=desc, unit="batch", disable=None, leave=False):
                index = order[first : first + batch_size]
                batch = collator([{k: features[i][k] for k in ("input_ids", "token_type_ids") if k in features[i]}
                                  for i in index])
                inputs = {k: v.to(device) for k, v in batch.items() if k in accepted}
                out = model(**inputs)
                start, end = out.start_logits.float().cpu().numpy(), out.end_logits.float().cpu().numpy()
                for row, i in enumerate(index):
                    n = len(features[i]["input_ids"])
                    starts[i], ends[i] = start[row, :n], end[row, :n]
    finally:
        model.train(was_training)
    return starts, ends


def predict_answers(model, examples: Sequence[Example], features: Sequence[dict], collator,
                    options: QaOptions = QaOptions(), batch_size: int = 64, device=None) -> list[dict]:
    """The best span of each example (``data.qa_spans.best_spans``)."""
    starts, ends = qa_logits(model, features, collator, batch_size, device)
    return best_spans(examples, features, starts, ends, n_best=options.n_best,
                      max_answer_length=options.max_answer_length)


def evaluate_qa_features(model, examples: Sequence[Example], features: Sequence[dict], collator,
                         options: QaOptions = QaOptions(), batch_size: int = 64, device=None) -> dict:
    """``exact_match`` / ``f1`` (fractions) and ``questions`` of the model's answers to ``examples``."""
    if not examples:
        raise ValueError("no questions to evaluate")
    unlabelled = next((e for e in examples if not e.label), None)
    if unlabelled is not None:
        raise ValueError(f"question {unlabelled.id!r} ({unlabelled.source}) has no gold answers: nothing to score")
    answers = predict_answers(model, examples, features, collator, options, batch_size, device)
    return squad_metrics([a["text"] for a in answers], [[g.text for g in e.label] for e in examples])


def evaluate_qa(model, tokenizer, examples: Sequence[Example], options: QaOptions = QaOptions(),
                batch_size: int = 64, device=None) -> dict:
    """Build the windows of ``examples``, answer them and score (``evaluate_qa_features``)."""
    from .data.encode import Collator

    features = encode_qa(examples, tokenizer, options)
    return evaluate_qa_features(model, examples, features, Collator(tokenizer.pad_token_id), options,
                                batch_size, device)
