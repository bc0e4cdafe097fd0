"""A distillation described as data: a list of :class:`Term`.

A term says *what* to compare (a loss from ``LOSSES``), *which* features of the student and
the teacher (``logits``, ``hidden``, ``attention``, ``cls``, ``embeddings``, ``qkv``), at *which*
layers, with what weight. Layer pairs ``(student_index, teacher_index)`` are given in the
index space of the feature type:

* ``hidden`` and ``cls``: 0 is the embedding output, 1..L the layers' outputs;
* ``attention``, ``attention_scores`` and ``qkv``: 0 is the first layer, L-1 the last.

``layers`` may also be a spec string, resolved by :func:`resolve_layers` once the layer
counts are known. Specs are defined on transformer layers numbered 1..L and then converted
to the feature's index space (hidden index = layer number, attention index = layer − 1):

``last``                 student layer M ↔ teacher layer N
``copied``               student layer j ↔ the teacher layer it was copied from (``kept``)
``uniform``              TinyBERT: student layer j ↔ teacher layer ⌊j·N/M⌋ (= j·N/M when M | N)
``top``                  TinyBERT's "top" strategy: student layer j ↔ teacher layer N−M+j (the
                         last M teacher layers; 4 → 12: teacher 9, 10, 11, 12)
``bottom``               TinyBERT's "bottom" strategy: student layer j ↔ teacher layer j (the
                         first M teacher layers)
``skip``                 BERT-PKD PKD-Skip: student layers 1..M−1 ↔ teacher ⌊j·N/M⌋, i.e.
                         every k-th teacher layer (12 → 6: teacher 2, 4, 6, 8, 10)
``last_k``               BERT-PKD PKD-Last: student layers 1..M−1 ↔ teacher N−M+j, the last
                         teacher layers before the final one (12 → 6: teacher 7, 8, 9, 10, 11)
``all_plus_embeddings``  hidden/cls only: (0, 0) for the embeddings, then ``uniform``
``repeat``               uniform with repetition, for a student deeper than its teacher (or
                         as deep): student layer j ↔ teacher layer ⌈j·N/M⌉, so each teacher
                         layer teaches M/N consecutive student layers (12 → 6: teacher 1, 1,
                         2, 2, ..., 6, 6); the same pairs as ``uniform`` when M divides N

In BERT-PKD the student's final layer is left out on purpose: it is taught by KD on the
logits. An explicit list of pairs is taken as is, in the feature's index space (so
``[[1, 3], [2, 6]]`` on ``hidden`` is layers 1→3, 2→6, and on ``attention`` it is layers
2→4, 3→7 counted from 1); a negative index counts from the end of that index space, as in
Python (``[[-1, -1]]`` is the last layers, ``[[-1, 17]]`` the student's last and the
teacher's 18th counted from 1); the distiller refuses pairs outside the models' layers.

``projection`` (hidden-width features only): ``false``; ``true`` or ``per_layer`` (one
learned W per layer pair); ``shared`` (ONE W_h for every pair of the term, as in TinyBERT);
``auto`` (``shared`` when the widths differ, none when they are equal: no random
projection is put between equal widths).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from bertdistill.distill.features import FEATURE_TYPES, INDEXED_TYPES, LAYER_TYPES, feature_key
from bertdistill.distill.losses import LOSSES, build_loss

LAYER_SPECS = ("last", "copied", "uniform", "top", "bottom", "skip", "last_k",
               "all_plus_embeddings", "repeat")
PROJECTIONS = (False, True, "per_layer", "shared", "auto")
TERM_FIELDS = ("loss", "weight", "student", "teacher", "layers", "projection", "temperature",
               "params", "name")


@dataclass
class Term:
    """One weighted comparison between a student feature and a teacher feature.

    ``student`` / ``teacher`` default to ``"logits"``; for a loss that cannot compare logits
    (e.g. ``hidden_mse``) a left-default feature becomes the loss's own default feature
    (``hidden`` for hidden_mse/cosine, ``cls`` for pkd_cls, ``attention_scores`` for
    attention_mse, ``attention`` for attention_kl, ``embeddings`` for embedding_mse, ``qkv``
    for minilm). ``layers=None`` on a layered feature means
    ``"last"``. ``temperature`` only applies to kd_kl, soft_ce and token_kd. ``params`` are
    the loss's extra keyword parameters (``positions`` for token_kd, ``head_reduce`` for the
    attention losses). An empty ``name`` is filled in by :func:`name_terms`.
    """

    loss: str
    weight: float = 1.0
    student: str = "logits"
    teacher: str = "logits"
    layers: list[tuple[int, int]] | str | None = None
    projection: bool | str = False
    temperature: float = 1.0
    params: dict = field(default_factory=dict)
    name: str = ""

    def __post_init__(self) -> None:
        cls = LOSSES.get(self.loss)
        if cls is not None and "logits" not in cls.features:
            if self.student == "logits":
                self.student = cls.features[0]
            if self.teacher == "logits":
                self.teacher = self.student
        if isinstance(self.layers, (list, tuple)):
            pairs = []
            for pair in self.layers:
                if (not isinstance(pair, (list, tuple)) or len(pair) != 2
                        or not all(isinstance(i, int) and not isinstance(i, bool) for i in pair)):
                    raise ValueError(f"{describe(self)}: layers must be a spec "
                                     f"({', '.join(LAYER_SPECS)}) or a list of [student, teacher] "
                                     f"integer pairs, got element {pair!r}")
                pairs.append((int(pair[0]), int(pair[1])))
            self.layers = pairs
        if self.params is None:
            self.params = {}


def describe(term: Term, index: int | None = None) -> str:
    """How error messages name a term: ``term 'kd_kl'`` or ``term #2 (hidden_mse)``."""
    if term.name:
        return f"term {term.name!r}"
    if index is not None:
        return f"term #{index} ({term.loss})"
    return f"term ({term.loss})"


def name_terms(terms: list[Term]) -> list[Term]:
    """Copies of ``terms`` with unique names: an unnamed term takes its loss name, the second
    and later unnamed terms of the same loss get ``_2``, ``_3``... Explicit names must be
    unique and may not contain '.', '[' or ']'."""
    explicit = [t.name for t in terms if t.name]
    for name in explicit:
        if explicit.count(name) > 1:
            raise ValueError(f"term name {name!r} is used by more than one term")
        bad = set(name) & set(".[]")
        if bad:
            raise ValueError(f"term {name!r}: a term name may not contain {''.join(sorted(bad))!r}")
    taken = set(explicit)
    named = []
    for term in terms:
        if not term.name:
            candidate, k = term.loss, 1
            while candidate in taken:
                k += 1
                candidate = f"{term.loss}_{k}"
            term = dataclasses.replace(term, name=candidate)
            taken.add(candidate)
        named.append(term)
    return named


def check_term(term: Term, index: int | None = None) -> None:
    """Checks that need no model config: known loss, features, params, temperature, layers.

    Raises ValueError naming the term.
    """
    who = describe(term, index)
    if term.loss not in LOSSES:
        raise ValueError(f"{who}: unknown loss {term.loss!r}; known losses: "
                         f"{', '.join(sorted(LOSSES))}")
    cls = LOSSES[term.loss]
    if isinstance(term.weight, bool) or not isinstance(term.weight, (int, float)) or term.weight < 0:
        raise ValueError(f"{who}: weight must be a number >= 0, got {term.weight!r}")
    for side in ("student", "teacher"):
        kind = getattr(term, side)
        if kind not in FEATURE_TYPES:
            raise ValueError(f"{who}: unknown {side} feature {kind!r}; known: {', '.join(FEATURE_TYPES)}")
    if cls.needs_teacher and term.student != term.teacher:
        raise ValueError(f"{who}: student feature {term.student!r} and teacher feature "
                         f"{term.teacher!r} must be of the same type")
    if term.student not in cls.features:
        raise ValueError(f"{who}: loss {term.loss!r} compares {' or '.join(cls.features)} "
                         f"features, not {term.student!r}")
    if not isinstance(term.temperature, (int, float)) or isinstance(term.temperature, bool) \
            or term.temperature <= 0:
        raise ValueError(f"{who}: temperature must be a number > 0, got {term.temperature!r}")
    if not cls.uses_temperature and term.temperature != 1.0:
        raise ValueError(f"{who}: loss {term.loss!r} takes no temperature (only "
                         f"{', '.join(sorted(n for n, c in LOSSES.items() if c.uses_temperature))} do)")
    if not isinstance(term.params, dict):
        raise ValueError(f"{who}: params must be a mapping, got {term.params!r}")
    unknown = sorted(set(term.params) - set(cls.params))
    if unknown:
        raise ValueError(f"{who}: unknown parameter(s) {', '.join(unknown)} for loss "
                         f"{term.loss!r}; allowed: {', '.join(cls.params) or 'none'}")
    try:  # the loss checks its parameters' values (e.g. reduction) when it is built
        build_loss(term.loss, term.temperature, **term.params)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{who}: {err}") from None
    if not any(term.projection is p or (isinstance(p, str) and term.projection == p)
               for p in PROJECTIONS):
        raise ValueError(f"{who}: projection must be true, false, per_layer, shared or auto, "
                         f"got {term.projection!r}")
    if term.projection and not cls.projectable:
        raise ValueError(f"{who}: loss {term.loss!r} takes no projection (only "
                         f"{', '.join(sorted(n for n, c in LOSSES.items() if c.projectable))} do)")
    if term.layers is not None and term.student not in INDEXED_TYPES:
        raise ValueError(f"{who}: {term.student!r} features take no layers")
    if isinstance(term.layers, str) and term.layers not in LAYER_SPECS:
        raise ValueError(f"{who}: unknown layers spec {term.layers!r}; known: "
                         f"{', '.join(LAYER_SPECS)} or a list of [student, teacher] pairs")
    if isinstance(term.layers, list) and not term.layers:
        raise ValueError(f"{who}: layers is an empty list")


def resolve_layers(spec: str | list | None, student_layers: int, teacher_layers: int,
                   kept: list[int] | None = None, *, feature: str = "hidden") -> list[tuple[int, int]]:
    """Turn a layer spec into (student, teacher) index pairs for ``feature``.

    ``student_layers`` / ``teacher_layers`` are the transformer layer counts M and N;
    ``kept`` are the 0-based teacher layer indices the student builder copied (student layer
    j, 1-based, was copied from teacher layer ``kept[j-1]``), needed by ``"copied"``. The
    result is in the index space of ``feature`` (see the module docstring); an explicit list
    is returned as tuples, negative indices counted from the end of the index space.
    ``None`` means ``"last"``.
    """
    if feature not in INDEXED_TYPES:
        raise ValueError(f"feature {feature!r} has no layers")
    if spec is None:
        spec = "last"
    m, n = int(student_layers), int(teacher_layers)
    if not isinstance(spec, str):
        extra = 0 if feature in LAYER_TYPES else 1  # hidden/cls: index 0 is the embedding output
        return [(int(s) + (m + extra if int(s) < 0 else 0), int(t) + (n + extra if int(t) < 0 else 0))
                for s, t in spec]
    if m < 1 or n < 1:
        raise ValueError(f"layer counts must be >= 1, got student {m}, teacher {n}")
    if spec in ("uniform", "top", "bottom", "skip", "last_k", "all_plus_embeddings") and n < m:
        raise ValueError(f"layers {spec!r}: the teacher ({n} layers) must be at least as deep "
                         f"as the student ({m} layers)")
    if spec == "last":
        pairs = [(m, n)]
    elif spec == "copied":
        if kept is None:
            raise ValueError("layers 'copied' needs the teacher layers the student was built "
                             "from (kept), which only a student built from the teacher has")
        if len(kept) != m:
            raise ValueError(f"layers 'copied': kept lists {len(kept)} teacher layers but the "
                             f"student has {m}")
        bad = [k for k in kept if not 0 <= int(k) < n]
        if bad:
            raise ValueError(f"layers 'copied': kept teacher layers {bad} out of range 0..{n - 1}")
        pairs = [(j, int(kept[j - 1]) + 1) for j in range(1, m + 1)]
    elif spec in ("uniform", "all_plus_embeddings"):
        pairs = [(j, (j * n) // m) for j in range(1, m + 1)]
    elif spec == "repeat":
        pairs = [(j, -(-j * n // m)) for j in range(1, m + 1)]
    elif spec == "top":
        pairs = [(j, n - m + j) for j in range(1, m + 1)]
    elif spec == "bottom":
        pairs = [(j, j) for j in range(1, m + 1)]
    elif spec in ("skip", "last_k"):
        if m < 2:
            raise ValueError(f"layers {spec!r} matches the student's intermediate layers "
                             "1..M-1; a 1-layer student has none")
        if spec == "skip":
            pairs = [(j, (j * n) // m) for j in range(1, m)]
        else:
            pairs = [(j, n - m + j) for j in range(1, m)]
    else:
        raise ValueError(f"unknown layers spec {spec!r}; known: {', '.join(LAYER_SPECS)}")
    if feature in LAYER_TYPES:
        if spec == "all_plus_embeddings":
            raise ValueError("layers 'all_plus_embeddings' is for hidden/cls features; "
                             f"{feature} has no embedding entry")
        return [(s - 1, t - 1) for s, t in pairs]
    if spec == "all_plus_embeddings":
        pairs = [(0, 0)] + pairs
    return pairs


def resolve_term(term: Term, student_layers: int, teacher_layers: int,
                 kept: list[int] | None = None, index: int | None = None) -> Term:
    """A copy of ``term`` whose ``layers`` is a list of pairs (layered features only)."""
    if term.student not in INDEXED_TYPES:
        return dataclasses.replace(term, params=dict(term.params))
    try:
        pairs = resolve_layers(term.layers, student_layers, teacher_layers, kept,
                               feature=term.student)
    except ValueError as err:
        raise ValueError(f"{describe(term, index)}: {err}") from None
    return dataclasses.replace(term, layers=pairs, params=dict(term.params))


def term_pairs(term: Term) -> list[tuple[int, int] | None]:
    """The comparisons a resolved term makes: its layer pairs, ``[(0, 0)]`` for embeddings,
    ``[None]`` for logits."""
    if term.student == "embeddings":
        return [(0, 0)]
    if term.student not in INDEXED_TYPES:
        return [None]
    if term.layers is None or isinstance(term.layers, str):
        raise ValueError(f"{describe(term)}: layers {term.layers!r} is not resolved yet; "
                         "call resolve_term/resolve_layers with the layer counts first")
    return list(term.layers)


def term_keys(term: Term) -> tuple[list[str], list[str]]:
    """(student_keys, teacher_keys): the feature keys of each comparison, aligned by position.

    The teacher list is empty for a loss that needs no teacher (``hard``).
    """
    student_keys, teacher_keys = [], []
    for pair in term_pairs(term):
        if pair is None or term.student == "embeddings":
            student_keys.append(feature_key(term.student))
            teacher_keys.append(feature_key(term.teacher))
        else:
            student_keys.append(feature_key(term.student, pair[0]))
            teacher_keys.append(feature_key(term.teacher, pair[1]))
    cls = LOSSES.get(term.loss)
    if cls is not None and not cls.needs_teacher:
        teacher_keys = []
    return student_keys, teacher_keys


def pair_label(term: Term, pair: tuple[int, int] | None) -> str:
    """The name of one comparison of a term: ``"hidden_mse[2->4]"``, or the term name."""
    return term.name if pair is None else f"{term.name}[{pair[0]}->{pair[1]}]"
