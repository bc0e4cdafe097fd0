"""Whether a task model can serve a task: refuse what cannot be right, warn on what may be.

A model saved by bertdistill records its task in ``labels.json`` (name, kind, label names,
sentence pairs or not); a checkpoint from elsewhere has at least ``id2label``. Against the
task it is about to be used for:

* another kind (classification / regression / tagging), or single sentences against sentence
  pairs: refused, its outputs cannot mean anything for this task;
* the same label names in another order: refused, every class id would be read as another;
* other label names, or another task of the same shape (an SST-2 model on Rotten Tomatoes):
  a warning that names both, since class i of the model is read as class i of the task.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

from ..data.examples import TaskSpec

GENERIC_FORMATS = ("csv", "tsv", "jsonl")  # file formats, not tasks: their names say nothing of the labels


def _shape(pair: bool) -> str:
    return "sentence pairs" if pair else "single sentences"


def default_label_names(labels) -> bool:
    """``LABEL_0, LABEL_1, ...``: the names transformers gives when none were set."""
    return all(str(v) == f"LABEL_{i}" for i, v in enumerate(labels))


def check_task_fit(name, task: TaskSpec, *, saved: Mapping | None = None, model_labels: list | None = None) -> None:
    """Refuse or warn (see the module) before ``name`` is used for ``task``.

    ``saved``: the model's ``labels.json`` (None when it has none); ``model_labels``: the label
    names of its checkpoint (``id2label`` in class order), used when ``saved`` has none.
    """
    trained_for = repr(saved["task"]) if saved else "its task"
    if saved is not None:
        if saved.get("kind") and saved["kind"] != task.kind:
            raise ValueError(
                f"{name} was trained for {trained_for}, a {saved['kind']} task, but task {task.name!r} is "
                f"{task.kind}: use a model trained for {task.name!r}"
            )
        pair = bool(saved.get("pair", False))
        if pair != task.pair:
            raise ValueError(
                f"{name} was trained for {trained_for} on {_shape(pair)}, but task {task.name!r} gives "
                f"{_shape(task.pair)}: its predictions cannot be right; use a model trained for {task.name!r}"
            )
        if saved.get("labels"):
            model_labels = list(saved["labels"])
    theirs = [str(x) for x in model_labels] if model_labels else None
    ours = [str(x) for x in task.labels] if task.labels else None
    if theirs and ours and len(theirs) != len(ours):
        return  # another number of labels: load_task_model refuses it, naming both numbers
    if theirs and ours and not default_label_names(theirs) and theirs != ours:
        if sorted(theirs) == sorted(ours):
            raise ValueError(
                f"{name} has the labels of task {task.name!r} in another order ({', '.join(theirs)} against "
                f"{', '.join(ours)}): every class id would be read as another class; give the labels in the "
                f"model's order (--labels {','.join(theirs)})"
            )
        warnings.warn(
            f"{name} was trained for {trained_for} with labels {', '.join(theirs)}, not the labels "
            f"{', '.join(ours)} of task {task.name!r}: class i of the model is read as class i of the task "
            "(right only if they mean the same)",
            stacklevel=3,
        )
    elif saved is not None and saved.get("task") and saved["task"] != task.name and not (
            {saved["task"], task.name} & set(GENERIC_FORMATS)):
        warnings.warn(
            f"{name} was trained for {trained_for}, not {task.name!r} (same labels and input shape): "
            "scores are those of a model of another task",
            stacklevel=3,
        )
