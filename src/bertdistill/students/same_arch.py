"""A shallower student of the teacher's own class, initialised from some of its layers.

The student is built from a copy of the teacher's config with ``num_hidden_layers = len(kept)``
(so labels, problem type, vocabulary, widths and attention settings all carry over), then every
weight is copied from the teacher by name: embeddings, pooler and task head unchanged, and
encoder layer ``j`` from teacher layer ``kept[j]``. ``load_state_dict`` copies values into the
student's own tensors, so nothing is shared with the teacher.
"""

from __future__ import annotations

import copy
import re
from typing import Mapping

import torch
from transformers import PreTrainedModel

from .layers import teacher_kind

# "bert.encoder.layer.3.attention...", "encoder.layer.3..." (base model),
# "distilbert.transformer.layer.3...": groups = (prefix up to the index, index, rest).
_LAYER_KEY = re.compile(r"^((?:.+\.)?(?:encoder|transformer)\.layer\.)(\d+)(\..+)$")


def layer_state(
    teacher_state: Mapping[str, torch.Tensor], student_keys, kept: list[int]
) -> dict[str, torch.Tensor]:
    """Map every student state-dict key to the teacher tensor it is copied from.

    Student encoder layer ``j`` reads teacher layer ``kept[j]``; every other key reads the same
    name. Raises RuntimeError when a student key has no teacher counterpart of the same shape.
    """
    state: dict[str, torch.Tensor] = {}
    for key in student_keys:
        match = _LAYER_KEY.match(key)
        source = f"{match[1]}{kept[int(match[2])]}{match[3]}" if match else key
        if source not in teacher_state:
            raise RuntimeError(f"student weight {key!r} has no teacher weight {source!r} to copy")
        state[key] = teacher_state[source]
    return state


def build_same_arch(
    teacher: PreTrainedModel, kept: list[int], *, attn_implementation: str | None = None
) -> PreTrainedModel:
    """A model of ``type(teacher)`` with ``len(kept)`` layers, teacher layer kept[j] -> layer j."""
    _, kind = teacher_kind(teacher)
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(kept)  # DistilBertConfig maps this name to n_layers
    kwargs: dict = {}
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    if kind == "base" and hasattr(teacher, "pooler"):
        # BertModel / RobertaModel may be built without a pooler; the student follows the teacher.
        kwargs["add_pooling_layer"] = teacher.pooler is not None
    student = type(teacher)._from_config(config, dtype=teacher.dtype, **kwargs)
    student.to(teacher.device)

    target = student.state_dict()
    state = layer_state(teacher.state_dict(), target.keys(), kept)
    for key, value in state.items():
        if value.shape != target[key].shape:
            raise RuntimeError(
                f"teacher weight for {key!r} has shape {tuple(value.shape)}, "
                f"the student expects {tuple(target[key].shape)}"
            )
    # load_state_dict copies into the student's own parameters (tied ones stay tied).
    student.load_state_dict(state, strict=True)
    student.train(teacher.training)
    return student
