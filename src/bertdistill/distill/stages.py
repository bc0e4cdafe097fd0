"""Stages and layer-wise strategies: a recipe run as a sequence of distillations.

A recipe may list ``stages`` (each a subset of its terms, with its own training overrides)
or name a ``strategy`` that derives the stages from its terms:

``all_at_once``                  every term in one run (the default, one stage)
``intermediate_then_prediction`` stage 1: the intermediate terms (every term not on
                                 logits: embeddings, attention, hidden states, [CLS]);
                                 stage 2: the prediction terms (logits), from the
                                 stage-1 student (TinyBERT's two task stages; both
                                 read the augmented transfer set)
``progressive``                  one stage per student layer i = 1..M: the intermediate
                                 terms' pairs whose *student* layer is i (embedding pairs go
                                 with layer 1), with the embeddings and layers 1..i-1 frozen;
                                 then the prediction stage with every weight trainable
                                 (MobileBERT's progressive knowledge transfer). With
                                 ``lower_lr: f`` (0 < f <= 1) the layers below are not frozen
                                 but trained at f × the stage's learning rate (the paper's
                                 softened schedule); ``lower_lr: 0`` (the default) freezes them.
                                 In general distillation a recipe without prediction terms
                                 (no masked-LM head) ends with the last layer stage

YAML::

    strategy: intermediate_then_prediction          # or a mapping:
    strategy: {name: progressive, intermediate: {epochs: 1}, prediction: {epochs: 2}}
    strategy: {name: progressive, lower_lr: 0.1}   # lower layers at 0.1 × lr, not frozen
    stages:                                         # or explicit stages (not with strategy)
      - {name: intermediate, terms: [embedding_mse, attention_mse, hidden_mse],
         transfer: true, training: {epochs: 3}}
      - {name: prediction, terms: [soft_ce], transfer: true, training: {epochs: 2}}

``transfer: true`` marks a stage that reads the augmented transfer set when one is given
(``transfer_data``, see :mod:`bertdistill.pipelines.stages`); ``training`` overrides the
recipe's training keys for that stage.
A student layer is numbered 1..M; a pair's student layer is its hidden/[CLS] index
(0 = embeddings, counted as layer 1's stage) or its attention index + 1.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from bertdistill.distill.features import LAYER_TYPES
from bertdistill.distill.terms import Term, resolve_layers

STRATEGIES = ("all_at_once", "intermediate_then_prediction", "progressive")
STAGE_KEYS = ("name", "terms", "training", "transfer")
STRATEGY_KEYS = ("name", "intermediate", "prediction", "lower_lr")


@dataclass
class Stage:
    """One run of a staged distillation: which terms, which training overrides.

    ``layer`` (progressive stages only) restricts the intermediate terms to pairs of that
    student layer and freezes the embeddings and the layers below it, or, with ``lower_lr``
    > 0, trains them at ``lower_lr`` × the learning rate.
    """

    name: str
    terms: list[str]
    training: dict = field(default_factory=dict)
    transfer: bool = False
    layer: int | None = None
    lower_lr: float = 0.0


def check_mapping(value: Any, allowed: tuple[str, ...], label: str, what: str) -> dict:
    """``value`` as a dict whose keys are all in ``allowed``; ValueError naming ``label`` else."""
    if not isinstance(value, dict):
        raise ValueError(f"{label}: {what} must be a mapping with keys {', '.join(allowed)}")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ValueError(f"{label}: unknown key(s) {', '.join(map(str, unknown))}; allowed: "
                         f"{', '.join(allowed)}")
    return value


def is_prediction(term: Term) -> bool:
    """A prediction-layer term compares logits (KD, soft CE, logits MSE, the hard loss)."""
    return term.student == "logits"


def parse_stages(raw: Any, terms: list[Term], where: str) -> list[Stage]:
    """Validate a YAML ``stages`` list against the recipe's (named) terms.

    Raises ValueError naming the stage and the unknown term or key, before any model loads.
    """
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"{where}: stages must be a non-empty list of mappings")
    names = [t.name for t in terms]
    stages, seen = [], set()
    for i, item in enumerate(raw):
        label = f"{where}: stages[{i}]"
        check_mapping(item, STAGE_KEYS, label, "a stage")
        name = item.get("name") or f"stage{i + 1}"
        if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"{label}: name must be letters, digits, '_' or '-', got {name!r}")
        if name in seen:
            raise ValueError(f"{label}: stage name {name!r} is used twice")
        seen.add(name)
        chosen = item.get("terms")
        if not isinstance(chosen, list) or not chosen or not all(isinstance(t, str) for t in chosen):
            raise ValueError(f"{label} ({name}): terms must be a non-empty list of term names")
        for term_name in chosen:
            if term_name not in names:
                raise ValueError(f"{label} ({name}): unknown term {term_name!r}; the recipe's "
                                 f"terms are: {', '.join(names)}")
        if not any(t.weight for t in terms if t.name in chosen):
            raise ValueError(f"{label} ({name}): every term of the stage has weight 0")
        training = item.get("training") or {}
        if not isinstance(training, dict):
            raise ValueError(f"{label} ({name}): training must be a mapping")
        transfer = item.get("transfer", False)
        if not isinstance(transfer, bool):
            raise ValueError(f"{label} ({name}): transfer must be true or false")
        stages.append(Stage(name=name, terms=list(chosen), training=dict(training),
                            transfer=transfer))
    return stages


def parse_strategy(raw: Any, where: str) -> tuple[str, dict, dict]:
    """(name, intermediate training overrides, prediction training overrides)."""
    if raw is None:
        return "all_at_once", {}, {}
    if isinstance(raw, str):
        raw = {"name": raw}
    check_mapping(raw, STRATEGY_KEYS, f"{where}: strategy",
                  f"strategy (one of {', '.join(STRATEGIES)} or a mapping)")
    name = raw.get("name")
    if name not in STRATEGIES:
        raise ValueError(f"{where}: unknown strategy {name!r}; known: {', '.join(STRATEGIES)}")
    strategy_lower_lr(raw, where)
    parts = []
    for key in ("intermediate", "prediction"):
        value = raw.get(key) or {}
        if not isinstance(value, dict):
            raise ValueError(f"{where}: strategy.{key} must be a mapping of training keys")
        parts.append(dict(value))
    return name, parts[0], parts[1]


def strategy_lower_lr(raw: Any, where: str) -> float:
    """A strategy's ``lower_lr`` (0 when unset): the learning-rate factor of the layers below
    a progressive stage's own, 0 = frozen. ValueError naming the recipe when out of [0, 1]."""
    if not isinstance(raw, dict) or raw.get("lower_lr") is None:
        return 0.0
    value = raw["lower_lr"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{where}: strategy.lower_lr must be a number in [0, 1] (0 freezes the layers "
                         f"below), got {value!r}")
    if raw.get("name") != "progressive":
        raise ValueError(f"{where}: strategy.lower_lr only applies to the 'progressive' strategy")
    return float(value)


def strategy_stages(strategy: str, terms: list[Term], num_student_layers: int | None = None, *,
                    intermediate: dict | None = None, prediction: dict | None = None,
                    where: str = "recipe", lower_lr: float = 0.0,
                    require_prediction: bool = True) -> list[Stage]:
    """The stages a strategy makes of ``terms`` (named; weight-0 terms are left out).

    ``progressive`` needs the student's layer count. A strategy other than ``all_at_once``
    on a recipe without intermediate (or without prediction) terms is refused; with
    ``require_prediction=False`` (general distillation from an encoder without a masked-LM
    head) a recipe without prediction terms ends with its last intermediate stage.
    """
    live = [t for t in terms if t.weight]
    inter = [t.name for t in live if not is_prediction(t)]
    pred = [t.name for t in live if is_prediction(t)]
    if strategy == "all_at_once":
        return [Stage(name="all", terms=[t.name for t in live], transfer=bool(inter))]
    if strategy not in STRATEGIES:
        raise ValueError(f"{where}: unknown strategy {strategy!r}; known: {', '.join(STRATEGIES)}")
    if not inter or (not pred and require_prediction):
        raise ValueError(f"{where}: strategy {strategy!r} needs intermediate terms (on hidden "
                         "states, attention, [CLS] or embeddings) and prediction terms (on logits); "
                         f"the recipe has intermediate: {', '.join(inter) or 'none'}, prediction: "
                         f"{', '.join(pred) or 'none'}")
    last = [Stage(name="prediction", terms=pred, training=dict(prediction or {}))] if pred else []
    if strategy == "intermediate_then_prediction":
        return [Stage(name="intermediate", terms=inter, training=dict(intermediate or {}),
                      transfer=True)] + [dataclasses.replace(s, transfer=True) for s in last]
    if not num_student_layers or num_student_layers < 1:
        raise ValueError(f"{where}: strategy 'progressive' needs the student's layer count")
    layers = [Stage(name=f"layer{i}", terms=inter, training=dict(intermediate or {}),
                    transfer=True, layer=i, lower_lr=lower_lr) for i in range(1, num_student_layers + 1)]
    return layers + last


def pair_student_layer(term: Term, pair: tuple[int, int]) -> int:
    """The student layer (1..M) a resolved pair trains; embedding pairs count as layer 1."""
    if term.student in LAYER_TYPES:
        return pair[0] + 1
    return max(1, pair[0])


def restrict_to_layer(terms: list[Term], layer: int, student_layers: int, teacher_layers: int,
                      kept: list[int] | None = None) -> list[Term]:
    """The layered terms with only the pairs of student ``layer`` (explicit pair lists);
    terms without pairs there are dropped (weight-0), embedding terms stay in layer 1."""
    out = []
    for term in terms:
        if term.student == "embeddings":
            out.append(term if layer == 1 else dataclasses.replace(term, weight=0.0))
            continue
        if term.student == "logits":
            out.append(term)
            continue
        pairs = resolve_layers(term.layers, student_layers, teacher_layers, kept,
                               feature=term.student)
        mine = [p for p in pairs if pair_student_layer(term, p) == layer]
        if mine:
            out.append(dataclasses.replace(term, layers=[list(p) for p in mine]))
        else:
            out.append(dataclasses.replace(term, weight=0.0))
    return out
