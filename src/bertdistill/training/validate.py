"""Option checks that run before any data, model or cache is loaded.

Every message names the command-line flag (``--lr must be > 0, got -1.0``), so that the
same check serves the CLI and the Python API. ``check_train_config`` runs in
``TrainConfig.__post_init__``; the recipes call ``check_output`` and their own
``check_*_options`` first thing in ``setup``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


def _number(value: Any, flag: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{flag} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{flag} must be a finite number, got {value!r}")
    return float(value)


def positive(value: Any, flag: str) -> None:
    if _number(value, flag) <= 0:
        raise ValueError(f"{flag} must be > 0, got {value!r}")


def non_negative(value: Any, flag: str) -> None:
    if _number(value, flag) < 0:
        raise ValueError(f"{flag} must be >= 0, got {value!r}")


def positive_int(value: Any, flag: str, *, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{flag} must be a whole number, got {value!r}")
    if value < minimum:
        raise ValueError(f"{flag} must be at least {minimum}, got {value!r}")


def optional_positive_int(value: Any, flag: str, *, minimum: int = 1) -> None:
    if value is not None:
        positive_int(value, flag, minimum=minimum)


def check_train_config(cfg) -> None:
    """A TrainConfig's numbers, with the flags that set them."""
    if cfg.mixed_precision not in ("no", "bf16", "fp16"):
        raise ValueError(f"--mixed-precision must be no, bf16 or fp16, got {cfg.mixed_precision!r}")
    if cfg.optimizer not in ("fused", "foreach", "loop"):
        raise ValueError(f"--optimizer must be fused, foreach or loop, got {cfg.optimizer!r}")
    from .allocator import check_cpu_allocator
    from .dropout import check_dropout_draws

    check_dropout_draws(cfg.dropout_draws)
    check_cpu_allocator(cfg.cpu_allocator)
    optional_positive_int(cfg.max_steps, "--max-steps")
    if cfg.max_steps is None:
        positive(cfg.epochs, "--epochs")
    positive_int(cfg.batch_size, "--batch-size")
    positive_int(cfg.grad_accum, "--grad-accum")
    positive(cfg.lr, "--lr")
    non_negative(cfg.weight_decay, "--weight-decay")
    if not 0.0 <= _number(cfg.warmup_ratio, "--warmup-ratio") <= 1.0:
        raise ValueError(f"--warmup-ratio must be between 0 and 1, got {cfg.warmup_ratio!r}")
    non_negative(cfg.max_grad_norm, "--max-grad-norm")
    optional_positive_int(cfg.eval_every, "--eval-every")
    optional_positive_int(cfg.save_every, "--save-every")
    positive_int(cfg.log_every, "log_every")
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int) or cfg.seed < 0:
        raise ValueError(f"--seed must be a whole number >= 0, got {cfg.seed!r}")


def check_output(output: str | Path) -> None:
    """``--output`` must be a folder (existing or not), never an existing file."""
    path = Path(output)
    if path.exists() and not path.is_dir():
        raise ValueError(f"--output {output} is an existing file; give a folder for the run's outputs")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"--output {output}: {parent} is a file, so the folder cannot be created")
            break


def check_data_options(cfg) -> None:
    """Options shared by the fine-tuning and distillation configs."""
    check_output(cfg.output)
    if cfg.max_length is not None:
        positive_int(cfg.max_length, "--max-length", minimum=2)  # [CLS] and [SEP] at least
    optional_positive_int(cfg.max_train_examples, "--max-train-examples")
    optional_positive_int(cfg.max_eval_examples, "--max-eval-examples")
    positive_int(cfg.eval_batch_size, "eval_batch_size")


def check_distill_options(cfg) -> None:
    """DistillConfig options the recipe does not validate itself (the recipe file and terms are
    checked when it is loaded, still before any model)."""
    check_data_options(cfg)
    from ..data.tasks import task_kind

    if task_kind(cfg.task) == "qa" and cfg.student_arch == "bilstm":
        raise ValueError(f"--student-arch bilstm reads whole sentences; --task {cfg.task} (question answering) "
                         "needs a transformer student that scores every token (same or distilbert)")
    if cfg.student_arch is not None and cfg.student_arch not in ("same", "distilbert", "bilstm"):
        raise ValueError(f"--student-arch must be same, distilbert or bilstm, got {cfg.student_arch!r}")
    if isinstance(cfg.student_layers, int) and not isinstance(cfg.student_layers, bool):
        positive_int(cfg.student_layers, "--student-layers")
    if cfg.student is not None and cfg.student_config is not None:
        raise ValueError("--student and --student-config exclude each other: start from a checkpoint "
                         "or build a random student, not both")
    if cfg.student_config is not None and not isinstance(cfg.student_config, dict):
        raise ValueError(f"--student-config must be a JSON object, got {cfg.student_config!r}")
    if cfg.temperature is not None:
        positive(cfg.temperature, "--temperature")
    for name, weight in (cfg.weights or {}).items():
        non_negative(weight, f"--weight {name}=")
    positive(cfg.cache_max_gb, "cache_max_gb")
    if cfg.cache_attention is not None and cfg.cache_attention not in ("eager", "sdpa"):
        raise ValueError(f"--cache-attention must be eager or sdpa, got {cfg.cache_attention!r}")
    if cfg.cache_dir is not None and Path(cfg.cache_dir).exists() and not Path(cfg.cache_dir).is_dir():
        raise ValueError(f"--cache-dir {cfg.cache_dir} is a file, not a folder")
