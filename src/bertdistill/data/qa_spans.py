"""Answer spans from start / end logits: the reference's n-best post-processing.

In each window of a question, the ``n_best`` highest start logits and the ``n_best`` highest
end logits among its context tokens are paired; a pair counts when the end is not before the
start and the span is at most ``max_answer_length`` tokens. Its score is the sum of the two
logits; the best pair over all windows of the question is its answer, mapped back to the
context's characters through the tokens' offsets. ``probability`` is that span's start
probability times its end probability, each a softmax over the context tokens of its window.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from .examples import Example


def best_spans(examples: Sequence[Example], features: Sequence[dict], start_logits: Sequence,
               end_logits: Sequence, *, n_best: int = 20, max_answer_length: int = 30) -> list[dict]:
    """One answer per example: ``text``, ``start`` / ``end`` (characters of the context),
    ``score`` (logit sum) and ``probability``; ``text`` is "" when no window has a valid span.

    ``start_logits[i]`` / ``end_logits[i]`` are the logits of ``features[i]``'s tokens.
    """
    if not len(features) == len(start_logits) == len(end_logits):
        raise ValueError(f"{len(features)} features but {len(start_logits)} start and {len(end_logits)} end "
                         "logit rows")
    windows: dict[int, list[int]] = defaultdict(list)
    for i, feature in enumerate(features):
        windows[feature["example_index"]].append(i)
    answers = []
    for index, example in enumerate(examples):
        best = {"text": "", "start": 0, "end": 0, "score": float("-inf"), "probability": 0.0}
        for i in windows.get(index, ()):
            span = _window_best(features[i]["context_offsets"], np.asarray(start_logits[i], dtype=np.float64),
                                np.asarray(end_logits[i], dtype=np.float64), n_best, max_answer_length)
            if span is not None and span["score"] > best["score"]:
                best = span
        if best["score"] != float("-inf"):
            best["text"] = example.text_pair[best["start"]:best["end"]]
        answers.append(best)
    return answers


def _window_best(offsets: Sequence, start: np.ndarray, end: np.ndarray, n_best: int, max_len: int) -> dict | None:
    n = min(len(offsets), len(start), len(end))
    context = np.array([t for t in range(n) if offsets[t] is not None], dtype=np.int64)
    if context.size == 0:
        return None
    starts = context[np.argsort(-start[context], kind="stable")[:n_best]]
    ends = context[np.argsort(-end[context], kind="stable")[:n_best]]
    found = None
    for s in starts:
        for e in ends:
            if e < s or e - s + 1 > max_len:
                continue
            score = start[s] + end[e]
            if found is None or score > found[0]:
                found = (score, int(s), int(e))
    if found is None:
        return None
    score, s, e = found
    probability = _softmax_at(start[context], s, context) * _softmax_at(end[context], e, context)
    return {"text": "", "start": int(offsets[s][0]), "end": int(offsets[e][1]), "score": float(score),
            "probability": float(probability)}


def _softmax_at(values: np.ndarray, token: int, context: np.ndarray) -> float:
    shifted = np.exp(values - values.max())
    return float(shifted[int(np.searchsorted(context, token))] / shifted.sum())
