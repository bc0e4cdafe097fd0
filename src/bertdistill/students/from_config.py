"""Randomly initialised students of any width and depth (e.g. hidden 128, 2 layers).

Used when the student's shape differs from the teacher's, so no weights can be copied; the
distillation then relies on learned projections between widths. Sizes are given with BERT's names
(``hidden_size``, ``num_hidden_layers``, ``num_attention_heads``, ``intermediate_size``, ...) for
both architectures; DistilBERT's own names (``dim``, ``n_layers``, ``n_heads``, ``hidden_dim``)
are accepted too for ``arch="distilbert"``. Unset sizes follow the width:
``intermediate_size = 4 * hidden_size`` and ``num_attention_heads = hidden_size // 64`` (at least 1).

Shapes can also be named (:data:`SHAPE_PRESETS`, :func:`shape_sizes`): ``"tinybert4"`` is
TinyBERT's 4 layers, hidden 312, intermediate 1200, 12 heads; ``"<L>x<H>"`` (e.g.
``"3x192"``) is L layers of width H with intermediate 4·H and 12 heads when 12 divides H
(so attention maps line up head for head with a 12-head teacher), else H // 64. A mapping
may name a preset under ``"preset"`` and override single sizes next to it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

from transformers import (
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
    DistilBertConfig,
    DistilBertForMaskedLM,
    DistilBertForSequenceClassification,
    DistilBertForTokenClassification,
    DistilBertModel,
    PreTrainedConfig,
    PreTrainedModel,
)

from .mobilebert import MOBILEBERT_PRESETS, head_kind, is_mobilebert, mobilebert_student

# task kind (TaskSpec.kind, plus the pre-training / encoder-only ones) -> model kind
TASK_KINDS = {
    "classification": "sequence_classification",
    "regression": "sequence_classification",
    "sequence_classification": "sequence_classification",
    "token_classification": "token_classification",
    "masked_lm": "masked_lm",
    "mlm": "masked_lm",
    "base": "base",
    "encoder": "base",
}

CLASSES: dict[str, dict[str, type[PreTrainedModel]]] = {
    "bert": {
        "sequence_classification": BertForSequenceClassification,
        "token_classification": BertForTokenClassification,
        "masked_lm": BertForMaskedLM,
        "base": BertModel,
    },
    "distilbert": {
        "sequence_classification": DistilBertForSequenceClassification,
        "token_classification": DistilBertForTokenClassification,
        "masked_lm": DistilBertForMaskedLM,
        "base": DistilBertModel,
    },
}

SHAPE_PRESETS: dict[str, dict[str, int]] = {
    "tinybert4": {"num_hidden_layers": 4, "hidden_size": 312, "intermediate_size": 1200,
                  "num_attention_heads": 12},
    "tinybert6": {"num_hidden_layers": 6, "hidden_size": 768, "intermediate_size": 3072,
                  "num_attention_heads": 12},
}


def shape_sizes(spec: str | Mapping[str, Any]) -> dict[str, Any]:
    """The sizes of a named shape (``"tinybert4"``, ``"3x192"``) or of a mapping that may
    hold ``"preset"`` plus overrides. Raises ValueError naming the unknown preset."""
    if isinstance(spec, Mapping):
        sizes = dict(spec)
        preset = sizes.pop("preset", None)
        return {**shape_sizes(preset), **sizes} if preset is not None else sizes
    if not isinstance(spec, str):
        raise ValueError(f"a student shape is a preset name or a mapping of sizes, got {spec!r}")
    name = spec.strip().lower()
    if name in SHAPE_PRESETS:
        return dict(SHAPE_PRESETS[name])
    if name in MOBILEBERT_PRESETS:  # MobileBERT settings (students/mobilebert.py)
        return {"model_type": "mobilebert", **MOBILEBERT_PRESETS[name]}
    layers, sep, width = name.partition("x")
    if sep and layers.isdigit() and width.isdigit() and int(layers) >= 1 and int(width) >= 1:
        hidden = int(width)
        heads = 12 if hidden % 12 == 0 else max(1, hidden // 64)
        return {"num_hidden_layers": int(layers), "hidden_size": hidden,
                "intermediate_size": 4 * hidden, "num_attention_heads": heads}
    raise ValueError(f"unknown student shape {spec!r}: use one of "
                     f"{', '.join([*SHAPE_PRESETS, *MOBILEBERT_PRESETS])}, "
                     "'<layers>x<hidden>' (e.g. '3x192') or a mapping of sizes")


# BERT name -> DistilBERT name
_TO_DISTILBERT = {
    "hidden_size": "dim",
    "num_hidden_layers": "n_layers",
    "num_attention_heads": "n_heads",
    "intermediate_size": "hidden_dim",
    "hidden_dropout_prob": "dropout",
    "attention_probs_dropout_prob": "attention_dropout",
    "hidden_act": "activation",
}
_FROM_DISTILBERT = {v: k for k, v in _TO_DISTILBERT.items()}

# Keys of a config's to_dict() that describe a saved model rather than a shape.
_DROP = {
    "architectures", "model_type", "transformers_version", "_name_or_path", "dtype", "torch_dtype",
    "id2label", "label2id", "num_labels", "problem_type", "_attn_implementation_autoset",
    "output_attentions", "output_hidden_states", "return_dict",
}


def _normalise_labels(num_labels: int, id2label: Mapping[int, str] | Sequence[str] | None) -> dict[int, str] | None:
    if id2label is None:
        return None
    if isinstance(id2label, Mapping):
        labels = {int(k): str(v) for k, v in id2label.items()}
    else:
        labels = {i: str(name) for i, name in enumerate(id2label)}
    if sorted(labels) != list(range(len(labels))):
        raise ValueError(f"id2label keys must be 0..{len(labels) - 1}, got {sorted(labels)}")
    if len(labels) != num_labels:
        raise ValueError(f"id2label has {len(labels)} labels but num_labels={num_labels}")
    return labels


def _label_args(task_kind: str, num_labels: int, labels: dict[int, str] | None) -> dict[str, Any]:
    """The label settings of a student's config (labels or their count, problem type)."""
    args: dict[str, Any] = {"num_labels": num_labels}
    if labels is not None:
        args = {"id2label": labels, "label2id": {v: k for k, v in labels.items()}}
    if task_kind == "regression":
        args["problem_type"] = "regression"
    elif task_kind == "classification":
        args["problem_type"] = "single_label_classification"
    return args


def student_from_config(
    config_or_dict: PreTrainedConfig | Mapping[str, Any] | str,
    task_kind: str,
    num_labels: int,
    *,
    arch: str = "bert",
    tokenizer_vocab_size: int | None = None,
    id2label: Mapping[int, str] | Sequence[str] | None = None,
    attn_implementation: str | None = None,
    teacher_hidden_size: int | None = None,
) -> PreTrainedModel:
    """A randomly initialised BERT or DistilBERT of the given shape for ``task_kind``.

    ``config_or_dict``: a config (e.g. the teacher's, whose sizes are the starting point), a
    dict of sizes or a shape preset name (see the module docstring). ``task_kind``: "classification", "regression"
    (num_labels must be 1), "token_classification", "masked_lm" or "base".
    ``tokenizer_vocab_size`` overrides the vocabulary size: pass ``len(teacher_tokenizer)``
    so the student reads the same token ids as the teacher. A MobileBERT shape (a
    ``mobilebert*`` preset or ``"model_type": "mobilebert"``) builds a MobileBERT student of
    inter-block width ``teacher_hidden_size`` (:mod:`bertdistill.students.mobilebert`), whatever
    ``arch`` says; ``task_kind`` may then also be ``qa``.
    """
    mobile = not isinstance(config_or_dict, PreTrainedConfig) and is_mobilebert(config_or_dict)
    if arch not in CLASSES:
        raise ValueError(f"unknown student arch {arch!r}: use 'bert' or 'distilbert'")
    if task_kind not in TASK_KINDS and not (mobile and task_kind == "qa"):
        raise ValueError(f"unknown task kind {task_kind!r}: use one of {', '.join(TASK_KINDS)}")
    if isinstance(num_labels, bool) or not isinstance(num_labels, int) or num_labels < 1:
        raise ValueError(f"num_labels must be a positive int, got {num_labels!r}")
    if task_kind == "regression" and num_labels != 1:
        raise ValueError(f"a regression student has one output, got num_labels={num_labels}")
    labels = _normalise_labels(num_labels, id2label)
    label_args = _label_args(task_kind, num_labels, labels)
    if mobile:
        return mobilebert_student(config_or_dict, head_kind(task_kind, TASK_KINDS), label_args,
                                  teacher_hidden_size=teacher_hidden_size, vocab_size=tokenizer_vocab_size,
                                  attn_implementation=attn_implementation)
    kind = TASK_KINDS[task_kind]

    if isinstance(config_or_dict, PreTrainedConfig):
        source = {k: v for k, v in config_or_dict.to_dict().items() if k not in _DROP}
        from_distilbert = config_or_dict.model_type == "distilbert"
    elif isinstance(config_or_dict, (Mapping, str)):
        source = shape_sizes(config_or_dict)
        from_distilbert = False
    else:
        raise TypeError(f"config_or_dict must be a config or a dict, got {type(config_or_dict).__name__}")

    # Everything in BERT's names first, whichever arch it came from.
    sizes: dict[str, Any] = {}
    for key, value in source.items():
        bert_key = _FROM_DISTILBERT.get(key, key)
        if bert_key != key and arch == "bert" and not from_distilbert:
            raise ValueError(f"{key!r} is a DistilBERT name; a BERT student takes {bert_key!r}")
        sizes[bert_key] = value
    if tokenizer_vocab_size is not None:
        sizes["vocab_size"] = int(tokenizer_vocab_size)
    hidden = int(sizes.get("hidden_size", 768))
    sizes["hidden_size"] = hidden
    sizes.setdefault("intermediate_size", 4 * hidden)
    sizes.setdefault("num_attention_heads", max(1, hidden // 64))
    if hidden % sizes["num_attention_heads"]:
        raise ValueError(
            f"hidden_size {hidden} is not divisible by num_attention_heads {sizes['num_attention_heads']}"
        )

    if arch == "bert":
        config_cls, args = BertConfig, sizes
    else:
        config_cls = DistilBertConfig
        args = {_TO_DISTILBERT.get(k, k): v for k, v in sizes.items()}
        args.setdefault("sinusoidal_pos_embds", False)
    known = {f.name for f in dataclasses.fields(config_cls)} - _DROP
    unknown = sorted(k for k in args if k not in known)
    if unknown and not isinstance(config_or_dict, PreTrainedConfig):
        raise ValueError(f"{config_cls.__name__} has no setting {', '.join(map(repr, unknown))}")
    # From a config (e.g. a BERT teacher's for a DistilBERT student) what the target lacks
    # (type_vocab_size, layer_norm_eps, ...) is left out.
    config = config_cls(**{k: v for k, v in args.items() if k in known}, **label_args)

    kwargs = {} if attn_implementation is None else {"attn_implementation": attn_implementation}
    return CLASSES[arch][kind]._from_config(config, **kwargs)
