"""Masked-LM models: loading a teacher with an MLM head, or giving an encoder a new head.

* :func:`load_mlm_teacher` loads any Hugging Face masked-LM checkpoint (``BertForMaskedLM``,
  ``RobertaForMaskedLM``, ``DistilBertForMaskedLM``, or a ``*ForPreTraining`` checkpoint that
  holds one) by folder, hub id or alias, and refuses a checkpoint without a trained MLM head
  (a sentence encoder such as MiniLM-L6) with an explanation naming ``bertdistill mlm-head``.
* :func:`load_encoder` loads the bare encoder of any checkpoint (``AutoModel``: the head of a
  masked-LM or task checkpoint is dropped), for recipes that compare no logits.
* :func:`encoder_with_new_mlm_head` loads a BERT encoder as a ``BertForMaskedLM`` whose head
  (transform dense + LayerNorm, decoder tied to the word embeddings, bias) is freshly
  initialised, for ``bertdistill mlm-head`` to fit.
* :func:`freeze_for_head_fitting` freezes everything but the head (and the top K layers).
"""

from __future__ import annotations

import os

from torch import nn

from .loading import hub_errors, pretrained_kwargs, quiet_transformers, resolve_model

MLM_HEAD_COMMAND = "bertdistill mlm-head --model {name} --corpus DIR --output DIR"

# The parameter name prefixes of each family's MLM head (present only in MLM checkpoints).
HEAD_PREFIXES = ("cls.predictions.", "lm_head.", "vocab_transform.", "vocab_layer_norm.",
                 "vocab_projector.")

_HEAD_ARCH_SUFFIXES = ("ForMaskedLM", "ForPreTraining")


class NoMLMHeadError(ValueError):
    """The checkpoint has no trained masked-LM head; the message says how to fit one."""


def _no_head(name: str, what: str, flag: str) -> NoMLMHeadError:
    return NoMLMHeadError(
        f"{flag} {name}: {what}, so it has no masked-LM head to produce the vocabulary logits that "
        "the mlm_kd / mlm_ce / logits terms compare. Fit one first (the encoder stays frozen): "
        + MLM_HEAD_COMMAND.format(name=name)
        + " and pass that output folder instead (or use a recipe without logit terms)."
    )


def check_has_mlm_head(name: str | os.PathLike, *, flag: str = "--teacher", trust_remote_code: bool = False):
    """Read only the config of ``name``; raise :class:`NoMLMHeadError` if it is not a masked-LM
    checkpoint. Returns the config (cheap: no weights are loaded). A hub id that cannot be
    fetched raises one clear FileNotFoundError; ``hub_options`` gives the revision."""
    from transformers import AutoConfig

    source = resolve_model(name)
    with quiet_transformers(), hub_errors(name):
        config = AutoConfig.from_pretrained(source, **pretrained_kwargs(trust_remote_code))
    archs = list(getattr(config, "architectures", None) or [])
    if archs and not any(a.endswith(_HEAD_ARCH_SUFFIXES) for a in archs):
        raise _no_head(str(name), f"the checkpoint is a {archs[0]}", flag)
    return config


def load_mlm_teacher(
    name: str | os.PathLike,
    *,
    attn_implementation: str | None = None,
    flag: str = "--teacher",
    require_head: bool = True,
    trust_remote_code: bool = False,
):
    """A masked-LM model from a folder, hub id or alias, its head loaded from the checkpoint.

    With ``require_head`` (the default) the checkpoint must hold a trained head: a config whose
    ``architectures`` name no masked-LM class, or weights that leave the head to random
    initialisation, raise :class:`NoMLMHeadError` naming ``bertdistill mlm-head``. Without it
    (a recipe comparing only hidden states / attention maps) an encoder is loaded with an
    untrained head that no loss reads.
    """
    from transformers import AutoModelForMaskedLM

    if require_head:
        check_has_mlm_head(name, flag=flag, trust_remote_code=trust_remote_code)
    kwargs: dict = {"output_loading_info": True, **pretrained_kwargs(trust_remote_code)}
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    with quiet_transformers(), hub_errors(name):
        model, info = AutoModelForMaskedLM.from_pretrained(resolve_model(name), **kwargs)
    missing = [k for k in info.get("missing_keys", ()) if k.startswith(HEAD_PREFIXES)]
    if missing and require_head:
        raise _no_head(str(name), f"its weights lack {', '.join(sorted(missing)[:3])}", flag)
    return model


def load_encoder(name: str | os.PathLike, *, attn_implementation: str | None = None,
                 trust_remote_code: bool = False):
    """The bare encoder (``BertModel``, ``RobertaModel``, ``DistilBertModel``, ...) of a folder,
    hub id or alias, whatever head its checkpoint has (none, masked-LM or task)."""
    from transformers import AutoModel

    kwargs: dict = pretrained_kwargs(trust_remote_code)
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    with quiet_transformers(), hub_errors(name):
        return AutoModel.from_pretrained(resolve_model(name), **kwargs)


def encoder_with_new_mlm_head(name: str | os.PathLike, *, attn_implementation: str | None = None):
    """``BertForMaskedLM`` with the encoder of ``name`` and a newly initialised head.

    The decoder is tied to the word embeddings (as in BERT), so only the transform, its
    LayerNorm and the output bias are new. Only BERT encoders are accepted: the result is
    saved as a plain ``BertForMaskedLM`` folder.
    """
    from transformers import AutoConfig, BertForMaskedLM

    source = resolve_model(name)
    with quiet_transformers(), hub_errors(name):
        config = AutoConfig.from_pretrained(source, **pretrained_kwargs())
    if config.model_type != "bert":
        raise ValueError(f"--model {name}: a {config.model_type} checkpoint; mlm-head fits a head on "
                         "BERT encoders (model_type 'bert'). RoBERTa and DistilBERT checkpoints "
                         "on the hub usually ship their MLM head: use them as teachers directly")
    config.tie_word_embeddings = True
    config.architectures = ["BertForMaskedLM"]
    kwargs = {"config": config, **pretrained_kwargs()}
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    with quiet_transformers(), hub_errors(name):
        model = BertForMaskedLM.from_pretrained(source, **kwargs)
    if model.cls.predictions.decoder.weight is not model.bert.embeddings.word_embeddings.weight:
        raise RuntimeError("the MLM decoder is not tied to the word embeddings")
    return model


def freeze_for_head_fitting(model: nn.Module, unfreeze_top_layers: int = 0) -> list[str]:
    """Freeze a ``BertForMaskedLM`` but its head (transform, LayerNorm, bias) and the top
    ``unfreeze_top_layers`` encoder layers. The word embeddings stay frozen, so the tied
    decoder does too. Returns the names of the trainable parameters."""
    layers = model.bert.encoder.layer
    if not 0 <= unfreeze_top_layers <= len(layers):
        raise ValueError(f"--unfreeze-top-layers must be between 0 and {len(layers)}, got {unfreeze_top_layers}")
    model.requires_grad_(False)
    head = model.cls.predictions
    head.transform.requires_grad_(True)
    head.bias.requires_grad_(True)
    for layer in layers[len(layers) - unfreeze_top_layers:]:
        layer.requires_grad_(True)
    return [n for n, p in model.named_parameters() if p.requires_grad]
