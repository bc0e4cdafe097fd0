"""Connectors: learned projections from the student's width to the teacher's.

A term with ``projection: true`` (or ``per_layer``) gets one :class:`Projection` per layer
pair, keyed ``"<term name>[<student index>-><teacher index>]"``; ``projection: shared``
gets ONE projection for all its pairs, keyed by the term name (TinyBERT's single W_h for
every hidden layer); ``projection: auto`` is ``shared`` when the widths differ and no
projection at all when they are equal (:func:`resolve_projection`, applied by the
distiller before the connectors are built). See :func:`connector_key`. The connectors are
trained with the student and saved with it in checkpoints.
"""

from __future__ import annotations

import dataclasses

from torch import Tensor, nn

from bertdistill.distill.losses import LOSSES
from bertdistill.distill.terms import Term, describe, pair_label, term_pairs

INITS = ("xavier", "normal")
WIDTH_FEATURES = ("hidden", "cls", "embeddings")


class Projection(nn.Linear):
    """``Linear(in_dim, out_dim)``; weights xavier-uniform or normal(0, 0.02), bias zero.

    ``label`` names the owner (a term) in the error raised when an input has the wrong width.
    """

    def __init__(self, in_dim: int, out_dim: int, init: str = "xavier", label: str = "") -> None:
        if in_dim < 1 or out_dim < 1:
            raise ValueError(f"{label or 'projection'}: sizes must be >= 1, got {in_dim} -> {out_dim}")
        if init not in INITS:
            raise ValueError(f"{label or 'projection'}: init must be one of {INITS}, got {init!r}")
        self.init = init
        self.label = label
        super().__init__(in_dim, out_dim)

    def reset_parameters(self) -> None:
        if getattr(self, "init", "xavier") == "normal":
            nn.init.normal_(self.weight, mean=0.0, std=0.02)
        else:
            nn.init.xavier_uniform_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"{self.label or 'projection'}: projection expects student width "
                             f"{self.in_features}, got a feature of width {x.shape[-1]}")
        return super().forward(x.to(self.weight.dtype) if x.is_floating_point() else x)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, init={self.init!r}"


def resolve_projection(term: Term, student_width: int, teacher_width: int) -> Term:
    """``term`` with ``projection: auto`` replaced by ``"shared"`` (widths differ) or
    ``False`` (equal widths); ``True`` is spelled ``"per_layer"``. Other terms unchanged."""
    mode = term.projection
    if mode == "auto" and isinstance(mode, str):
        mode = "shared" if student_width != teacher_width else False
    elif mode is True:
        mode = "per_layer"
    return term if mode is term.projection else dataclasses.replace(term, projection=mode)


def connector_key(term: Term, pair: tuple[int, int] | None) -> str:
    """The ModuleDict key of a term's projection for one layer pair: the term name for a
    shared projection, else ``"<name>[s->t]"``."""
    if term.projection == "shared":
        return term.name
    return pair_label(term, pair if pair is not None else (0, 0))


def build_connectors(terms: list[Term], student_width: int, teacher_width: int,
                     init: str = "xavier") -> nn.ModuleDict:
    """One Projection(student_width -> teacher_width) per layer pair of each projected term.

    ``terms`` must be named and resolved. A term comparing hidden-size features of different
    widths without a projection, or asking for a projection of features that have no hidden
    width (logits, attention maps), raises ValueError naming the term.
    """
    connectors = nn.ModuleDict()
    for term in terms:
        has_width = term.student in WIDTH_FEATURES
        if term.projection and not has_width:
            raise ValueError(f"{describe(term)}: a projection maps hidden widths; {term.student!r} "
                             "features cannot be projected")
        cls = LOSSES.get(term.loss)
        compares = cls is None or cls.needs_teacher
        if has_width and compares and not term.projection and student_width != teacher_width:
            raise ValueError(f"{describe(term)}: student width {student_width} != teacher width "
                             f"{teacher_width}; set projection: true to learn a mapping")
        if not term.projection:
            continue
        if term.projection == "auto":
            term = resolve_projection(term, student_width, teacher_width)
            if not term.projection:
                continue
        if term.projection == "shared":
            connectors[connector_key(term, None)] = Projection(
                student_width, teacher_width, init=init, label=describe(term))
            continue
        for pair in term_pairs(term):
            key = connector_key(term, pair)
            if key in connectors:
                raise ValueError(f"{describe(term)}: duplicate layer pair {pair}")
            connectors[key] = Projection(student_width, teacher_width, init=init, label=describe(term))
    return connectors

