"""YAML recipes: one file = one distillation experiment.

Schema (every top-level key but ``terms`` is optional)::

    name: kd                        # default: the file name without .yaml
    description: Plain Hinton KD.
    student:
      arch: same                    # same (a smaller copy of the teacher) | distilbert
      layers: every_other           # every_other | skip | last | first (the presets of
                                    # bertdistill.students.layers) | [0, 2, 4] (teacher
                                    # layers, 0-based, increasing) | 6 (a layer count)
      shape: tinybert4              # optional: a randomly initialised student of this shape
                                    # (tinybert4, <L>x<H> such as 3x192, or a mapping of sizes)
    terms:                          # a list of Term fields (see bertdistill.distill.terms)
      - loss: kd_kl                 # required: a name in LOSSES
        weight: 0.5                 # default 1.0; 0 switches a term off
        temperature: 2.0            # kd_kl, soft_ce, token_kd only; default training.temperature or 1
      - loss: hidden_mse
        student: hidden             # logits | hidden | attention | cls | embeddings | qkv
        teacher: hidden             # (default: the loss's own feature type)
        layers: copied              # a spec (last, copied, uniform, skip, last_k,
                                    # all_plus_embeddings) or [[1, 2], [2, 4]]
        projection: false           # learned Linear(student width -> teacher width): true /
                                    # per_layer (one per pair), shared (one W_h), auto
        params: {}                  # loss parameters (token_kd: positions; attention: head_reduce)
        name: hidden                # default: the loss name (unique; used by weight overrides)
    training:                       # see TRAINING_SCHEMA; missing keys take TRAINING_DEFAULTS
      epochs: 3
      lr: 5.0e-5
    augment: {method: tang, copies: 20}   # optional augmented transfer set (bertdistill.augment.spec)

``student.arch: bilstm`` takes its own keys (BILSTM_KEYS: embeddings, freeze_embeddings,
embedding_dim, hidden_size, mlp_size, dropout, min_freq, vector_vocab); see bertdistill.pipelines.bilstm.

Every error raised while loading is a :class:`RecipeError` (a ValueError) whose message
names the file and, for a term, its index and loss/name.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.resources
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bertdistill.distill.losses import LOSSES
from bertdistill.distill.stages import Stage, parse_stages, parse_strategy
from bertdistill.distill.terms import TERM_FIELDS, Term, check_term, name_terms
from bertdistill.students.from_config import shape_sizes
from bertdistill.students.layers import PRESETS as STUDENT_LAYER_CHOICES

TOP_KEYS = ("name", "description", "student", "terms", "training", "augment", "stages", "strategy")
#: the bilstm student's own options (see bertdistill.students.bilstm)
BILSTM_KEYS = ("embeddings", "freeze_embeddings", "embedding_dim", "hidden_size", "mlp_size", "dropout", "min_freq",
               "vector_vocab")
STUDENT_KEYS = ("arch", "layers", "shape", *BILSTM_KEYS)
STUDENT_ARCHS = ("same", "distilbert", "bilstm")
STUDENT_DEFAULTS = {"arch": "same", "layers": "every_other"}

#: training key -> (kind, bound, may be null). kind: "int" / "float" with bound = the
#: smallest allowed value (">x" for strictly greater), "bool", or a tuple of allowed strings.
#: The keys follow the engine's TrainConfig, plus max_length, eval_batch_size, temperature.
TRAINING_SCHEMA: dict[str, tuple[Any, str | None, bool]] = {
    "epochs": ("float", ">0", False),
    "max_steps": ("int", "1", True),
    "lr": ("float", ">0", False),
    "batch_size": ("int", "1", False),
    "eval_batch_size": ("int", "1", False),
    "warmup_ratio": ("float", "0", False),
    "weight_decay": ("float", "0", False),
    "max_grad_norm": ("float", ">0", True),
    "grad_accum": ("int", "1", False),
    "max_length": ("int", "1", False),
    "doc_stride": ("int", "1", False),  # question answering's windows (data.qa_features.QaOptions)
    "max_question_length": ("int", "1", False),
    "temperature": ("float", ">0", False),
    "seed": ("int", None, False),
    "eval_every": ("int", "1", True),
    "save_every": ("int", "1", True),
    "log_every": ("int", "1", False),
    "mixed_precision": (("no", "bf16", "fp16"), None, False),
    "group_by_length": ("bool", None, False),
}
TRAINING_DEFAULTS: dict[str, Any] = {
    "epochs": 3.0,
    "lr": 5e-5,
    "batch_size": 32,
    "warmup_ratio": 0.1,
    "weight_decay": 0.01,
    "max_grad_norm": 1.0,
    "grad_accum": 1,
    "max_length": 128,
    "seed": 42,
}


class RecipeError(ValueError):
    """A recipe that cannot be used; the message names the file and the offending part."""


def _check_training_value(key: str, value: Any, where: str) -> Any:
    if key not in TRAINING_SCHEMA:
        raise RecipeError(f"{where}: unknown training key {key!r}; allowed: "
                          f"{', '.join(TRAINING_SCHEMA)}")
    kind, bound, nullable = TRAINING_SCHEMA[key]
    if value is None:
        if nullable:
            return None
        raise RecipeError(f"{where}: training.{key} may not be null")
    if isinstance(kind, tuple):
        if value not in kind:
            raise RecipeError(f"{where}: training.{key} must be one of {', '.join(kind)}, "
                              f"got {value!r}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise RecipeError(f"{where}: training.{key} must be true or false, got {value!r}")
        return value
    if kind == "float" and isinstance(value, str):
        try:  # YAML 1.1 reads "5e-5" (no dot) as a string
            value = float(value)
        except ValueError:
            raise RecipeError(f"{where}: training.{key} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecipeError(f"{where}: training.{key} must be a number, got {value!r}")
    if kind == "int":
        if value != int(value):
            raise RecipeError(f"{where}: training.{key} must be an integer, got {value!r}")
        value = int(value)
    else:
        value = float(value)
    if bound is not None:
        strict = bound.startswith(">")
        low = float(bound.lstrip(">"))
        if value < low or (strict and value == low):
            raise RecipeError(f"{where}: training.{key} must be {'>' if strict else '>='} "
                              f"{low:g}, got {value!r}")
    if key == "warmup_ratio" and value > 1:
        raise RecipeError(f"{where}: training.warmup_ratio must be <= 1, got {value!r}")
    return value


def _check_student(student: Any, where: str) -> dict:
    if student is None:
        student = {}
    if not isinstance(student, dict):
        raise RecipeError(f"{where}: student must be a mapping with keys {', '.join(STUDENT_KEYS)}")
    unknown = sorted(set(student) - set(STUDENT_KEYS))
    if unknown:
        raise RecipeError(f"{where}: unknown student key(s) {', '.join(unknown)}; allowed: "
                          f"{', '.join(STUDENT_KEYS)}")
    merged = {**STUDENT_DEFAULTS, **student}
    if merged["arch"] != "bilstm" and set(student) & set(BILSTM_KEYS):
        raise RecipeError(f"{where}: student keys {', '.join(sorted(set(student) & set(BILSTM_KEYS)))} "
                          "apply to arch: bilstm only")
    if merged["arch"] not in STUDENT_ARCHS:
        raise RecipeError(f"{where}: student.arch must be one of {', '.join(STUDENT_ARCHS)}, "
                          f"got {merged['arch']!r}")
    layers = merged["layers"]
    ok = (layers in STUDENT_LAYER_CHOICES if isinstance(layers, str)
          else (isinstance(layers, int) and not isinstance(layers, bool) and layers >= 1)
          or (isinstance(layers, list) and bool(layers)
              and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in layers)
              and all(a < b for a, b in zip(layers, layers[1:]))))
    if not ok:
        raise RecipeError(f"{where}: student.layers must be one of "
                          f"{', '.join(STUDENT_LAYER_CHOICES)}, a list of increasing teacher layer "
                          f"indices (0-based) or a layer count >= 1, got {layers!r}")
    if merged.get("shape") is not None:
        try:
            shape_sizes(merged["shape"])
        except ValueError as err:
            raise RecipeError(f"{where}: student.shape: {err}") from None
    return merged


def _term_from_dict(raw: Any, index: int, training: dict, where: str) -> Term:
    label = f"{where}: terms[{index}]"
    if not isinstance(raw, dict):
        raise RecipeError(f"{label}: a term must be a mapping, got {raw!r}")
    if "loss" in raw:
        label += f" ({raw.get('name') or raw['loss']})"
    unknown = sorted(set(raw) - set(TERM_FIELDS))
    if unknown:
        raise RecipeError(f"{label}: unknown key(s) {', '.join(map(str, unknown))}; allowed keys: "
                          f"{', '.join(TERM_FIELDS)}")
    if "loss" not in raw:
        raise RecipeError(f"{label}: missing 'loss'; known losses: {', '.join(sorted(LOSSES))}")
    fields = dict(raw)
    if fields.get("params") is None:
        fields["params"] = {}
    for key in ("weight", "temperature"):
        if isinstance(fields.get(key), str):
            try:
                fields[key] = float(fields[key])
            except ValueError:
                pass  # reported by check_term
    if fields.get("name") is None:
        fields["name"] = ""
    if not isinstance(fields["name"], str):
        raise RecipeError(f"{label}: name must be a string, got {fields['name']!r}")
    cls = LOSSES.get(fields["loss"])
    if "temperature" not in fields and cls is not None and cls.uses_temperature \
            and "temperature" in training:
        fields["temperature"] = training["temperature"]
    try:
        term = Term(**fields)
        check_term(term)
    except ValueError as err:
        raise RecipeError(f"{label}: {err}") from None
    return term


def parse_recipe(data: Any, source: str = "<recipe>", default_name: str = "") -> Recipe:
    """Validate an already-parsed YAML document and build a :class:`Recipe`."""
    where = source
    if not isinstance(data, dict):
        raise RecipeError(f"{where}: a recipe must be a mapping with keys {', '.join(TOP_KEYS)}")
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise RecipeError(f"{where}: unknown top-level key(s) {', '.join(map(str, unknown))}; "
                          f"allowed: {', '.join(TOP_KEYS)}")
    name = data.get("name") or default_name
    if not isinstance(name, str) or not name:
        raise RecipeError(f"{where}: name must be a non-empty string")
    description = data.get("description") or ""
    if not isinstance(description, str):
        raise RecipeError(f"{where}: description must be a string")
    student = _check_student(data.get("student"), where)

    raw_training = data.get("training") or {}
    if not isinstance(raw_training, dict):
        raise RecipeError(f"{where}: training must be a mapping")
    training = dict(TRAINING_DEFAULTS)
    for key, value in raw_training.items():
        training[key] = _check_training_value(key, value, where)

    raw_terms = data.get("terms")
    if not isinstance(raw_terms, list) or not raw_terms:
        raise RecipeError(f"{where}: terms must be a non-empty list")
    terms = [_term_from_dict(raw, i, training, where) for i, raw in enumerate(raw_terms)]
    try:
        terms = name_terms(terms)
    except ValueError as err:
        raise RecipeError(f"{where}: {err}") from None
    if all(t.weight == 0 for t in terms):
        raise RecipeError(f"{where}: every term has weight 0")
    augment = data.get("augment")
    if augment is not None:
        from bertdistill.augment.spec import check_augment_spec

        try:
            augment = check_augment_spec(augment)
        except ValueError as err:
            raise RecipeError(f"{where}: augment: {err}") from None
    stages, strategy = None, None
    try:  # stages / layer-wise strategy (bertdistill.distill.stages)
        if data.get("stages") is not None and data.get("strategy") is not None:
            raise ValueError(f"{where}: give either stages or strategy, not both")
        if data.get("stages") is not None:
            stages = parse_stages(data["stages"], terms, where)
            for stage in stages:
                for key, value in stage.training.items():
                    stage.training[key] = _check_training_value(key, value, f"{where}: stage {stage.name!r}")
        if data.get("strategy") is not None:
            strategy = data["strategy"]
            _, *parts = parse_strategy(strategy, where)
            for part in parts:
                for key, value in part.items():
                    _check_training_value(key, value, f"{where}: strategy")
    except ValueError as err:
        raise RecipeError(str(err)) from None
    return Recipe(name=name, description=description.strip(), student=student, terms=terms,
                  training=training, source=source, augment=augment, stages=stages, strategy=strategy)


def _shipped_dir():
    return importlib.resources.files("bertdistill").joinpath("recipes")


def list_recipes() -> list[str]:
    """Names of the recipes shipped in ``bertdistill/recipes/``."""
    return sorted(p.name[:-5] for p in _shipped_dir().iterdir() if p.name.endswith(".yaml"))


def load_recipe(name_or_path: str | Path) -> Recipe:
    """Load a recipe by shipped name (``"kd"``, ``"kd.yaml"``) or from a YAML file path."""
    path = Path(name_or_path)
    if path.is_file():
        text, source, stem = path.read_text(encoding="utf-8"), str(path), path.stem
    else:
        name = str(name_or_path)
        stem = name[:-5] if name.endswith(".yaml") else name
        shipped = _shipped_dir().joinpath(f"{stem}.yaml")
        if "/" in name or "\\" in name or not shipped.is_file():
            raise RecipeError(f"no recipe file {str(name_or_path)!r} and no shipped recipe of that "
                              f"name; shipped recipes: {', '.join(list_recipes())}")
        text, source = shipped.read_text(encoding="utf-8"), f"bertdistill/recipes/{stem}.yaml"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise RecipeError(f"{source}: not valid YAML: {err}") from None
    return parse_recipe(data, source, default_name=stem)


@dataclass
class Recipe:
    """A validated distillation experiment (see the module docstring for the YAML schema).

    ``terms`` are named (unique) but not resolved: layer specs are resolved by the
    :class:`~bertdistill.distill.distiller.Distiller` once the models are known.
    ``training`` holds every key of ``TRAINING_DEFAULTS`` plus what the file set.
    """

    name: str
    description: str
    student: dict
    terms: list[Term]
    training: dict
    source: str = ""
    overrides: dict = field(default_factory=dict)
    augment: dict | None = None   # an augmented transfer set (bertdistill.augment.spec)
    stages: list[Stage] | None = None         # explicit stages (see bertdistill.distill.stages)
    strategy: str | dict | None = None        # a layer-wise strategy, as written in the file

    @property
    def term_names(self) -> list[str]:
        return [t.name for t in self.terms]

    def with_overrides(self, temperature: float | None = None, weights: dict[str, float] | None = None,
                       **training: Any) -> Recipe:
        """A copy with CLI overrides applied; ``None`` values mean "not given".

        ``temperature`` sets every term whose loss uses one (kd_kl, soft_ce, token_kd) and
        ``training.temperature``; ``weights`` maps term names to new weights; other keywords
        are training keys (validated as in a file). What was overridden is kept in
        ``overrides``.
        """
        where = f"{self.source or self.name} (overrides)"
        recipe = f"recipe {self.name}"
        new = copy.deepcopy(self)
        applied: dict[str, Any] = {}
        if temperature is not None:
            temperature = _check_training_value("temperature", temperature, f"--temperature ({recipe})")
            new.terms = [dataclasses.replace(t, temperature=temperature)
                         if LOSSES[t.loss].uses_temperature else t for t in new.terms]
            new.training["temperature"] = temperature
            applied["temperature"] = temperature
        if weights:
            names = new.term_names
            unknown = sorted(set(weights) - set(names))
            if unknown:
                raise RecipeError(f"--weight: {recipe} has no term named {', '.join(unknown)}; terms: "
                                  f"{', '.join(names)}")
            replaced = []
            for t in new.terms:
                if t.name in weights:
                    w = weights[t.name]
                    if isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0:
                        raise RecipeError(f"--weight: weight of term {t.name!r} must be a number "
                                          f">= 0, got {w!r}")
                    t = dataclasses.replace(t, weight=float(w))
                replaced.append(t)
            if all(t.weight == 0 for t in replaced):
                raise RecipeError(f"--weight: the weights leave every term at 0 ({recipe})")
            new.terms = replaced
            applied["weights"] = dict(weights)
        for key, value in training.items():
            if value is None:
                continue
            new.training[key] = _check_training_value(key, value, where)
            applied[key] = new.training[key]
        new.overrides = {**self.overrides, **applied}
        return new

    def to_dict(self) -> dict:
        """A plain, YAML/JSON-ready dict (for run records); loads back with :func:`parse_recipe`."""
        terms = []
        for t in self.terms:
            d = dataclasses.asdict(t)
            if isinstance(d["layers"], list):
                d["layers"] = [list(p) for p in d["layers"]]
            terms.append(d)
        out = {"name": self.name, "description": self.description, "student": dict(self.student),
               "terms": terms, "training": dict(self.training)}
        if self.augment is not None:
            out["augment"] = dict(self.augment)
        return out
