"""Staged general distillation: a recipe with a layer-wise ``strategy`` (or ``stages``) run by
``bertdistill general-distill`` on a prepared corpus, raw text and no labels.

MobileBERT's progressive knowledge transfer (``general_mobilebert``): stage *j* trains student
layer *j* on its teacher layer's feature map and attention distributions, with the embeddings
and the layers below frozen (or at ``strategy.lower_lr`` × the learning rate), one stage per
layer. The stage loop, the stage recipes, freezing and the connectors carried from stage to
stage are those of task distillation (:mod:`bertdistill.pipelines.stages`); each stage is one
:class:`~bertdistill.pipelines.general_distill.GeneralDistillRecipe` run in its own sub-folder
``NN_<stage>/`` (recipe, log, checkpoints: a killed stage resumes from its checkpoint), which
ends with ``final/`` (the student as the stage ended) and ``stage.json``; a finished stage is
skipped when the command is run again. Stage *k* > 1 starts from stage *k*-1's ``final/``.

What ends the general stage: the paper follows the layer stages with pre-training
distillation (masked-LM and KD on the teacher's masked-LM logits, every weight trainable).
That stage runs only when the recipe weighs a term on masked-LM logits (``--weight mlm_kd=1``,
which needs a teacher with a masked-LM head); otherwise the run ends with the last layer stage,
as nothing else in the paper's schedule applies to an encoder without a head. Stages that
compare no logits read the text unmasked and build, load and save plain encoders
(``MobileBertModel``); a masked-LM stage loads the encoder into ``*ForMaskedLM`` (new head).
The last stage's student is published as ``OUTPUT/student``, the folder
``bertdistill distill --student`` starts task distillation from.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace

from ..distill.distiller import Distiller
from ..distill.recipe import Recipe, load_recipe, parse_recipe
from ..models.loading import (hub_errors, load_tokenizer, pretrained_kwargs, quiet_transformers, replace_dir,
                              resolve_model, save_model)
from ..models.mlm import check_has_mlm_head
from ..runlock import is_main_process
from ..students import StudentInfo
from ..training.engine import TrainConfig
from ..training.validate import check_output
from .general_distill import (GeneralDistillConfig, GeneralDistillRecipe, known_run_fields, needs_teacher_logits,
                              reads_logits)
from .mlm_batches import check_vocabulary, open_corpora
from .runfolder import check_output_run, known_fingerprint, lock_run_folder
from .stages import (CONNECTORS_FILE, StageSlot, hold_lower_layers, load_connectors, plan_stages, run_stage_sequence,
                     save_connectors, stage_recipe_data, student_shape, write_stage_recipe)

STUDENT_DIR = "student"


class GeneralStageRecipe(GeneralDistillRecipe):
    """One stage of a staged general distillation: starts from the previous stage's student and
    connectors, holds the layers below its own, and leaves its final student for the next."""

    def __init__(self, config: GeneralDistillConfig, stage, previous: Path | None = None):
        super().__init__(config)
        self.stage = stage
        self.previous = previous

    def setup(self) -> None:
        super().setup()
        load_connectors(self.distiller, self.previous / CONNECTORS_FILE if self.previous else None)
        hold_lower_layers(self.student, self.stage)

    def _build_student(self, attn: str):
        if self.previous is None:
            return super()._build_student(attn)
        from transformers import AutoModel, AutoModelForMaskedLM

        kind = AutoModel if self.encoder_only else AutoModelForMaskedLM  # a masked-LM stage: a new head
        with quiet_transformers():
            student = kind.from_pretrained(str(self.previous / "final"), attn_implementation=attn)
        return student, StudentInfo(arch=student.config.model_type, kept=None,
                                    teacher_layers=self.teacher.config.num_hidden_layers)

    def fingerprint(self) -> dict:
        found = super().fingerprint()
        if self.previous is not None:
            found["student"] = {**found["student"], "from": str(self.previous / "final")}
        return found

    def finish(self) -> None:
        """Save the student as the stage ended and the learned connectors (one process writes)."""
        if self.accelerator.is_main_process:
            save_model(self.student, self.tokenizer, self.output / "final")
            save_connectors(self.distiller, self.output)
        self.accelerator.wait_for_everyone()


def teacher_config(config: GeneralDistillConfig, recipe: Recipe):
    """The teacher's config (no weights read); a recipe weighing masked-LM logits needs a teacher
    with a masked-LM head."""
    if needs_teacher_logits(recipe):
        return check_has_mlm_head(config.teacher, flag="--teacher")
    from transformers import AutoConfig

    with quiet_transformers(), hub_errors(config.teacher):
        return AutoConfig.from_pretrained(resolve_model(config.teacher), **pretrained_kwargs())


def general_preflight(config: GeneralDistillConfig, recipe: Recipe) -> list:
    """Everything a staged general run can check before it writes or loads weights: the output
    folder, the options against the recipe, the teacher's config and head, the corpora and the
    vocabulary, and every stage's terms against the models' shapes. Returns the planned stages."""
    check_output(config.output)
    if not isinstance(config.vocab_chunk, int) or config.vocab_chunk < 0:
        raise ValueError(f"--vocab-chunk must be a whole number >= 0 (0 = no chunks), got {config.vocab_chunk!r}")
    if config.student_config is not None and not isinstance(config.student_config, dict):
        raise ValueError(f"--student-config must be a JSON object, got {config.student_config!r}")
    if config.eval_corpus and not reads_logits(recipe):
        raise ValueError(f"--eval-corpus {config.eval_corpus}: no stage of the {recipe.name} recipe compares "
                         "masked-LM logits, so the student has no trained masked-LM head to score; leave "
                         "--eval-corpus out")
    TrainConfig.merged(recipe.training, config.train)  # training numbers (--lr, ...) first
    teacher = teacher_config(config, recipe)
    tokenizer = load_tokenizer(config.tokenizer or config.teacher)
    check_vocabulary(tokenizer, teacher, model_flag=f"--teacher {config.teacher}",
                     tokenizer_name=f"--tokenizer {config.tokenizer}" if config.tokenizer else f"of {config.teacher}",
                     model=config.teacher if config.tokenizer else None)
    open_corpora(config, tokenizer)
    layers = config.student_layers if config.student_layers is not None else recipe.student.get("layers", "skip")
    wanted = SimpleNamespace(student=None, student_config=config.student_config, student_layers=layers)
    student, kept = student_shape(wanted, recipe, teacher)
    planned = plan_stages(recipe, student.num_hidden_layers, teacher.num_hidden_layers, kept,
                          require_prediction=False)
    for stage, terms in [(None, recipe.terms), *planned]:
        try:
            Distiller(terms, student_config=student, teacher_config=teacher, kept=kept,
                      task_kind="token_classification")
        except ValueError as err:
            where = f"stage {stage.name!r}" if stage else f"recipe {recipe.source or recipe.name}"
            raise ValueError(f"{where}: {err}") from None
    return planned


def publish_student(source: Path, out: Path) -> Path:
    """A copy of the last stage's student as ``out/student`` (replaced whole, never half-written)."""
    target = out / STUDENT_DIR
    tmp = Path(tempfile.mkdtemp(prefix=f".{STUDENT_DIR}.tmp-", dir=out))
    try:
        shutil.copytree(source, tmp, dirs_exist_ok=True)
        replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def run_general_staged(config: GeneralDistillConfig) -> dict:
    """Run a staged general recipe (see the module docstring); returns the last stage's results
    with every stage's record and ``student_dir`` = ``OUTPUT/student``."""
    recipe = load_recipe(config.recipe).with_overrides(temperature=config.temperature, weights=config.weights)
    planned = general_preflight(config, recipe)
    out = Path(config.output)
    out.mkdir(parents=True, exist_ok=True)
    lock = lock_run_folder(out)  # the top folder, held until every stage is done
    result: dict = {}

    def run_one(slot: StageSlot) -> dict:
        nonlocal result
        data = stage_recipe_data(recipe, slot.stage, slot.terms)
        stage_recipe = parse_recipe(data, str(slot.folder / "recipe.yaml"))
        train = TrainConfig.merged(stage_recipe.training, config.train)
        # a stage folder holding another run's checkpoint is refused before its recipe.yaml is rewritten
        check_output_run(slot.folder, train.resume, known_fingerprint(train, **known_run_fields(config, stage_recipe)),
                         known_only=True)
        recipe_file = write_stage_recipe(slot.folder, data)
        stage_config = dataclasses.replace(
            config, output=str(slot.folder), recipe=str(recipe_file), temperature=None, weights=None,
            eval_corpus=config.eval_corpus if reads_logits(stage_recipe) else None,
            student_config=config.student_config if slot.previous is None else None)
        runner = GeneralStageRecipe(stage_config, slot.stage, slot.previous)
        if slot.last:
            result = runner.run()
        else:
            runner.setup()
            runner.train()
            runner.finish()
        return {"steps": runner.loop.state.step, "sequences": len(runner.examples)}

    try:
        records, last = run_stage_sequence(out, planned, run_one)
        if not is_main_process():
            return result
        if not result and (last / "results.json").exists():  # every stage finished earlier
            result = json.loads((last / "results.json").read_text())
        student = publish_student(last / STUDENT_DIR, out)
        result = {**result, "recipe": recipe.name, "stages": records, "strategy": recipe.strategy,
                  "student_dir": str(student)}
        tmp = out / ".results.json.tmp"
        tmp.write_text(json.dumps(result, indent=2, default=str))
        tmp.replace(out / "results.json")
        print(f"student saved to {student}")
        return result
    finally:
        if lock is not None:
            lock.release()
