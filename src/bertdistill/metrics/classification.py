"""Sentence-level metrics: accuracy / F1 / MCC for classes, correlations for scores."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef


def _check_lengths(predictions: Sequence, references: Sequence) -> None:
    if len(predictions) != len(references):
        raise ValueError(
            f"got {len(predictions)} predictions but {len(references)} references; "
            "they must line up one to one"
        )
    if len(predictions) == 0:
        raise ValueError("cannot compute metrics on an empty set of predictions")


def classification_metrics(
    predictions: Sequence[int], references: Sequence[int], num_labels: int = 2
) -> dict[str, float]:
    """Accuracy, F1 and Matthews correlation of class ids.

    With two labels F1 is the binary F1 of class 1 (the positive class, as in GLUE's MRPC
    and QQP); with more labels it is the macro average over the classes that occur.
    """
    _check_lengths(predictions, references)
    y_pred = np.asarray(predictions, dtype=np.int64).reshape(-1)
    y_true = np.asarray(references, dtype=np.int64).reshape(-1)
    if num_labels <= 2:
        f1 = f1_score(y_true, y_pred, labels=[0, 1], pos_label=1, average="binary", zero_division=0)
    else:
        f1 = f1_score(y_true, y_pred, average="macro", zero_division=0)
    with warnings.catch_warnings():
        # one class on both sides: sklearn warns, and MCC is 0.0 as it should be
        warnings.filterwarnings("ignore", message="A single label was found")
        matthews = matthews_corrcoef(y_true, y_pred)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1": float(f1),
        "matthews": float(matthews),
    }


def _correlation(kind: str, x: np.ndarray, y: np.ndarray) -> float:
    # A correlation with a constant side (or fewer than two points) is undefined; report 0.0,
    # the way sklearn reports MCC for constant predictions, so "best checkpoint" comparisons
    # never meet a NaN.
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    if kind == "pearson":
        value = stats.pearsonr(x, y)[0]
    else:
        value = stats.spearmanr(x, y)[0]
    value = float(value)
    return 0.0 if math.isnan(value) else value


def regression_metrics(predictions: Sequence[float], references: Sequence[float]) -> dict[str, float]:
    """Pearson and Spearman correlation (scipy) and mean squared error of scores."""
    _check_lengths(predictions, references)
    y_pred = np.asarray(predictions, dtype=np.float64).reshape(-1)
    y_true = np.asarray(references, dtype=np.float64).reshape(-1)
    if not (np.isfinite(y_pred).all() and np.isfinite(y_true).all()):
        raise ValueError("regression predictions and references must be finite numbers")
    return {
        "pearson": _correlation("pearson", y_pred, y_true),
        "spearman": _correlation("spearman", y_pred, y_true),
        "mse": float(np.mean((y_pred - y_true) ** 2)),
    }
