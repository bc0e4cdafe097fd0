"""The official SQuAD v1.1 scores: exact match and token F1 of answer strings.

Both compare normalised strings: lower case, ASCII punctuation removed, the articles
a / an / the removed, whitespace collapsed. A question scores its best over its gold
answers; the set scores the mean over questions. Scores are fractions in [0, 1], like every
other metric of the package (the official script prints them x100).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (the official order of steps)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    """F1 of the normalised tokens shared by ``prediction`` and ``gold`` (0 when none is shared)."""
    predicted = normalize_answer(prediction).split()
    expected = normalize_answer(gold).split()
    same = sum((Counter(predicted) & Counter(expected)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(expected)
    return 2 * precision * recall / (precision + recall)


def squad_metrics(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float | int]:
    """``exact_match`` and ``f1`` (fractions) of one predicted string per question against its
    gold answers, plus the number of ``questions``."""
    if len(predictions) != len(references):
        raise ValueError(f"got {len(predictions)} predictions but {len(references)} questions; "
                         "they must line up one to one")
    if not predictions:
        raise ValueError("cannot compute metrics on an empty set of predictions")
    em = f1 = 0.0
    for prediction, golds in zip(predictions, references):
        if isinstance(golds, str) or not golds:
            raise ValueError("each question needs a list of gold answer strings")
        em += max(exact_match(prediction, g) for g in golds)
        f1 += max(token_f1(prediction, g) for g in golds)
    n = len(predictions)
    return {"exact_match": em / n, "f1": f1 / n, "questions": n}
