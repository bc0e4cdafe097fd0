"""Task metrics: accuracy / F1 / MCC, Pearson / Spearman, seqeval NER scores, and tables.

``compute_metrics(task, predictions, references)`` returns every metric named in
``task.metrics`` plus the extras its task kind always reports:

* classification (class ids): ``accuracy``, ``f1``, ``matthews``
* regression (floats): ``pearson``, ``spearman``, ``mse``
* token_classification (tag-name lists per sentence): ``entity_f1``, ``entity_precision``,
  ``entity_recall``, ``token_accuracy``, the entity counts ``entity_support``,
  ``entity_predicted``, ``entity_correct``, and ``per_entity``
  ({TYPE: {precision, recall, f1, support}}).
* qa (one predicted answer string per question; its gold answer strings): the official
  SQuAD v1.1 ``exact_match`` and ``f1`` (fractions, ``metrics.squad``) and ``questions``.

A metric name in ``task.metrics`` may also be an alias (``acc``, ``mcc``, ``pearsonr``,
NER ``f1`` / ``precision`` / ``recall`` / ``accuracy``); the alias then appears as a key too.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..data.examples import TaskSpec
from .classification import classification_metrics, regression_metrics
from .ner import ner_metrics
from .squad import squad_metrics
from .table import format_metrics

__all__ = [
    "compute_metrics",
    "format_metrics",
    "classification_metrics",
    "regression_metrics",
    "ner_metrics",
    "squad_metrics",
    "METRIC_ALIASES",
]

# alias -> canonical key, per task kind
METRIC_ALIASES: dict[str, dict[str, str]] = {
    "classification": {"acc": "accuracy", "mcc": "matthews", "matthews_corrcoef": "matthews"},
    "regression": {
        "pearsonr": "pearson",
        "spearmanr": "spearman",
        "mean_squared_error": "mse",
    },
    "token_classification": {
        "f1": "entity_f1",
        "precision": "entity_precision",
        "recall": "entity_recall",
        "accuracy": "token_accuracy",
        "acc": "token_accuracy",
    },
    "qa": {"em": "exact_match"},
}


def compute_metrics(
    task: TaskSpec, predictions: Sequence, references: Sequence
) -> dict[str, float | int | dict]:
    """Score predictions against references for ``task`` (see the module docstring)."""
    if references is None:
        raise ValueError(f"task {task.name!r}: no references (unlabelled data cannot be scored)")
    if task.kind == "classification":
        result: dict = classification_metrics(predictions, references, num_labels=task.num_labels)
    elif task.kind == "regression":
        result = regression_metrics(predictions, references)
    elif task.kind == "token_classification":
        result = ner_metrics(predictions, references)
    elif task.kind == "qa":
        result = squad_metrics(predictions, references)
    else:  # TaskSpec validates kinds; this guards hand-built objects
        raise ValueError(f"task {task.name!r}: unknown kind {task.kind!r}")
    aliases = METRIC_ALIASES[task.kind]
    for name in task.metrics:
        if name in result:
            continue
        if name in aliases:
            result[name] = result[aliases[name]]
            continue
        known = sorted(set(result) | set(aliases))
        raise ValueError(
            f"task {task.name!r} asks for metric {name!r}, which a {task.kind} task does not "
            f"provide; known: {', '.join(known)}"
        )
    return result
