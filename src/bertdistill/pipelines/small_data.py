"""Training defaults that still work on a small data set.

The recipes' defaults (3 epochs at batch 32) suit thousands of rows. On 180 train rows they
make 18 optimizer steps, and a student trained for 18 steps predicts one class for every
input. When the user did not choose the length of training (``--epochs`` / ``--max-steps``,
or a recipe's ``max_steps``), a run on small data gets at least ``MIN_STEPS`` optimizer
steps: first a smaller batch (``SMALL_BATCH``, unless ``--batch-size`` was given), then more
epochs (at most ``MAX_EPOCHS``; the best dev checkpoint is kept, so more epochs cannot make
the saved model worse than an earlier epoch). The change is said in one line.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable

MIN_STEPS = 120  # 180 rows: batch 16 x 10 epochs learns where batch 32 x 3 epochs (18 steps) collapses
SMALL_BATCH = 16
MAX_EPOCHS = 20


def optimizer_steps(n_train: int, batch_size: int, grad_accum: int, epochs: float) -> int:
    """Optimizer steps of ``epochs`` over ``n_train`` rows (as the training loop counts them, one process)."""
    per_epoch = max(1, math.ceil(math.ceil(n_train / batch_size) / grad_accum))
    return max(1, math.ceil(epochs * per_epoch))


def small_data_training(config, n_train: int, given: Iterable[str]):
    """(TrainConfig, note or None): ``config`` with more optimizer steps when ``n_train`` is small.

    ``given`` names the TrainConfig fields the user set; ``epochs`` or ``max_steps`` among
    them (or ``config.max_steps`` set by a recipe) leaves ``config`` as it is, and a given
    ``batch_size`` is kept.
    """
    given = set(given)
    if config.max_steps or {"epochs", "max_steps"} & given or n_train < 1:
        return config, None
    planned = optimizer_steps(n_train, config.batch_size, config.grad_accum, config.epochs)
    if planned >= MIN_STEPS:
        return config, None
    batch = config.batch_size
    if "batch_size" not in given and batch > SMALL_BATCH:
        batch = SMALL_BATCH
    epochs = config.epochs
    per_epoch = optimizer_steps(n_train, batch, config.grad_accum, 1)
    if per_epoch * epochs < MIN_STEPS:
        epochs = max(epochs, float(min(MAX_EPOCHS, math.ceil(MIN_STEPS / per_epoch))))
    if batch == config.batch_size and epochs == config.epochs:
        return config, None
    changed = dataclasses.replace(config, batch_size=batch, epochs=epochs)
    steps = optimizer_steps(n_train, batch, config.grad_accum, epochs)
    what = []
    if batch != config.batch_size:
        what.append(f"batch size {config.batch_size} -> {batch}")
    if epochs != config.epochs:
        what.append(f"epochs {config.epochs:g} -> {epochs:g}")
    note = (f"small data: {n_train} train rows give only {planned} optimizer steps with the defaults "
            f"({config.epochs:g} epochs of batch {config.batch_size}), too few to learn (the model ends up "
            f"predicting one class); {', '.join(what)}: {steps} steps. Choose yourself with --epochs, "
            f"--batch-size or --max-steps")
    return changed, note
