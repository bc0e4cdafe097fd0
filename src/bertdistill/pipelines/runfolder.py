"""A training command's run folder: one run at a time, nothing written before every check passed.

``claim_output`` is the first thing a training pipeline does after its option checks: it
locks ``--output`` (``bertdistill.runlock``) and compares what is already known of the run
(the training settings, the recipe and its terms, the model names, the world size) with the
fingerprint of the checkpoint the folder holds, before any data or model is loaded.
``check_output_run`` compares the whole fingerprint (data and teacher weights included, as
the engine will) before the first file of the run is written; a refused resume thus leaves
the folder as it was (only the lock file's holder line changes).
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

from ..runlock import RunLock, lock_run_folder

__all__ = ["check_output_run", "check_recipe_run", "check_stage_run", "claim_output", "distill_fields",
           "known_fingerprint", "lock_run_folder"]
from ..training.checkpoint import latest_checkpoint, read_fingerprint
from ..training.fingerprint import check_resume, normalise, run_fingerprint, train_fields

CHECKPOINTS = "checkpoints"


def launch_world_size() -> int:
    """The number of processes of this launch (``WORLD_SIZE``, set by torchrun / accelerate)."""
    value = os.environ.get("WORLD_SIZE", "1").strip()
    return int(value) if value.isdigit() and int(value) > 0 else 1


def earlier_run(output: str | os.PathLike) -> tuple[Path, dict] | None:
    """``(checkpoint, fingerprint)`` of the run whose checkpoint ``output`` holds, or None."""
    try:
        path = latest_checkpoint(Path(output) / CHECKPOINTS)
    except RuntimeError as err:  # a pointer to a missing checkpoint: a user-fixable state of the folder
        raise ValueError(" ".join(str(err).split())) from None
    if path is None:
        return None
    old = read_fingerprint(path)
    return (path, old) if old is not None else None


def check_output_run(output: str | os.PathLike, resume: bool, fingerprint: dict, *, known_only: bool = False) -> None:
    """Refuse (ValueError, every differing field listed) a run whose ``fingerprint`` differs from
    the checkpoint's in ``output`` when it would resume it; ``known_only`` compares only the
    fields ``fingerprint`` has (the rest is not known yet)."""
    if not resume:  # --no-resume: the old checkpoints are discarded, nothing to compare
        return
    found = earlier_run(output)
    if found is None:
        return
    path, old = found
    check_resume(old, fingerprint, str(path), keys=list(fingerprint) if known_only else None)


def known_fingerprint(train_config, **fields) -> dict:
    """The fields of a run's fingerprint known before any data or model is loaded."""
    return normalise({**train_fields(train_config), "world_size": launch_world_size(), **fields})


def claim_output(output: str | os.PathLike, train_config, **fields) -> RunLock | None:
    """Lock ``output`` and compare the known part of the run's fingerprint (``train_config``'s
    fields, the world size and ``fields``) with its checkpoint's. Keep the returned lock for as
    long as the run writes into ``output``."""
    lock = lock_run_folder(output)
    try:
        check_output_run(output, train_config.resume, known_fingerprint(train_config, **fields), known_only=True)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return lock


def distill_fields(config, recipe) -> dict:
    """What a task distillation's fingerprint holds besides training settings and data, as far
    as the config and the recipe tell (``DistillRecipe.fingerprint`` adds the rest)."""
    return {"recipe": recipe.name, "terms": [asdict(t) for t in recipe.terms], "teacher": config.teacher,
            "max_length": config.max_length or int(recipe.training.get("max_length", 128)),
            **({"compact_embeddings": True} if config.compact_embeddings else {})}


def check_recipe_run(recipe) -> None:
    """The whole fingerprint of a set-up distillation recipe against its folder's checkpoint,
    computed as ``TrainLoop`` will (called before the run's first write)."""
    fingerprint = run_fingerprint(recipe.train_config, recipe.accelerator.num_processes, recipe.train_features,
                                  recipe.fingerprint())
    check_output_run(recipe.output, recipe.train_config.resume, fingerprint)


def check_stage_run(folder: str | os.PathLike, config, stage_recipe: dict, source: str | os.PathLike) -> None:
    """The known part of a stage's fingerprint (its recipe as a dict, before it is written to
    ``source``) against the stage folder's checkpoint: a staged run started with other settings
    is refused before the stage's ``recipe.yaml`` is rewritten."""
    from ..distill.recipe import parse_recipe
    from ..training.engine import TrainConfig

    recipe = parse_recipe(stage_recipe, str(source))
    train = TrainConfig.merged(recipe.training, config.train)
    known = known_fingerprint(train, **distill_fields(config, recipe))
    if not (train.max_steps or {"epochs", "max_steps"} & set(config.train or {})):
        # batch size and epochs may still follow the data's size (small_data.py): the stage's own
        # setup compares them once the data is read
        known = {k: v for k, v in known.items() if k not in ("batch_size", "epochs")}
    check_output_run(folder, train.resume, known, known_only=True)
