"""MobileBERT-style students: deep, thin, bottlenecked (Sun et al., 2020), as ``transformers``'
own ``MobileBert*`` models, so a saved student is a plain Hugging Face checkpoint.

Each block reads and writes feature maps of the *inter-block* width (``hidden_size``), which is
set to the teacher's hidden size (384 for MiniLM-L6) so that layer outputs are compared with the
teacher's without a projection; inside the block everything runs at the narrow *intra-block*
width (``intra_bottleneck_size``, e.g. 128): a linear bottleneck in, attention on the bottleneck,
``num_feedforward_networks`` stacked FFNs, a linear bottleneck out. ``normalization_type``
(``no_norm``: MobileBERT's element-wise ``x·γ + β``; or ``layer_norm``) and ``hidden_act``
(``relu`` or ``gelu``) are options. Word embeddings have ``embedding_size`` 128 and reach the
inter-block width through MobileBERT's 3-gram projection; the vocabulary is the teacher's.

Presets (:data:`MOBILEBERT_PRESETS`) are named like the BERT shapes of
:mod:`bertdistill.students.from_config`; a mapping may name one under ``"preset"`` and override
single settings next to it (``{"preset": "mobilebert12", "intra_bottleneck_size": 96}``), or ask
for a MobileBERT student with ``"model_type": "mobilebert"``:

``mobilebert12``      12 layers, intra 128, 4 heads, 4 stacked FFNs (intermediate 512),
                      no_norm, relu
``mobilebert12_h12``  the same with intra 96 and 12 heads (head size 8): as many heads as a
                      12-head teacher, so attention maps are compared head for head
``mobilebert24``      the paper's MobileBERT: 24 layers, intra 128, 4 heads, 4 FFNs
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from transformers import (
    MobileBertConfig,
    MobileBertForMaskedLM,
    MobileBertForQuestionAnswering,
    MobileBertForSequenceClassification,
    MobileBertForTokenClassification,
    MobileBertModel,
    PreTrainedModel,
)

MODEL_TYPE = "mobilebert"

_COMMON = {"embedding_size": 128, "intermediate_size": 512, "num_feedforward_networks": 4,
           "normalization_type": "no_norm", "hidden_act": "relu", "trigram_input": True,
           "use_bottleneck": True, "key_query_shared_bottleneck": True,
           "use_bottleneck_attention": False}

MOBILEBERT_PRESETS: dict[str, dict[str, Any]] = {
    "mobilebert12": {**_COMMON, "num_hidden_layers": 12, "intra_bottleneck_size": 128,
                     "num_attention_heads": 4},
    "mobilebert12_h12": {**_COMMON, "num_hidden_layers": 12, "intra_bottleneck_size": 96,
                         "intermediate_size": 384, "num_attention_heads": 12},
    "mobilebert24": {**_COMMON, "num_hidden_layers": 24, "intra_bottleneck_size": 128,
                     "num_attention_heads": 4},
}

NORMALIZATIONS = ("no_norm", "layer_norm")
ACTIVATIONS = ("relu", "gelu")

# model kind (students.from_config.TASK_KINDS values, plus extractive QA) -> class
CLASSES: dict[str, type[PreTrainedModel]] = {
    "sequence_classification": MobileBertForSequenceClassification,
    "token_classification": MobileBertForTokenClassification,
    "question_answering": MobileBertForQuestionAnswering,
    "masked_lm": MobileBertForMaskedLM,
    "base": MobileBertModel,
}

# Settings of the saved config that are not the student's shape.
_NOT_SHAPE = {"preset", "model_type"}


def is_mobilebert(spec: Any) -> bool:
    """Whether a student shape (a name or a mapping) asks for a MobileBERT student."""
    if isinstance(spec, str):
        return spec.strip().lower() in MOBILEBERT_PRESETS
    if isinstance(spec, Mapping):
        return spec.get("model_type") == MODEL_TYPE or is_mobilebert(spec.get("preset"))
    return False


def mobilebert_sizes(spec: str | Mapping[str, Any], teacher_hidden_size: int | None = None) -> dict[str, Any]:
    """The MobileBERT settings of a preset name or mapping; ``hidden_size`` (the inter-block
    width) is the teacher's unless given. Raises ValueError naming a bad value."""
    if isinstance(spec, str):
        name = spec.strip().lower()
        if name not in MOBILEBERT_PRESETS:
            raise ValueError(f"unknown MobileBERT preset {spec!r}: use one of {', '.join(MOBILEBERT_PRESETS)}")
        sizes: dict[str, Any] = dict(MOBILEBERT_PRESETS[name])
    elif isinstance(spec, Mapping):
        preset = spec.get("preset")
        sizes = mobilebert_sizes(preset) if preset is not None else dict(_COMMON)
        sizes.update({k: v for k, v in spec.items() if k not in _NOT_SHAPE})
    else:
        raise ValueError(f"a MobileBERT student shape is a preset name or a mapping, got {spec!r}")
    if "hidden_size" not in sizes and teacher_hidden_size is not None:
        sizes["hidden_size"] = int(teacher_hidden_size)
    check_sizes(sizes)
    return sizes


def check_sizes(sizes: Mapping[str, Any]) -> None:
    """ValueError naming the setting when the sizes cannot make a MobileBERT."""
    for key in ("num_hidden_layers", "intra_bottleneck_size", "num_attention_heads", "intermediate_size",
                "num_feedforward_networks", "embedding_size", "hidden_size"):
        value = sizes.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"MobileBERT student: {key} must be a positive integer, got {value!r}")
    if sizes.get("normalization_type", "no_norm") not in NORMALIZATIONS:
        raise ValueError(f"MobileBERT student: normalization_type must be one of {', '.join(NORMALIZATIONS)}, "
                         f"got {sizes.get('normalization_type')!r}")
    if sizes.get("hidden_act", "relu") not in ACTIVATIONS:
        raise ValueError(f"MobileBERT student: hidden_act must be one of {', '.join(ACTIVATIONS)}, "
                         f"got {sizes.get('hidden_act')!r}")
    intra, heads = sizes.get("intra_bottleneck_size", 128), sizes.get("num_attention_heads", 4)
    if sizes.get("use_bottleneck", True) and intra % heads:
        raise ValueError(f"MobileBERT student: intra_bottleneck_size {intra} is not divisible by "
                         f"num_attention_heads {heads}")


def mobilebert_student(spec: str | Mapping[str, Any], kind: str, label_args: Mapping[str, Any], *,
                       teacher_hidden_size: int | None = None, vocab_size: int | None = None,
                       attn_implementation: str | None = None) -> PreTrainedModel:
    """A randomly initialised MobileBERT for the model ``kind`` (``sequence_classification``,
    ``token_classification``, ``question_answering``, ``masked_lm``, ``base``).

    ``label_args``: ``num_labels`` or ``id2label``/``label2id`` and ``problem_type``, as the
    config takes them. ``vocab_size``: the teacher tokenizer's size.
    """
    if kind not in CLASSES:
        raise ValueError(f"a MobileBERT student has no {kind!r} head; heads: {', '.join(CLASSES)}")
    sizes = mobilebert_sizes(spec, teacher_hidden_size)
    if vocab_size is not None:
        sizes["vocab_size"] = int(vocab_size)
    known = set(MobileBertConfig().to_dict())
    unknown = sorted(k for k in sizes if k not in known)
    if unknown:
        raise ValueError(f"MobileBertConfig has no setting {', '.join(map(repr, unknown))}")
    if "true_hidden_size" in sizes:
        raise ValueError("MobileBERT student: set intra_bottleneck_size, not true_hidden_size")
    config = MobileBertConfig(**sizes, **label_args)
    kwargs = {} if attn_implementation is None else {"attn_implementation": attn_implementation}
    return CLASSES[kind]._from_config(config, **kwargs)


def head_kind(task_kind: str, model_kinds: Mapping[str, str]) -> str:
    """The model kind of a task kind (``qa`` is extractive question answering)."""
    if task_kind in ("qa", "question_answering"):
        return "question_answering"
    return model_kinds[task_kind]


def shape_summary(sizes: Mapping[str, Any]) -> Sequence[int]:
    """(layers, inter-block width, heads) as the distiller reads a student's shape."""
    return (int(sizes.get("num_hidden_layers", 24)), int(sizes.get("hidden_size", 512)),
            int(sizes.get("num_attention_heads", 4)))
