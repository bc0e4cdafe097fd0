"""The labels a training run found in its train split: said before training, checked for sense.

``check_labels`` returns the line a run prints (each label name with its number of train
rows, or the range of the scores) and refuses a classification train split in which fewer
than two labels occur: a classifier cannot learn to tell classes apart from one of them.
A label with no train rows, or a class with far fewer rows than the others, is warned about.
"""

from __future__ import annotations

import sys
from collections import Counter

from ..data.errors import DataError

RARE = 0.02  # a label with under 2 % of the rows of the most frequent one is warned about


def label_counts(task, examples: list) -> dict[str, int]:
    """Label name -> train rows (token classification: words) carrying it, in the task's label order."""
    counts: Counter = Counter()
    for example in examples:
        if example.label is None:
            continue
        counts.update(example.label if task.kind == "token_classification" else [example.label])
    return {name: counts.get(i, 0) for i, name in enumerate(task.labels or [])}


def check_labels(task, examples: list, where=None) -> str:
    """The printed summary of the train ``examples``' labels (see the module docstring)."""
    if task.kind == "regression":
        scores = [float(e.label) for e in examples if e.label is not None]
        if not scores:
            return f"scores: none in {len(examples)} train rows"
        return f"scores: {len(scores)} train rows, from {min(scores):g} to {max(scores):g}"
    counts = label_counts(task, examples)
    unit = "words" if task.kind == "token_classification" else "rows"
    shown = ", ".join(f"{name} {n}" for name, n in counts.items())
    present = [name for name, n in counts.items() if n]
    if task.kind == "classification" and len(present) < 2:
        found = f"only label {present[0]!r}" if present else "no labels"
        raise DataError(where, None, f"the train split has {found} among {len(examples)} rows; a classifier "
                                     "needs rows of at least two labels (--label-column names the column)")
    missing = [name for name, n in counts.items() if not n]
    top = max(counts.values())
    rare = [name for name, n in counts.items() if 0 < n < RARE * top and task.kind == "classification"]
    if missing:
        _warn(f"label(s) {', '.join(map(repr, missing))} have no train {unit}: the model cannot learn them")
    if rare:
        _warn(f"label(s) {', '.join(map(repr, rare))} have under {RARE:.0%} as many train {unit} as the most "
              f"frequent one: expect them to be rarely predicted")
    return f"labels ({len(counts)}, train {unit}): {shown}"


def _warn(text: str) -> None:
    print(f"bertdistill: warning: {text}", file=sys.stderr, flush=True)
