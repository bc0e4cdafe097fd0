"""The wiring: terms + connectors -> the weighted total loss and its parts.

Typical use in a training step::

    distiller = Distiller(recipe.terms, student_config=student.config,
                          teacher_config=teacher.config, kept=kept, task_kind=task.kind)
    # models that need attention maps must be loaded with distiller.teacher_needs.model_kwargs()
    with torch.no_grad():
        t_out = teacher(**inputs, **distiller.teacher_needs.forward_kwargs())
    s_out = student(**inputs, **distiller.student_needs.forward_kwargs())
    total, parts = distiller.compute(s_out, t_out, batch)
    total.backward()   # reaches the student and distiller.connectors

The distiller's own parameters are its connectors (learned projections); give them to the
optimizer and save them with checkpoints. Teacher features are detached: the teacher is
frozen. Everything that can be checked without data (unknown losses, layer indices, widths,
head counts, KD on a regression task) is checked in ``__init__``, before training.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from bertdistill.distill.connectors import build_connectors, connector_key, resolve_projection
from bertdistill.distill.features import ATTENTION_TYPES, LAYER_TYPES, FeatureNeeds, extract, needs
from bertdistill.distill.losses import LOSSES, DistillLoss, build_loss
from bertdistill.distill.qa_losses import QA_LOGIT_LOSSES
from bertdistill.distill.terms import (Term, check_term, describe, name_terms, pair_label,
                                       resolve_term, term_keys, term_pairs)

TASK_KINDS = ("classification", "regression", "token_classification", "qa")


def _config_value(config: Any, name: str, what: str) -> int:
    value = getattr(config, name, None)
    if value is None:
        raise ValueError(f"{what} config {type(config).__name__} has no {name}")
    return int(value)


class Distiller(nn.Module):
    """Turns a list of :class:`Term` into a loss function over recorded features.

    ``student_config`` / ``teacher_config`` are HF configs (BertConfig, DistilBertConfig, ...;
    ``hidden_size``, ``num_hidden_layers``, ``num_attention_heads`` and ``num_labels`` are
    read through the config's attribute map). ``kept`` are the 0-based teacher layers the
    student was copied from (for ``layers: copied``). ``task_kind`` is the task's kind.
    With ``detail=True`` the parts also report each layer pair (``"hidden_mse[2->4]"``).
    """

    def __init__(self, terms: list[Term], *, student_config: Any, teacher_config: Any,
                 kept: list[int] | None = None, task_kind: str = "classification",
                 detail: bool = False, projection_init: str = "xavier") -> None:
        super().__init__()
        if task_kind not in TASK_KINDS:
            raise ValueError(f"task_kind must be one of {TASK_KINDS}, got {task_kind!r}")
        terms = list(terms)
        if not terms:
            raise ValueError("a distillation needs at least one term")
        self.task_kind = task_kind
        self.detail = bool(detail)
        self.kept = list(kept) if kept is not None else None
        self.student_layers = _config_value(student_config, "num_hidden_layers", "student")
        self.teacher_layers = _config_value(teacher_config, "num_hidden_layers", "teacher")
        self.student_width = _config_value(student_config, "hidden_size", "student")
        self.teacher_width = _config_value(teacher_config, "hidden_size", "teacher")
        self.student_heads = _config_value(student_config, "num_attention_heads", "student")
        self.teacher_heads = _config_value(teacher_config, "num_attention_heads", "teacher")
        self.student_labels = getattr(student_config, "num_labels", None)
        self.teacher_labels = getattr(teacher_config, "num_labels", None)

        for index, term in enumerate(terms):
            if not isinstance(term, Term):
                raise ValueError(f"term #{index}: expected a Term, got {type(term).__name__}")
            check_term(term, index)
        resolved = []
        for index, term in enumerate(name_terms(terms)):
            term = resolve_term(term, self.student_layers, self.teacher_layers, self.kept, index)
            term = resolve_projection(term, self.student_width, self.teacher_width)
            self._check_against_models(term)
            resolved.append(term)
        #: every term after naming and layer resolution, weight-0 terms included
        self.all_terms: list[Term] = resolved
        #: the terms that are computed (weight != 0)
        self.terms: list[Term] = [t for t in resolved if t.weight != 0]
        if not self.terms:
            raise ValueError("every term has weight 0: nothing to train")
        self._losses: dict[str, DistillLoss] = {t.name: self._build_loss(t) for t in self.terms}
        self.connectors = build_connectors(self.terms, self.student_width, self.teacher_width,
                                           init=projection_init)
        self._keys = {t.name: term_keys(t) for t in self.terms}

    # ------------------------------------------------------------------ validation

    def _check_against_models(self, term: Term) -> None:
        who = describe(term)
        cls = LOSSES[term.loss]
        if cls.soft_targets and self.task_kind == "regression":
            raise ValueError(f"{who}: {term.loss!r} compares class distributions, but a "
                             "regression task has a single output; use logits_mse")
        if term.student == "logits" and (term.loss in QA_LOGIT_LOSSES) != (self.task_kind == "qa"):
            raise ValueError(
                f"{who}: question answering's logits are start/end positions over a window: use qa_kd and "
                f"qa_hard on them, not {term.loss}" if self.task_kind == "qa" else
                f"{who}: {term.loss} compares the start/end logits of question answering; the task is "
                f"{self.task_kind}")
        if term.loss == "token_kd" and self.task_kind != "token_classification":
            raise ValueError(f"{who}: token_kd is for token classification, the task is "
                             f"{self.task_kind}; use kd_kl")
        if (term.student == "logits" and cls.needs_teacher and self.student_labels is not None
                and self.teacher_labels is not None and self.student_labels != self.teacher_labels):
            raise ValueError(f"{who}: the student has {self.student_labels} labels but the "
                             f"teacher has {self.teacher_labels}")
        if term.student in ("hidden", "cls", *LAYER_TYPES):
            offset = 1 if term.student in LAYER_TYPES else 0
            s_max, t_max = self.student_layers - offset, self.teacher_layers - offset
            note = "" if term.student in LAYER_TYPES else " (0 = embedding output)"
            for s, t in term.layers:
                if not (0 <= s <= s_max and 0 <= t <= t_max):
                    raise ValueError(
                        f"{who}: layer pair ({s}, {t}) out of range for {term.student} features: "
                        f"student indices 0..{s_max}, teacher indices 0..{t_max}{note}")
        if (term.student in ("hidden", "cls", "embeddings") and cls.needs_teacher
                and not term.projection and self.student_width != self.teacher_width):
            raise ValueError(f"{who}: student width {self.student_width} != teacher width "
                             f"{self.teacher_width}; set projection: true")
        if (term.student in ATTENTION_TYPES and self.student_heads != self.teacher_heads
                and term.params.get("head_reduce", "none") != "mean"):
            raise ValueError(f"{who}: the student has {self.student_heads} attention heads, the "
                             f"teacher {self.teacher_heads}; set params: {{head_reduce: mean}} "
                             "to compare head-averaged maps")

    def _build_loss(self, term: Term) -> DistillLoss:
        params = dict(term.params)
        if term.loss == "hard" and "regression" not in params:
            params["regression"] = self.task_kind == "regression"
        try:
            params = LOSSES[term.loss].model_params(
                params, student_width=self.student_width, teacher_width=self.teacher_width,
                student_heads=self.student_heads, teacher_heads=self.teacher_heads)
            return build_loss(term.loss, term.temperature, **params)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{describe(term)}: {err}") from None

    def loss_for(self, name: str) -> DistillLoss:
        """The loss module of the computed term ``name``."""
        return self._losses[name]

    # ------------------------------------------------------------------ features

    @property
    def student_keys(self) -> list[str]:
        """Sorted feature keys the student must provide."""
        return sorted({k for s_keys, _ in self._keys.values() for k in s_keys})

    @property
    def teacher_keys(self) -> list[str]:
        """Sorted feature keys the teacher must provide (empty if only ``hard`` is used)."""
        return sorted({k for _, t_keys in self._keys.values() for k in t_keys})

    @property
    def student_needs(self) -> FeatureNeeds:
        return needs(self.student_keys)

    @property
    def teacher_needs(self) -> FeatureNeeds:
        return needs(self.teacher_keys)

    def student_features(self, output: Any) -> dict[str, Tensor]:
        return extract(output, self.student_keys)

    def teacher_features(self, output: Any) -> dict[str, Tensor]:
        return extract(output, self.teacher_keys)

    # ------------------------------------------------------------------ loss

    @staticmethod
    def _feature(feats: Mapping[str, Tensor], key: str, side: str, term: Term) -> Tensor:
        if key not in feats:
            raise ValueError(f"{describe(term)} needs {side} feature {key!r}; the {side} features "
                             f"given are: {', '.join(sorted(feats)) or 'none'}")
        return feats[key]

    def forward(self, student_feats: Mapping[str, Tensor], teacher_feats: Mapping[str, Tensor],
                batch: Mapping[str, Tensor], only: Collection[str] | None = None) -> tuple[Tensor, dict[str, float]]:
        """(weighted total, {term name: unweighted value}); a term with several layer pairs
        reports the sum over its pairs, or their mean when its loss's ``pair_reduction`` is
        ``"mean"`` (and, with ``detail``, each pair too). ``only``: compute just the terms of
        these names (the others are computed elsewhere, e.g. over chunks of positions)."""
        labels = batch.get("labels")
        total: Tensor | None = None
        names: list[str] = []
        values: list[Tensor] = []
        for term in self.terms if only is None else [t for t in self.terms if t.name in only]:
            loss_fn = self._losses[term.name]
            s_keys, t_keys = self._keys[term.name]
            pairs = term_pairs(term)
            value: Tensor | None = None
            for i, pair in enumerate(pairs):
                student = self._feature(student_feats, s_keys[i], "student", term)
                teacher = (self._feature(teacher_feats, t_keys[i], "teacher", term).detach()
                           if t_keys else None)
                if term.projection:
                    student = self.connectors[connector_key(term, pair)](student)
                try:
                    part = loss_fn(student, teacher, batch.get(loss_fn.mask_key), labels)
                except ValueError as err:
                    raise ValueError(f"{describe(term)}: {err}") from None
                if self.detail and len(pairs) > 1:
                    names.append(pair_label(term, pair))
                    values.append(part.detach())
                value = part if value is None else value + part
            assert value is not None
            if loss_fn.pair_reduction == "mean":
                value = value / len(pairs)
            names.append(term.name)
            values.append(value.detach())
            weighted = value * term.weight
            total = weighted if total is None else total + weighted
        assert total is not None
        numbers = torch.stack([v.float() for v in values]).tolist()
        return total, dict(zip(names, numbers))

    def compute(self, student_output: Any, teacher_output: Any,
                batch: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """:meth:`forward` on features read from model outputs (or cached feature dicts)."""
        return self(self.student_features(student_output),
                    self.teacher_features(teacher_output) if self.teacher_keys else {}, batch)

    def extra_repr(self) -> str:
        shown = ", ".join(f"{t.name}×{t.weight:g}" for t in self.terms)
        return f"terms=[{shown}], task_kind={self.task_kind!r}"
