"""A real DistilBERT model (``DistilBertFor*``) initialised from a BERT teacher.

As in the DistilBERT paper (Sanh et al., 2019) the student drops BERT's token-type embeddings and
pooler and keeps some of the teacher's layers. Every weight is mapped by name:

=====================================================  ==========================================
BERT teacher                                           DistilBERT student
=====================================================  ==========================================
embeddings.word_embeddings                             embeddings.word_embeddings
embeddings.position_embeddings (+ token type 0, below) embeddings.position_embeddings
embeddings.LayerNorm                                   embeddings.LayerNorm
encoder.layer.{kept[j]}.attention.self.query/key/value transformer.layer.{j}.attention.q/k/v_lin
encoder.layer.{kept[j]}.attention.output.dense         transformer.layer.{j}.attention.out_lin
encoder.layer.{kept[j]}.attention.output.LayerNorm     transformer.layer.{j}.sa_layer_norm
encoder.layer.{kept[j]}.intermediate.dense             transformer.layer.{j}.ffn.lin1
encoder.layer.{kept[j]}.output.dense                   transformer.layer.{j}.ffn.lin2
encoder.layer.{kept[j]}.output.LayerNorm               transformer.layer.{j}.output_layer_norm
pooler.dense + classifier (sequence classification)    pre_classifier + classifier
classifier (token classification)                      classifier
qa_outputs (question answering)                        qa_outputs
cls.predictions.transform.dense / .LayerNorm           vocab_transform / vocab_layer_norm
cls.predictions.decoder (tied to word embeddings)      vocab_projector (tied to word embeddings)
=====================================================  ==========================================

What matches and what does not, for single-segment input (all token types 0):

* The encoder's hidden states equal the BERT computation through the kept layers (up to float
  rounding), and so do token-classification and masked-LM logits, whose heads read them directly.
* Sequence-classification logits differ: BERT pools with ``tanh(pooler.dense(h_cls))`` while
  DistilBERT computes ``relu(pre_classifier(h_cls))``. The pooler weights are still the best
  starting point for ``pre_classifier``, but the head needs the distillation to adapt.
* DistilBERT has no token types, so a sentence pair's second segment is embedded like the first.
* DistilBERT's LayerNorm epsilon is fixed at 1e-12 (BERT's default). A teacher with another
  ``layer_norm_eps`` still converts, with a warning, and its outputs then differ slightly.

RoBERTa teachers are refused (see ``build_distilbert``); use ``arch="same"`` for them.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn
from transformers import (
    DistilBertConfig,
    DistilBertForMaskedLM,
    DistilBertForQuestionAnswering,
    DistilBertForSequenceClassification,
    DistilBertForTokenClassification,
    DistilBertModel,
    PreTrainedModel,
)

from .layers import teacher_kind
from .same_arch import build_same_arch

DISTILBERT_CLASSES: dict[str, type[PreTrainedModel]] = {
    "sequence_classification": DistilBertForSequenceClassification,
    "token_classification": DistilBertForTokenClassification,
    "question_answering": DistilBertForQuestionAnswering,
    "masked_lm": DistilBertForMaskedLM,
    "base": DistilBertModel,
}

DISTILBERT_LAYER_NORM_EPS = 1e-12  # hard-coded in transformers' modeling_distilbert.py


def distilbert_config_from_bert(
    bert_config, n_layers: int, *, attn_implementation: str | None = None
) -> DistilBertConfig:
    """The DistilBERT config with the BERT config's sizes, dropouts, vocabulary and labels."""
    c = bert_config
    if not isinstance(c.hidden_act, str):
        raise ValueError(
            f"the teacher's hidden_act is a {type(c.hidden_act).__name__}, not an activation name; "
            "a DistilBERT config can only store a name"
        )
    classifier_dropout = c.classifier_dropout if c.classifier_dropout is not None else c.hidden_dropout_prob
    config = DistilBertConfig(
        vocab_size=c.vocab_size,
        max_position_embeddings=c.max_position_embeddings,
        sinusoidal_pos_embds=False,
        n_layers=n_layers,
        n_heads=c.num_attention_heads,
        dim=c.hidden_size,
        hidden_dim=c.intermediate_size,
        dropout=c.hidden_dropout_prob,
        attention_dropout=c.attention_probs_dropout_prob,
        activation=c.hidden_act,
        initializer_range=c.initializer_range,
        qa_dropout=classifier_dropout,
        seq_classif_dropout=classifier_dropout,
        pad_token_id=c.pad_token_id,
        bos_token_id=c.bos_token_id,
        eos_token_id=c.eos_token_id,
        tie_word_embeddings=c.tie_word_embeddings,
        id2label=dict(c.id2label),
        label2id=dict(c.label2id),
        problem_type=c.problem_type,
        chunk_size_feed_forward=c.chunk_size_feed_forward,
    )
    if attn_implementation is not None:
        config._attn_implementation = attn_implementation
    else:
        config._attn_implementation = c._attn_implementation
    return config


def _linear(state: dict[str, torch.Tensor], name: str, module: nn.Module) -> None:
    """Copy a Linear's or LayerNorm's weight and bias under ``name``."""
    state[f"{name}.weight"] = module.weight
    state[f"{name}.bias"] = module.bias


def _mapped_state(teacher: PreTrainedModel, kind: str, kept: list[int]) -> dict[str, torch.Tensor]:
    bert = teacher.base_model  # the BertModel inside (or the teacher itself)
    p = "" if kind == "base" else "distilbert."
    state: dict[str, torch.Tensor] = {}

    emb = bert.embeddings
    state[f"{p}embeddings.word_embeddings.weight"] = emb.word_embeddings.weight
    # BERT embeds a token as word + position + token_type, and single-segment input (or no
    # token_type_ids at all) means token type 0 everywhere. DistilBERT has no token-type
    # embedding, so we add token_type_embeddings[0] to every position row: word + (position +
    # type0) is the same sum, and the embedding LayerNorm then sees exactly BERT's input.
    # The fold goes into the positions rather than the words because the MLM decoder is tied
    # to the word embeddings, which must stay unchanged.
    state[f"{p}embeddings.position_embeddings.weight"] = (
        emb.position_embeddings.weight + emb.token_type_embeddings.weight[0]
    )
    _linear(state, f"{p}embeddings.LayerNorm", emb.LayerNorm)

    for j, i in enumerate(kept):
        layer = bert.encoder.layer[i]
        s = f"{p}transformer.layer.{j}."
        _linear(state, s + "attention.q_lin", layer.attention.self.query)
        _linear(state, s + "attention.k_lin", layer.attention.self.key)
        _linear(state, s + "attention.v_lin", layer.attention.self.value)
        _linear(state, s + "attention.out_lin", layer.attention.output.dense)
        _linear(state, s + "sa_layer_norm", layer.attention.output.LayerNorm)
        _linear(state, s + "ffn.lin1", layer.intermediate.dense)
        _linear(state, s + "ffn.lin2", layer.output.dense)
        _linear(state, s + "output_layer_norm", layer.output.LayerNorm)

    if kind == "sequence_classification":
        # BERT: classifier(tanh(pooler.dense(h_cls))); DistilBERT: classifier(relu(pre_classifier(h_cls))).
        _linear(state, "pre_classifier", bert.pooler.dense)
        _linear(state, "classifier", teacher.classifier)
    elif kind == "token_classification":
        _linear(state, "classifier", teacher.classifier)
    elif kind == "question_answering":
        _linear(state, "qa_outputs", teacher.qa_outputs)
    elif kind == "masked_lm":
        head = teacher.cls.predictions
        _linear(state, "vocab_transform", head.transform.dense)
        _linear(state, "vocab_layer_norm", head.transform.LayerNorm)
        # decoder.weight is the word embedding matrix when tied (DistilBERT ties the same way);
        # decoder.bias is what BERT's forward adds (tied to predictions.bias).
        _linear(state, "vocab_projector", head.decoder)
    return state


def build_distilbert(
    teacher: PreTrainedModel, kept: list[int], *, attn_implementation: str | None = None
) -> PreTrainedModel:
    """A ``DistilBertFor*`` (or ``DistilBertModel``) matching the teacher's task, from its layers ``kept``."""
    family, kind = teacher_kind(teacher)
    if family == "distilbert":
        return build_same_arch(teacher, kept, attn_implementation=attn_implementation)
    if family != "bert":
        raise ValueError(
            f"arch='distilbert' needs a BERT teacher, got a {type(teacher).__name__}. RoBERTa is not "
            "converted: its position ids start at padding_idx + 1 and skip padding, while DistilBERT "
            "counts from 0, and it uses LayerNorm eps 1e-5 where DistilBERT hard-codes 1e-12, so the "
            "copy would not compute what the teacher computes. Use arch='same' (a shallower "
            f"{type(teacher).__name__}, the way DistilRoBERTa is built)."
        )
    cfg = teacher.config
    if cfg.is_decoder or cfg.add_cross_attention:
        raise ValueError(
            f"cannot convert a decoder / cross-attention {type(teacher).__name__} to DistilBERT "
            "(an encoder-only model); use arch='same'"
        )
    if abs(cfg.layer_norm_eps - DISTILBERT_LAYER_NORM_EPS) > 1e-15:
        warnings.warn(
            f"the teacher uses layer_norm_eps={cfg.layer_norm_eps}, DistilBERT always uses "
            f"{DISTILBERT_LAYER_NORM_EPS}: the student's outputs will differ slightly from the teacher's",
            stacklevel=3,
        )

    config = distilbert_config_from_bert(cfg, len(kept), attn_implementation=attn_implementation)
    cls = DISTILBERT_CLASSES[kind]
    student = cls._from_config(config, dtype=teacher.dtype)
    student.to(teacher.device)

    with torch.no_grad():
        state = _mapped_state(teacher, kind, kept)
        expected = set(student.state_dict().keys())
        missing = sorted(expected - state.keys())
        extra = sorted(state.keys() - expected)
        if missing or extra:  # a transformers version with other module names
            raise RuntimeError(
                f"BERT -> {cls.__name__} weight map does not fit this transformers version: "
                f"unmapped student weights {missing}, unknown names {extra}"
            )
        student.load_state_dict({k: v.detach() for k, v in state.items()}, strict=True)
    student.train(teacher.training)
    return student
