"""The command line that produced a run: recorded when it runs, rebuilt from its config otherwise."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

# DistillConfig fields -> CLI flags (the others have no flag or are defaults)
_DISTILL_FLAGS = {
    "teacher": "--teacher", "task": "--task", "data": "--data", "recipe": "--recipe", "output": "--output",
    "student_arch": "--student-arch", "student_layers": "--student-layers", "student": "--student",
    "temperature": "--temperature", "max_length": "--max-length", "max_train_examples": "--max-train-examples",
    "max_eval_examples": "--max-eval-examples", "cache_dir": "--cache-dir",
}
_TRAIN_FLAGS = {
    "epochs": "--epochs", "max_steps": "--max-steps", "batch_size": "--batch-size", "lr": "--lr",
    "weight_decay": "--weight-decay", "warmup_ratio": "--warmup-ratio", "max_grad_norm": "--max-grad-norm",
    "grad_accum": "--grad-accum", "eval_every": "--eval-every", "save_every": "--save-every", "seed": "--seed",
    "mixed_precision": "--mixed-precision",
}


def invoking_command() -> str | None:
    """``bertdistill ...`` as typed, when this process is the bertdistill CLI; else None."""
    argv = sys.argv
    if not argv:
        return None
    script = Path(argv[0])
    is_cli = script.name == "bertdistill" or (script.name in ("cli.py", "__main__.py")
                                               and script.parent.name == "bertdistill")
    if not is_cli:  # e.g. pytest, a notebook, the demo called from Python
        return None
    return shlex.join(["bertdistill", *argv[1:]])


def distill_command(config: dict) -> str:
    """The ``bertdistill distill`` command equivalent to a run's saved DistillConfig."""
    parts = ["bertdistill", "distill"]
    for key, flag in _DISTILL_FLAGS.items():
        value = config.get(key)
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        parts += [flag, str(value)]
    if config.get("student_config"):
        import json

        parts += ["--student-config", json.dumps(config["student_config"], separators=(",", ":"))]
    for name, weight in (config.get("weights") or {}).items():
        parts += ["--weight", f"{name}={weight}"]
    for key, flag in _TRAIN_FLAGS.items():
        value = (config.get("train") or {}).get(key)
        if value is not None:
            parts += [flag, str(value)]
    if not config.get("cache_teacher", True):
        parts.append("--no-teacher-cache")
    return shlex.join(parts)
