"""Staged distillation on top of :class:`DistillRecipe` (TinyBERT's two task stages and the
layer-wise strategies of :mod:`bertdistill.distill.stages`).

Each stage is an ordinary distillation run in its own sub-folder ``NN_<stage name>/``
(its ``recipe.yaml``, ``log.jsonl``, checkpoints and best ``student/``), so each stage is
logged and resumable by the engine; a finished stage leaves ``final/`` (the student as the
stage ended), ``connectors.safetensors`` (learned projections, carried to the next stage
when their names and shapes match) and ``stage.json``, and is skipped when the command is
run again. Stage k > 1 starts from stage k-1's ``final/`` student. The last stage is
evaluated like a plain run (teacher and student on dev) and its ``results.json`` is copied
to the top folder together with a summary of every stage.

The loop itself (:func:`run_stage_sequence`: sub-folders, skipping finished stages, the
records), the stage recipes, :func:`hold_lower_layers` and the connectors are shared with staged
general distillation (:mod:`bertdistill.pipelines.general_stages`).

Before any model is loaded, :func:`preflight` checks every stage's terms against the
teacher's and the student's configs (head counts, layer ranges, widths), so bad input is
refused naming the term.

The augmented transfer set (``transfer_data``) is read by the stages marked ``transfer``
(TinyBERT's ``--aug_train``): a JSON-lines file written by ``bertdistill augment`` replaces
such a stage's train examples (the copies are labelled by the teacher) while its dev
examples stay the task's own; a folder (or file) in the task's own layout is read as that
stage's whole data, its dev split included. A recipe's ``augment:`` block applies to every
stage.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import torch
import yaml
from safetensors.torch import load_file, save_file

from ..data.tasks import TASKS
from ..distill.cache import check_cache_attention
from ..distill.distiller import Distiller
from ..distill.recipe import Recipe, load_recipe
from ..distill.stages import Stage, parse_strategy, restrict_to_layer, strategy_lower_lr, strategy_stages
from ..models.loading import hub_errors, pretrained_kwargs, resolve_model, save_model
from ..students.from_config import shape_sizes
from ..students.layers import select_layers
from ..training.engine import LR_SCALE_ATTR
from ..students.mobilebert import is_mobilebert, mobilebert_sizes, shape_summary
from .distill import DistillConfig, DistillRecipe
from .plan import report
from .runfolder import check_stage_run, lock_run_folder

log = logging.getLogger(__name__)

CONNECTORS_FILE = "connectors.safetensors"
STAGE_FILE = "stage.json"
INTERMEDIATE_EVAL_EXAMPLES = 256  # intermediate stages: dev accuracy is only a progress signal


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


def model_config(path: str):
    from transformers import AutoConfig

    with hub_errors(path):
        return AutoConfig.from_pretrained(resolve_model(path), **pretrained_kwargs())


def student_shape(config: DistillConfig, recipe: Recipe, teacher_config) -> tuple[SimpleNamespace, list[int] | None]:
    """(the student's sizes as the distiller reads them, the teacher layers it copies or None),
    found from configs alone: no model is loaded."""
    if config.student:
        c = model_config(config.student)
        sizes = {"hidden_size": c.hidden_size, "num_hidden_layers": c.num_hidden_layers,
                 "num_attention_heads": c.num_attention_heads}
        return SimpleNamespace(**sizes, num_labels=None), None
    shape = config.student_config or recipe.student.get("shape")
    if shape and is_mobilebert(shape):
        layers, hidden, heads = shape_summary(mobilebert_sizes(shape, teacher_config.hidden_size))
        return SimpleNamespace(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                               num_labels=None), None
    if shape:
        sizes = shape_sizes(shape)
        hidden = int(sizes.get("hidden_size", 768))
        return SimpleNamespace(hidden_size=hidden, num_hidden_layers=int(sizes.get("num_hidden_layers", 12)),
                               num_attention_heads=int(sizes.get("num_attention_heads", max(1, hidden // 64))),
                               num_labels=None), None
    layers = config.student_layers if config.student_layers is not None else recipe.student.get("layers", "every_other")
    kept = select_layers(layers, teacher_config.num_hidden_layers, layers if isinstance(layers, int) else None)
    return SimpleNamespace(hidden_size=teacher_config.hidden_size, num_hidden_layers=len(kept),
                           num_attention_heads=teacher_config.num_attention_heads, num_labels=None), kept


def plan_stages(recipe: Recipe, num_student_layers: int, teacher_layers: int,
                kept: list[int] | None, *, require_prediction: bool = True) -> list[tuple[Stage, list]]:
    """The stages to run and each one's terms (progressive: restricted to its layer).
    ``require_prediction=False``: a strategy may end without a prediction stage (general
    distillation from an encoder without a masked-LM head)."""
    where = recipe.source or recipe.name
    if recipe.stages is not None:
        stages = recipe.stages
    else:
        name, inter, pred = parse_strategy(recipe.strategy, where)
        stages = strategy_stages(name, recipe.terms, num_student_layers, intermediate=inter,
                                 prediction=pred, where=where,
                                 lower_lr=strategy_lower_lr(recipe.strategy, where),
                                 require_prediction=require_prediction)
    planned = []
    for stage in stages:
        terms = [t for t in recipe.terms if t.name in stage.terms]
        if stage.layer is not None:
            terms = restrict_to_layer(terms, stage.layer, num_student_layers, teacher_layers, kept)
            if not any(t.weight for t in terms):
                continue  # e.g. PKD's "skip" pairs leave the last layer to the prediction stage
        planned.append((stage, terms))
    return planned


def preflight(config: DistillConfig, recipe: Recipe) -> list[tuple[Stage, list]]:
    """Check every stage's terms against the models' configs before any weights load;
    returns the planned stages. Raises ValueError naming the stage and the term."""
    teacher_config = model_config(config.teacher)
    student, kept = student_shape(config, recipe, teacher_config)
    task = TASKS.get((config.task or "").strip().lower())
    kind = task.spec.kind if task is not None and task.spec is not None else None

    def check(terms: list, where: str) -> None:
        try:
            distiller = Distiller(terms, student_config=student, teacher_config=teacher_config, kept=kept,
                                  task_kind=kind or "classification")
        except ValueError as err:
            if kind is None and "task" in str(err):
                return  # a generic format: its kind is only known from the data
            raise ValueError(f"{where}: {err}") from None
        if config.cache_teacher:  # e.g. --cache-attention sdpa with attention maps cached
            check_cache_attention(config.cache_attention, distiller.teacher_keys)

    check(recipe.terms, f"recipe {recipe.source or recipe.name}")
    planned = plan_stages(recipe, student.num_hidden_layers, teacher_config.num_hidden_layers, kept)
    for stage, terms in planned:
        check(terms, f"stage {stage.name!r}")
    return planned


def encoder_parts(model: torch.nn.Module) -> tuple[torch.nn.Module, list[torch.nn.Module]]:
    """(embeddings, transformer layers in order) of a BERT-like or DistilBERT model."""
    base = model.base_model
    encoder = getattr(base, "encoder", None) or getattr(base, "transformer", None)
    if encoder is None or not hasattr(encoder, "layer"):
        raise ValueError(f"cannot find the transformer layers of {type(model).__name__}")
    return base.embeddings, list(encoder.layer)


def hold_lower_layers(model: torch.nn.Module, stage: Stage) -> None:
    """A layer stage (``stage.layer`` = j > 1): the embeddings and layers 1..j-1 frozen, or with
    ``stage.lower_lr`` > 0 marked to train at ``lower_lr`` × the learning rate (their own
    optimizer group, ``training.engine.param_groups``). Nothing changes for other stages."""
    if stage.layer is None or stage.layer <= 1:
        return
    embeddings, layers = encoder_parts(model)
    for part in [embeddings, *layers[: stage.layer - 1]]:
        if stage.lower_lr > 0:
            for param in part.parameters():
                setattr(param, LR_SCALE_ATTR, stage.lower_lr)
        else:
            part.requires_grad_(False)


def load_connectors(distiller: Distiller, path: Path | None) -> None:
    """The learned projections a previous stage saved, where their names and shapes match."""
    if path is None or not path.exists():
        return
    saved = load_file(str(path))
    own = distiller.connectors.state_dict()
    usable = {k: v for k, v in saved.items() if k in own and own[k].shape == v.shape}
    distiller.connectors.load_state_dict(usable, strict=False)


def save_connectors(distiller: Distiller, folder: Path) -> None:
    """The distiller's learned projections to ``folder/connectors.safetensors`` (atomically)."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in distiller.connectors.state_dict().items()}
    tmp = folder / f".{CONNECTORS_FILE}.tmp"
    save_file(tensors, str(tmp))
    os.replace(tmp, folder / CONNECTORS_FILE)


class StageRecipe(DistillRecipe):
    """One stage: a DistillRecipe that may freeze the layers below its own, picks up the
    previous stage's connectors, and leaves its final student for the next stage."""

    def __init__(self, config: DistillConfig, stage: Stage, connectors: Path | None = None):
        super().__init__(config)
        self.stage = stage
        self.connectors_file = connectors

    def setup(self) -> None:
        super().setup()
        load_connectors(self.distiller, self.connectors_file)
        hold_lower_layers(self.student, self.stage)

    def finish(self) -> None:
        """Save the student as the stage ended and the learned connectors."""
        save_model(self.student, self.tokenizer, self.output / "final", task=self.task)
        save_connectors(self.distiller, self.output)

    def train(self) -> dict:
        summary = super().train()
        self.finish()
        return summary


def is_transfer_file(transfer_data: str | None) -> bool:
    """Whether ``transfer_data`` is a JSON-lines transfer set (a file written by
    ``bertdistill augment``) rather than data in the task's own layout (a folder)."""
    return transfer_data is not None and Path(transfer_data).suffix == ".jsonl" and Path(transfer_data).is_file()


def check_transfer_data(transfer_data: str | None, recipe: Recipe) -> None:
    """Refuse, before any model is read, a transfer set that does not exist or a recipe with
    no stage that would read it."""
    if transfer_data is None:
        return
    if not Path(transfer_data).exists():
        raise ValueError(f"transfer_data: {transfer_data} not found (write a transfer set with "
                         "`bertdistill augment --output FILE.jsonl`)")
    marked = (recipe.stages is not None and any(s.transfer for s in recipe.stages)) or (
        recipe.stages is None and parse_strategy(recipe.strategy, recipe.name)[0] != "all_at_once")
    if not (is_staged(recipe) and marked):
        raise ValueError(f"transfer_data: recipe {recipe.name} has no stage marked 'transfer: true' to "
                         f"read it; give the transfer set to this recipe as an augment: {{file: "
                         f"{transfer_data}}} block instead")


def stage_sources(stage: Stage, data: str | None, transfer_data: str | None) -> tuple[str | None, dict | None]:
    """(the stage's data, the ``augment:`` block that replaces its train examples, or None)."""
    if not (stage.transfer and transfer_data):
        return data, None
    if is_transfer_file(transfer_data):
        return data, {"file": str(Path(transfer_data).resolve())}
    return transfer_data, None


def stage_recipe_data(recipe: Recipe, stage: Stage, terms: list, augment: dict | None = None) -> dict:
    """A stage's own recipe, as the dict its ``recipe.yaml`` holds: the stage's terms (layer
    pairs explicit), the recipe's training with the stage's overrides."""
    data = recipe.to_dict()
    if augment is not None:
        data["augment"] = augment
    data["name"] = f"{recipe.name}.{stage.name}"
    data["terms"] = [t for t in data["terms"] if t["name"] in {x.name for x in terms}]
    by_name = {t.name: t for t in terms}
    for t in data["terms"]:
        mine = by_name[t["name"]]
        t["weight"] = mine.weight
        t["layers"] = [list(p) for p in mine.layers] if isinstance(mine.layers, list) else mine.layers
    data["training"] = {**data["training"], **stage.training}
    return data


@dataclasses.dataclass
class StageSlot:
    """One stage to run, as :func:`run_stage_sequence` hands it over."""

    index: int               # 1-based
    count: int               # stages in all
    stage: Stage
    terms: list              # the stage's terms (progressive: restricted to its layer)
    folder: Path             # its own sub-folder, NN_<stage name>/
    previous: Path | None    # the stage before's folder (its final/ student, connectors), None for the first

    @property
    def last(self) -> bool:
        return self.index == self.count


def write_stage_recipe(folder: Path, data: dict) -> Path:
    """The stage's recipe as ``folder/recipe.yaml`` (atomically); returns its path."""
    recipe_file = folder / "recipe.yaml"
    tmp = folder / ".recipe.yaml.tmp"
    tmp.write_text(yaml.safe_dump(data, sort_keys=False))
    os.replace(tmp, recipe_file)
    return recipe_file


def run_stage_sequence(out: Path, planned: list[tuple[Stage, list]],
                       run_one: Callable[[StageSlot], dict]) -> tuple[list[dict], Path | None]:
    """Run the planned stages one after the other, each in ``out/NN_<name>/``, the loop shared by
    task and general distillation. A stage whose ``stage.json`` exists finished earlier and is
    skipped; ``run_one`` runs any other (a killed stage resumes from its own checkpoint) and
    returns what its record adds to the stage, layer, terms and seconds. Returns (every stage's
    record, the last stage's folder)."""
    previous: Path | None = None
    records = []
    for k, (stage, terms) in enumerate(planned, 1):
        folder = out / f"{k:02d}_{stage.name}"
        if (folder / STAGE_FILE).exists():  # finished earlier: resume after it
            records.append(json.loads((folder / STAGE_FILE).read_text()))
            previous = folder
            log.info("stage %s already done, skipped", folder.name)
            continue
        folder.mkdir(parents=True, exist_ok=True)
        live = [t.name for t in terms if t.weight]
        print(f"== stage {k}/{len(planned)}: {stage.name} (terms: {', '.join(live)})")
        start = time.perf_counter()
        extra = run_one(StageSlot(k, len(planned), stage, terms, folder, previous))
        record = {"stage": stage.name, "folder": folder.name, "terms": live, "layer": stage.layer,
                  "seconds": round(time.perf_counter() - start, 1), **extra}
        _write_json(folder / STAGE_FILE, record)
        records.append(record)
        previous = folder
    return records, previous


def run_staged(config: DistillConfig, transfer_data: str | None = None, *, latency_runs: int = 30) -> dict:
    """Run a recipe's stages one after the other (see the module docstring); at the end the same
    summary as a one-stage run (retention, sizes, batch-1 latency; ``latency_runs`` 0 skips timing)."""
    recipe = load_recipe(config.recipe).with_overrides(temperature=config.temperature, weights=config.weights)
    check_transfer_data(transfer_data, recipe)
    planned = preflight(config, recipe)
    out = Path(config.output)
    out.mkdir(parents=True, exist_ok=True)
    lock = lock_run_folder(out)  # the top folder, held until every stage is done
    result, final_runner = {}, None

    def run_one(slot: StageSlot) -> dict:
        nonlocal result, final_runner
        stage, folder, previous = slot.stage, slot.folder, slot.previous
        stage_data, augment = stage_sources(stage, config.data, transfer_data)
        stage_recipe = stage_recipe_data(recipe, stage, slot.terms, augment)
        check_stage_run(folder, config, stage_recipe, folder / "recipe.yaml")  # before recipe.yaml is rewritten
        recipe_file = write_stage_recipe(folder, stage_recipe)
        stage_config = dataclasses.replace(
            config, output=str(folder), recipe=str(recipe_file), temperature=None, weights=None,
            data=stage_data,
            max_eval_examples=config.max_eval_examples if slot.last else min(
                config.max_eval_examples or INTERMEDIATE_EVAL_EXAMPLES, INTERMEDIATE_EVAL_EXAMPLES),
        )
        if previous is not None:
            stage_config = dataclasses.replace(stage_config, student=str(previous / "final"), student_config=None)
        runner = StageRecipe(stage_config, stage, previous / CONNECTORS_FILE if previous else None)
        if slot.last:
            result, final_runner = runner.run(), runner
        else:
            runner.setup()
            runner.train()
        return {"transfer": bool(stage.transfer and transfer_data), "best_dev": runner.loop.state.best_metric,
                "steps": runner.loop.state.step, "train_examples": len(runner.train_features)}

    records, previous = run_stage_sequence(out, planned, run_one)
    if not result and previous is not None and (previous / "results.json").exists():
        result = json.loads((previous / "results.json").read_text())
    result = {**result, "stages": records, "strategy": recipe.strategy,
              "student_dir": str(previous / "student") if previous else None}
    _write_json(out / "results.json", result)
    if final_runner is not None and final_runner.accelerator.is_main_process:
        result = report(final_runner, result, latency_runs=latency_runs, output=out)
    if lock is not None:
        lock.release()
    return result


def is_staged(recipe: Recipe) -> bool:
    """Whether a recipe runs as more than one stage."""
    if recipe.stages is not None:
        return len(recipe.stages) > 1 or bool(recipe.stages[0].training)
    return parse_strategy(recipe.strategy, recipe.name)[0] != "all_at_once"
