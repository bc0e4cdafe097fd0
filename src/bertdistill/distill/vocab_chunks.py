"""Masked-LM terms computed over chunks of positions, never over the whole [tokens, vocab] tensor.

In general distillation most of a step's memory is vocabulary-sized: the student's and the
teacher's masked-LM logits [B, L, V] (V = 30,522 for BERT's vocabulary) and what the KL, the
cross-entropy and their softmaxes keep for the backward pass, several [B, L, V] float tensors
alive at once. Here both models run without their masked-LM heads (their encoders only); the
real tokens' last hidden states are gathered into [N, D], and the terms that read logits are
computed ``chunk`` positions at a time: the teacher's head under ``no_grad``, the student's head
and the losses with autograd, and each chunk's gradients (with respect to the chunk's hidden
states and the student head's weights) are taken at once, inside the forward pass, then the
chunk's tensors are freed. The backward pass only scales the stored gradients, so a step does
the same matrix products as the plain computation (nothing is recomputed) and at most one
chunk's [chunk, V] tensors are alive.

Each term's value equals the plain one: a loss's value over a chunk is its mean over the rows
it counts in that chunk (real tokens, or masked ones for the cross-entropy), so the chunks are
combined with weights (rows counted in the chunk) / (rows counted in the batch). Supported
terms: ``mlm_kd``, ``mlm_ce``, ``kd_kl``, ``soft_ce`` and ``logits_mse``; with any other term
reading logits, attention maps or Q/K/V compared, or a model family whose head is not known,
:func:`chunked_module` returns the plain :class:`DistillModule`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..models.inputs import model_inputs
from .distiller import Distiller
from .features import extract
from .losses import IGNORE_INDEX

#: positions per chunk of the masked-LM terms by default (0 = the plain computation)
DEFAULT_VOCAB_CHUNK = 512

#: losses computed chunk by chunk, and the rows each counts: "real" (every real token) or
#: "labelled" (the masked tokens, labels != -100)
CHUNKED_LOSSES = {"mlm_kd": "real", "mlm_ce": "labelled", "kd_kl": "real", "soft_ce": "real",
                  "logits_mse": "real"}


@dataclass
class MLMHead:
    """A masked-LM model split into its encoder and the head mapping last hidden states to logits."""

    encoder: nn.Module
    head: Callable[[Tensor], Tensor]
    modules: tuple[nn.Module, ...]

    def parameters(self) -> list[nn.Parameter]:
        seen: dict[int, nn.Parameter] = {}
        for module in self.modules:
            for p in module.parameters():
                seen.setdefault(id(p), p)
        return list(seen.values())


def split_mlm_head(model: nn.Module) -> MLMHead | None:
    """The encoder and masked-LM head of a DistilBERT, BERT or RoBERTa-family masked LM, or None."""
    name = type(model).__name__
    if name == "DistilBertForMaskedLM":
        parts = (model.vocab_transform, model.activation, model.vocab_layer_norm, model.vocab_projector)

        def head(hidden: Tensor) -> Tensor:
            for part in parts:
                hidden = part(hidden)
            return hidden
        return MLMHead(model.distilbert, head, parts)
    if name == "BertForMaskedLM":
        return MLMHead(model.bert, model.cls, (model.cls,))
    if name.endswith("ForMaskedLM") and hasattr(model, "lm_head") and hasattr(model, "roberta"):
        return MLMHead(model.roberta, model.lm_head, (model.lm_head,))
    return None


def _term_rows(loss: str, params: dict) -> str:
    if loss == "mlm_kd" and params.get("positions") == "masked":
        return "labelled"
    return CHUNKED_LOSSES[loss]


def chunkable(distiller: Distiller) -> bool:
    """Whether every term reading logits can be chunked and no term compares attention or Q/K/V."""
    logit_terms = [t for t in distiller.terms if t.student == "logits"]
    if not logit_terms or any(t.loss not in CHUNKED_LOSSES for t in logit_terms):
        return False
    if any(t.teacher not in ("logits", None) for t in logit_terms):
        return False
    needs = distiller.student_needs | distiller.teacher_needs
    return not needs.attentions and not needs.qkv_layers


class _FusedVocabTerms(torch.autograd.Function):
    """Total of the chunked terms; the gradients are computed chunk by chunk in the forward pass."""

    @staticmethod
    def forward(ctx, compute, hidden: Tensor, *params: Tensor):
        total, parts, grads = compute(hidden, params)
        ctx.save_for_backward(*grads)
        ctx.mark_non_differentiable(parts)
        return total, parts

    @staticmethod
    def backward(ctx, grad_total: Tensor, _grad_parts: Tensor):
        grads = tuple(g * grad_total if g is not None else None for g in ctx.saved_tensors)
        return (None, *grads)


class ChunkedMLMModule(nn.Module):
    """The student and the distiller's connectors (the state of a ``DistillModule``), with the
    masked-LM terms computed over chunks of ``chunk`` positions.

    ``forward(batch, teacher_feats)`` takes the teacher features of :meth:`teacher_features`."""

    def __init__(self, student: nn.Module, distiller: Distiller, teacher: nn.Module, chunk: int) -> None:
        super().__init__()
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        self.student = student
        self.distiller = distiller
        self.chunk = int(chunk)
        self._student_head = split_mlm_head(student)
        self._teacher_head = split_mlm_head(teacher)  # not a submodule: frozen, trained and saved nowhere
        if self._student_head is None or self._teacher_head is None:
            raise ValueError(f"no masked-LM head known for {type(student).__name__} / {type(teacher).__name__}")
        self.vocab_terms = [t for t in distiller.terms if t.student == "logits"]
        self.other_names = [t.name for t in distiller.terms if t.student != "logits"]
        self._student_keys = [k for k in distiller.student_keys if k != "logits"]
        self._teacher_keys = [k for k in distiller.teacher_keys if k != "logits"]
        self._rows = {t.name: _term_rows(t.loss, t.params) for t in self.vocab_terms}
        self._losses = {t.name: distiller.loss_for(t.name) for t in self.vocab_terms}

    def teacher_features(self, batch: dict) -> dict:
        """The teacher encoder's features under no_grad, its last hidden state as ``"last_hidden"``."""
        want = self.distiller.teacher_needs
        encoder = self._teacher_head.encoder
        with torch.no_grad():
            out = encoder(**model_inputs(encoder, batch), output_hidden_states=want.hidden_states)
            feats = extract(out, self._teacher_keys)
            feats["last_hidden"] = out.last_hidden_state
        return feats

    def forward(self, batch: dict, teacher_feats: dict) -> tuple[Tensor, dict]:
        want = self.distiller.student_needs
        encoder = self._student_head.encoder
        out = encoder(**model_inputs(encoder, batch), output_hidden_states=want.hidden_states)
        total, parts = self.vocab_loss(out.last_hidden_state, teacher_feats["last_hidden"], batch)
        if self.other_names:
            student_feats = extract(out, self._student_keys)
            rest, rest_parts = self.distiller(student_feats, teacher_feats, batch, only=self.other_names)
            total = total + rest
            parts.update(rest_parts)
        order = [t.name for t in self.distiller.terms]
        return total, {name: parts[name] for name in order if name in parts} | {
            k: v for k, v in parts.items() if k not in order}

    def vocab_loss(self, student_hidden: Tensor, teacher_hidden: Tensor, batch: dict) -> tuple[Tensor, dict]:
        """(weighted sum of the masked-LM terms, {term: unweighted value}) over the batch's real tokens."""
        mask = batch.get("attention_mask")
        labels = batch.get("labels")
        flat = student_hidden.reshape(-1, student_hidden.shape[-1])
        keep = (torch.ones(flat.shape[0], dtype=torch.bool, device=flat.device) if mask is None
                else (mask.reshape(-1) != 0))
        index = keep.nonzero().squeeze(1)
        hidden = flat.index_select(0, index)
        t_hidden = teacher_hidden.reshape(-1, teacher_hidden.shape[-1]).index_select(0, index).detach()
        sel_labels = (labels.reshape(-1).index_select(0, index) if labels is not None
                      else torch.full((index.numel(),), IGNORE_INDEX, dtype=torch.long, device=flat.device))
        rows = {"real": torch.ones_like(sel_labels, dtype=torch.bool), "labelled": sel_labels != IGNORE_INDEX}
        counts = {name: int(rows[self._rows[name]].sum()) for name in self._losses}
        if any(rows_kind == "labelled" for rows_kind in self._rows.values()) and labels is None:
            raise ValueError("the masked-LM terms need the batch's masked-LM 'labels' (-100 on unmasked positions)")
        weights = {t.name: t.weight for t in self.vocab_terms}
        params = [p for p in self._student_head.parameters() if p.requires_grad]
        with_grad = torch.is_grad_enabled() and (hidden.requires_grad or bool(params))

        def chunk_loss(h: Tensor, start: int, stop: int, values: dict[str, Tensor]) -> Tensor:
            s_logits = self._student_head.head(h)[None]
            with torch.no_grad():
                t_logits = self._teacher_head.head(t_hidden[start:stop])[None]
            chunk_labels = sel_labels[start:stop][None]
            ones = torch.ones_like(chunk_labels)
            loss = s_logits.new_zeros((), dtype=torch.float32)
            for name, fn in self._losses.items():
                n = int(rows[self._rows[name]][start:stop].sum())
                if n == 0:
                    continue
                share = fn(s_logits, t_logits, ones, chunk_labels) * (n / counts[name])
                values[name] = values[name] + share.detach()
                loss = loss + share * weights[name]
            return loss

        def compute(h_all: Tensor, grad_params: tuple[Tensor, ...], track: bool = True):
            values = {name: torch.zeros((), device=h_all.device) for name in self._losses}
            total = torch.zeros((), device=h_all.device)
            grad_h = torch.zeros_like(h_all) if track and h_all.requires_grad else None
            grad_p = [torch.zeros_like(p) for p in grad_params]
            for start in range(0, h_all.shape[0], self.chunk):
                stop = min(start + self.chunk, h_all.shape[0])
                with torch.set_grad_enabled(track):
                    h = h_all[start:stop].detach().requires_grad_(grad_h is not None)
                    loss = chunk_loss(h, start, stop, values)
                    wrt = ([h] if grad_h is not None else []) + list(grad_params)
                    if loss.requires_grad and wrt:
                        got = torch.autograd.grad(loss, wrt, allow_unused=True)
                        if grad_h is not None:
                            grad_h[start:stop] = got[0]
                            got = got[1:]
                        for acc, g in zip(grad_p, got):
                            if g is not None:
                                acc.add_(g)
                total = total + loss.detach()
            names = list(self._losses)
            parts = torch.stack([values[n] for n in names])
            return total, parts, [grad_h, *grad_p]

        if with_grad:
            total, parts = _FusedVocabTerms.apply(compute, hidden, *params)
        else:
            total, parts, _ = compute(hidden.detach(), (), track=False)
        return total, dict(zip(self._losses, parts.tolist()))


def chunked_module(student: nn.Module, distiller: Distiller, teacher: nn.Module, chunk: int) -> nn.Module | None:
    """A :class:`ChunkedMLMModule` when ``chunk`` > 0 and the terms and models allow it, else None."""
    if chunk <= 0 or not chunkable(distiller):
        return None
    if split_mlm_head(student) is None or split_mlm_head(teacher) is None:
        return None
    return ChunkedMLMModule(student, distiller, teacher, chunk)
