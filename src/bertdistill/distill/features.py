"""Recorders: which features a model must output, and reading them from its output.

A feature is named by a string key:

========================  ===============================================================
``"logits"``              the model's logits, [B, C] or [B, L, C]
``"hidden:i"``            ``hidden_states[i]`` [B, L, D]; **hidden index space**: 0 is the
                          embedding output, 1..L are the outputs of layers 1..L
``"attention:i"``         ``attentions[i]`` [B, H, L, L]; **attention index space**: 0 is
                          the first layer, L-1 the last (there is no embedding entry)
``"cls:i"``               ``hidden_states[i][:, 0]`` [B, D] (hidden index space)
``"embeddings"``          the embedding output, the same tensor as ``"hidden:0"``
========================  ===============================================================

BERT and DistilBERT outputs have the same layout (``hidden_states`` has L+1 entries,
``attentions`` L), so the keys mean the same for both. Attention maps are only returned by
models using ``attn_implementation="eager"`` (``sdpa`` cannot output them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor

FEATURE_TYPES = ("logits", "hidden", "attention", "cls", "embeddings")
INDEXED_TYPES = ("hidden", "attention", "cls")


@dataclass(frozen=True)
class FeatureNeeds:
    """What a model must be asked to output for a set of feature keys."""

    hidden_states: bool = False
    attentions: bool = False

    def __or__(self, other: "FeatureNeeds") -> "FeatureNeeds":
        return FeatureNeeds(self.hidden_states or other.hidden_states,
                            self.attentions or other.attentions)

    def forward_kwargs(self) -> dict[str, bool]:
        """Keyword arguments for the model's forward call."""
        return {"output_hidden_states": self.hidden_states, "output_attentions": self.attentions}

    def model_kwargs(self) -> dict[str, str]:
        """Keyword arguments for ``from_pretrained`` / config: eager attention when maps are needed."""
        return {"attn_implementation": "eager"} if self.attentions else {}


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
                         "hidden:<i>, attention:<i> or cls:<i>")
    if kind not in INDEXED_TYPES:
        raise ValueError(f"unknown feature key {key!r}: only hidden, attention and cls take an index")
    if not index.isdigit():
        raise ValueError(f"feature key {key!r}: the index must be a non-negative integer")
    return kind, int(index)


def needs(keys: Iterable[str]) -> FeatureNeeds:
    """Which optional outputs (hidden states, attentions) the features ``keys`` require."""
    hidden = attentions = False
    for key in keys:
        kind, _ = parse_key(key)
        hidden = hidden or kind in ("hidden", "cls", "embeddings")
        attentions = attentions or kind == "attention"
    return FeatureNeeds(hidden_states=hidden, attentions=attentions)


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
            if logits is None:
                raise ValueError("feature 'logits': the model output has no logits")
            found[key] = logits
            continue
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
