"""Recording the query, key and value projections of chosen self-attention layers.

MiniLM's relations are computed from the projections Q = X W_q, K = X W_k, V = X W_v of a
layer, taken before they are split into heads (``[B, L, D]`` each). They are recorded the way
mmrazor records a module's output: a forward hook on each projection ``nn.Linear``, which sees
exactly the Linear's output, whatever attention kernel (eager, sdpa) runs after it.

* BERT and RoBERTa (``BertSelfAttention``, ``RobertaSelfAttention``): ``query``, ``key``,
  ``value``;
* DistilBERT (``DistilBertSelfAttention``, formerly ``MultiHeadSelfAttention``): ``q_lin``,
  ``k_lin``, ``v_lin``.

Only the layers asked for get hooks. On each forward call of the model, the recorded
projections of every such layer are added to the output mapping as one feature
``"qkv:i"`` = ``[Q | K | V]`` (``[B, L, 3·D]``, layer i counted from 0), where
:func:`bertdistill.distill.features.extract` finds them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import partial

import torch
from torch import Tensor, nn

from bertdistill.distill.features import feature_key, self_attention_modules

#: the projection modules' names, per family (BERT / RoBERTa, DistilBERT)
PROJECTION_NAMES = (("query", "key", "value"), ("q_lin", "k_lin", "v_lin"))
_RECORDER_ATTR = "_bertdistill_qkv_recorder"


def qkv_linears(attention: nn.Module) -> tuple[nn.Linear, nn.Linear, nn.Linear]:
    """The query, key and value ``nn.Linear`` of one self-attention module."""
    for names in PROJECTION_NAMES:
        modules = [getattr(attention, name, None) for name in names]
        if all(isinstance(m, nn.Linear) for m in modules):
            return modules[0], modules[1], modules[2]
    known = " or ".join("/".join(names) for names in PROJECTION_NAMES)
    raise ValueError(f"cannot record the Q/K/V projections of {type(attention).__name__}: it has no "
                     f"{known} Linear modules")


class QKVRecorder:
    """Records the Q/K/V projections of some layers of ``model`` on every forward call (see
    the module docstring). Attach with :func:`record_qkv`."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.attentions = self_attention_modules(model)
        expected = getattr(getattr(model, "config", None), "num_hidden_layers", None)
        if not self.attentions or (expected is not None and len(self.attentions) != int(expected)):
            raise ValueError(f"cannot record Q/K/V of {type(model).__name__}: found "
                             f"{len(self.attentions)} self-attention modules for {expected} layers")
        self.layers: set[int] = set()
        self.values: dict[int, list[Tensor | None]] = {}
        self._handles = [model.register_forward_pre_hook(self._before),
                         model.register_forward_hook(self._after)]
        setattr(model, _RECORDER_ATTR, self)

    def add(self, layers: Iterable[int]) -> "QKVRecorder":
        """Also record ``layers`` (0-based); raises ValueError for a layer the model lacks."""
        count = len(self.attentions)
        wanted = sorted({int(i) for i in layers})
        bad = [i for i in wanted if not 0 <= i < count]
        if bad:
            raise ValueError(f"cannot record Q/K/V of layer(s) {bad}: {type(self.model).__name__} has "
                             f"layers 0..{count - 1}")
        for layer in wanted:
            if layer in self.layers:
                continue
            for part, linear in enumerate(qkv_linears(self.attentions[layer])):
                self._handles.append(linear.register_forward_hook(partial(self._record, layer, part)))
            self.layers.add(layer)
        return self

    def _record(self, layer: int, part: int, module: nn.Module, args, output: Tensor) -> None:
        self.values.setdefault(layer, [None, None, None])[part] = output

    def _before(self, module, args):
        self.values = {}
        return None

    def _after(self, module, args, output):
        if isinstance(output, Mapping):
            for layer in sorted(self.values):
                parts = self.values[layer]
                if all(p is not None for p in parts):
                    output[feature_key("qkv", layer)] = torch.cat(parts, dim=-1)
        self.values = {}
        return output

    def remove(self) -> None:
        """Detach every hook; the model computes as before."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self.layers = set()
        if getattr(self.model, _RECORDER_ATTR, None) is self:
            delattr(self.model, _RECORDER_ATTR)


def record_qkv(model: nn.Module, layers: Iterable[int]) -> QKVRecorder:
    """Make ``model`` record the Q/K/V projections of ``layers`` (0-based) as ``"qkv:i"``
    features; a model that records already gets the new layers added."""
    existing = getattr(model, _RECORDER_ATTR, None)
    recorder = existing if isinstance(existing, QKVRecorder) and existing.model is model else QKVRecorder(model)
    return recorder.add(layers)
