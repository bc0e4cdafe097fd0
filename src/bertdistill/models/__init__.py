"""Model loading (local dir, hub id, the ``minilm-l6`` alias), saving and size helpers."""

from .loading import (
    ALIASES,
    count_parameters,
    load_labels,
    load_task_model,
    load_tokenizer,
    quiet_transformers,
    resolve_model,
    save_model,
    size_on_disk,
    task_from_labels,
)
from . import textrcnn  # noqa: F401  registers bert_textrcnn with the Auto classes

__all__ = [
    "ALIASES",
    "count_parameters",
    "load_labels",
    "load_task_model",
    "load_tokenizer",
    "quiet_transformers",
    "resolve_model",
    "save_model",
    "size_on_disk",
    "task_from_labels",
]
