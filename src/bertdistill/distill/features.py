"""Recorders: which features a model must output, and reading them from its output.

A feature is named by a string key:

========================  ===============================================================
``"logits"``              the model's logits, [B, C] or [B, L, C]; for a question-answering
                          model its start and end logits stacked, [B, L, 2]
``"hidden:i"``            ``hidden_states[i]`` [B, L, D]; **hidden index space**: 0 is the
                          embedding output, 1..L are the outputs of layers 1..L
``"attention:i"``         attention probabilities [B, H, L, L] of layer i **before dropout**;
                          **attention index space**: 0 is the first layer, L-1 the last
                          (there is no embedding entry)
``"attention_scores:i"``  the same layer's pre-softmax scores q·kᵀ/√d [B, H, L, L] (no mask
                          added: padded positions are left to the loss to exclude)
``"cls:i"``               ``hidden_states[i][:, 0]`` [B, D] (hidden index space)
``"embeddings"``          the embedding output, the same tensor as ``"hidden:0"``
``"qkv:i"``               layer i's query, key and value projections, heads concatenated,
                          as one tensor [B, L, 3·D] = [Q | K | V] (attention index space);
                          recorded by forward hooks on the projections
                          (:mod:`bertdistill.distill.qkv`), only for the layers asked for
========================  ===============================================================

BERT and DistilBERT outputs have the same layout (``hidden_states`` has L+1 entries,
``attentions`` L), so the keys mean the same for both.

Attention is read before dropout
--------------------------------
The attention maps Hugging Face's eager attention returns are taken *after* attention
dropout: in training mode about 10% of the entries are zeroed and the rest rescaled, so
rows no longer sum to one and an attention loss between a model and itself is not 0.
The maps are therefore recorded inside the attention computation instead:
:func:`record_attention` switches a model to the attention function ``RECORDED_ATTENTION``,
registered once through ``transformers.AttentionInterface`` (and the eager mask through
``AttentionMaskInterface``). It computes exactly what ``eager_attention_forward`` of BERT /
DistilBERT / RoBERTa computes, and records, per self-attention layer, the raw scores and the
softmax probabilities before dropout is applied; the probabilities it returns as the
layer's attention weights are the pre-dropout ones too, so ``output.attentions`` is clean.
This was chosen over forward hooks because a hook on the attention module only sees the
module's outputs, i.e. the maps after dropout, and never the pre-softmax scores.
Recording is switched on per call by ``output_attentions=True`` and the scores are added to
the model output under their feature keys (``"attention_scores:i"``), where
:func:`extract` finds them; with ``output_attentions`` off the function records nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface, eager_mask

FEATURE_TYPES = ("logits", "hidden", "attention", "attention_scores", "cls", "embeddings", "qkv")
INDEXED_TYPES = ("hidden", "attention", "attention_scores", "cls", "qkv")
ATTENTION_TYPES = ("attention", "attention_scores")
#: features indexed by transformer layer, 0 = the first (the others: 0 = the embedding output)
LAYER_TYPES = (*ATTENTION_TYPES, "qkv")
RECORDED_ATTENTION = "bertdistill_recorded"


@dataclass(frozen=True)
class FeatureNeeds:
    """What a model must be asked to output for a set of feature keys."""

    hidden_states: bool = False
    attentions: bool = False
    qkv_layers: frozenset[int] = frozenset()  # layers whose Q/K/V projections are recorded

    def __or__(self, other: "FeatureNeeds") -> "FeatureNeeds":
        return FeatureNeeds(self.hidden_states or other.hidden_states,
                            self.attentions or other.attentions,
                            self.qkv_layers | other.qkv_layers)

    def forward_kwargs(self) -> dict[str, bool]:
        """Keyword arguments for the model's forward call."""
        return {"output_hidden_states": self.hidden_states, "output_attentions": self.attentions}

    def model_kwargs(self) -> dict[str, str]:
        """Keyword arguments for ``from_pretrained`` / config: eager attention when maps are needed."""
        return {"attn_implementation": "eager"} if self.attentions else {}


# --------------------------------------------------------------------------- attention recording

_RECORDER_ATTR = "_bertdistill_recorder"
_LAYER_ATTR = "_bertdistill_layer"  # the module's layer index, kept on the module so that a
# deep copy of a recording model (recorder and modules copied together) records by layer too


def recorded_attention_forward(module: nn.Module, query: Tensor, key: Tensor, value: Tensor,
                               attention_mask: Tensor | None, scaling: float | None = None,
                               dropout: float = 0.0, **kwargs: Any) -> tuple[Tensor, Tensor]:
    """Eager attention (same arithmetic as HF's ``eager_attention_forward``) that hands the
    pre-softmax scores and the pre-dropout probabilities to the module's recorder, if any,
    and returns the pre-dropout probabilities as the attention weights."""
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    masked = scores + attention_mask if attention_mask is not None else scores
    probs = nn.functional.softmax(masked, dim=-1)
    recorder = getattr(module, _RECORDER_ATTR, None)
    if recorder is not None:
        recorder.record(module, scores, probs)
    dropped = nn.functional.dropout(probs, p=dropout, training=module.training)
    output = torch.matmul(dropped, value).transpose(1, 2).contiguous()
    return output, probs


AttentionInterface.register(RECORDED_ATTENTION, recorded_attention_forward)
AttentionMaskInterface.register(RECORDED_ATTENTION, eager_mask)


def self_attention_modules(model: nn.Module) -> list[nn.Module]:
    """The model's self-attention modules in layer order (BERT/RoBERTa ``*SelfAttention``,
    DistilBERT ``DistilBertSelfAttention``; cross-attention is not a self-attention)."""
    return [m for m in model.modules()
            if type(m).__name__.endswith("SelfAttention") and "Cross" not in type(m).__name__]


class AttentionRecorder:
    """Records every self-attention layer's scores and pre-dropout probabilities of a model.

    Attach with :func:`record_attention`. On each forward call with ``output_attentions=True``
    the recorded tensors of that call are added to the output mapping as
    ``"attention_scores:i"`` and ``"attention:i"``; other calls record nothing.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.layers = self_attention_modules(model)
        expected = getattr(getattr(model, "config", None), "num_hidden_layers", None)
        if not self.layers or (expected is not None and len(self.layers) != int(expected)):
            raise ValueError(f"cannot record attention of {type(model).__name__}: found "
                             f"{len(self.layers)} self-attention modules for {expected} layers")
        self.active = False
        self.scores: dict[int, Tensor] = {}
        self.probs: dict[int, Tensor] = {}
        for i, m in enumerate(self.layers):
            setattr(m, _RECORDER_ATTR, self)
            setattr(m, _LAYER_ATTR, i)
        model.set_attn_implementation(RECORDED_ATTENTION)
        self._handles = [model.register_forward_pre_hook(self._before, with_kwargs=True),
                         model.register_forward_hook(self._after)]

    def record(self, module: nn.Module, scores: Tensor, probs: Tensor) -> None:
        if self.active:
            layer = getattr(module, _LAYER_ATTR)
            self.scores[layer], self.probs[layer] = scores, probs

    def _before(self, module, args, kwargs):
        flag = kwargs.get("output_attentions")
        if flag is None:
            flag = bool(getattr(self.model.config, "output_attentions", False))
        self.active = bool(flag)
        self.scores, self.probs = {}, {}
        return None

    def _after(self, module, args, output):
        if self.active and isinstance(output, Mapping):
            for layer in sorted(self.scores):
                output[feature_key("attention_scores", layer)] = self.scores[layer]
                output[feature_key("attention", layer)] = self.probs[layer]
        self.active = False
        self.scores, self.probs = {}, {}
        return output

    def remove(self) -> None:
        """Detach: the model goes back to plain eager attention."""
        for handle in self._handles:
            handle.remove()
        for m in self.layers:
            if getattr(m, _RECORDER_ATTR, None) is self:
                delattr(m, _RECORDER_ATTR)
                delattr(m, _LAYER_ATTR)
        self.model.set_attn_implementation("eager")


def record_attention(model: nn.Module) -> AttentionRecorder:
    """Make ``model`` record attention before dropout (see the module docstring); idempotent."""
    layers = self_attention_modules(model)
    existing = getattr(layers[0], _RECORDER_ATTR, None) if layers else None
    if existing is not None and existing.model is model:
        return existing
    return AttentionRecorder(model)


def prepare_model(model: nn.Module, want: FeatureNeeds) -> nn.Module:
    """Set up ``model`` for the features it must give: the attention recorder when attention
    maps or scores are compared, else sdpa attention (the fastest, and no maps are needed);
    the Q/K/V recorder on the layers whose projections are compared."""
    if want.attentions:
        record_attention(model)
    else:
        model.set_attn_implementation("sdpa")
    if want.qkv_layers:
        from bertdistill.distill.qkv import record_qkv  # qkv imports this module

        record_qkv(model, want.qkv_layers)
    return model


def feature_key(kind: str, index: int | None = None) -> str:
    """Build a key: ``feature_key("hidden", 3) == "hidden:3"``, ``feature_key("logits") == "logits"``."""
    if kind in INDEXED_TYPES:
        if index is None or int(index) < 0:
            raise ValueError(f"feature {kind!r} needs a non-negative layer index, got {index!r}")
        return f"{kind}:{int(index)}"
    if kind in ("logits", "embeddings"):
        if index is not None:
            raise ValueError(f"feature {kind!r} takes no layer index, got {index!r}")
        return kind
    raise ValueError(f"unknown feature type {kind!r}; known: {', '.join(FEATURE_TYPES)}")


def parse_key(key: str) -> tuple[str, int | None]:
    """Split a key into (type, index): ``"hidden:3" -> ("hidden", 3)``, ``"logits" -> ("logits", None)``."""
    if not isinstance(key, str):
        raise ValueError(f"feature key must be a string, got {key!r}")
    kind, sep, index = key.partition(":")
    if not sep:
        if kind in ("logits", "embeddings"):
            return kind, None
        raise ValueError(f"unknown feature key {key!r}: expected logits, embeddings, "
                         "hidden:<i>, attention:<i>, attention_scores:<i>, cls:<i> or qkv:<i>")
    if kind not in INDEXED_TYPES:
        raise ValueError(f"unknown feature key {key!r}: only {', '.join(INDEXED_TYPES)} take an index")
    if not index.isdigit():
        raise ValueError(f"feature key {key!r}: the index must be a non-negative integer")
    return kind, int(index)


def needs(keys: Iterable[str]) -> FeatureNeeds:
    """Which optional outputs (hidden states, attentions, Q/K/V projections of which layers)
    the features ``keys`` require."""
    hidden = attentions = False
    qkv: set[int] = set()
    for key in keys:
        kind, index = parse_key(key)
        hidden = hidden or kind in ("hidden", "cls", "embeddings")
        attentions = attentions or kind in ATTENTION_TYPES
        if kind == "qkv":
            qkv.add(int(index))
    return FeatureNeeds(hidden_states=hidden, attentions=attentions, qkv_layers=frozenset(qkv))


def _field(output: Any, name: str) -> Any:
    if isinstance(output, Mapping):  # dicts, and HF ModelOutput (an OrderedDict)
        return output.get(name)
    return getattr(output, name, None)


def _layer_list(output: Any, name: str, key: str) -> Any:
    value = _field(output, name)
    if value is None or (isinstance(value, (tuple, list)) and len(value) == 0):
        if name == "attentions":
            raise ValueError(
                f"feature {key!r}: the model output has no attentions; call the model with "
                "output_attentions=True and load it with attn_implementation='eager' "
                "(sdpa attention cannot output attention maps)")
        raise ValueError(f"feature {key!r}: the model output has no {name}; call the model "
                         f"with output_{name}=True")
    return value


def extract(output: Any, keys: Iterable[str]) -> dict[str, Tensor]:
    """Read the features ``keys`` from a model output.

    ``output`` is an HF ``ModelOutput``, a dict with ``logits`` / ``hidden_states`` /
    ``attentions``, or a dict already keyed by feature keys (e.g. cached teacher features):
    a key present in the mapping itself is returned as is.
    """
    found: dict[str, Tensor] = {}
    for key in keys:
        kind, index = parse_key(key)
        if isinstance(output, Mapping) and key in output:
            found[key] = output[key]
            continue
        if kind == "logits":
            logits = _field(output, "logits")
            if logits is None and _field(output, "start_logits") is not None:  # extractive QA
                logits = torch.stack((_field(output, "start_logits"), _field(output, "end_logits")), dim=-1)
            if logits is None:
                raise ValueError("feature 'logits': the model output has no logits")
            found[key] = logits
            continue
        if kind == "attention_scores":
            raise ValueError(f"feature {key!r}: the model output has no attention scores; attach "
                             "the recorder with bertdistill.distill.features.record_attention(model) "
                             "and call the model with output_attentions=True")
        if kind == "qkv":
            raise ValueError(f"feature {key!r}: the model output has no Q/K/V projections of layer "
                             f"{index}; attach the recorder with bertdistill.distill.qkv.record_qkv(model, "
                             f"[{index}]) before the forward call")
        if kind == "embeddings":
            kind, index = "hidden", 0
        source = "attentions" if kind == "attention" else "hidden_states"
        layers = _layer_list(output, source, key)
        if index >= len(layers):
            space = ("0..{} (0 = embedding output)" if source == "hidden_states" else "0..{}")
            raise ValueError(f"feature {key!r}: index out of range, the output has indices "
                             + space.format(len(layers) - 1))
        value = layers[index]
        found[key] = value[:, 0] if kind == "cls" else value
    return found
