"""The fingerprint of a training run: everything that decides its batches and its updates.

A checkpoint stores the fingerprint of the run that wrote it (``run.json``). Resuming
with a different batch size, seed, data, grouping, world size, recipe, step budget,
learning rate, ... would silently continue into another run; ``check_resume`` refuses it
and lists every field that differs.

The engine contributes the fields of ``TrainConfig`` that shape the run plus the world
size and a hash of the training data; recipes add their own (task, model identities,
recipe terms, max length) through ``TrainLoop(fingerprint=...)``. ``run_fingerprint`` is that
whole fingerprint, so that a pipeline can compare it with a run folder's checkpoint before it
writes anything (``pipelines/runfolder.py``); ``check_resume(..., keys=...)`` compares only the
fields already known before any data or model is loaded.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable

# TrainConfig fields that change which batches are drawn or how the weights are updated.
# eval_every / save_every / log_every / resume do not, and may change between attempts.
TRAIN_FIELDS = ("epochs", "max_steps", "batch_size", "grad_accum", "seed", "group_by_length", "lr",
                "weight_decay", "warmup_ratio", "max_grad_norm", "mixed_precision")

FLAGS = {"batch_size": "--batch-size", "grad_accum": "--grad-accum", "seed": "--seed", "lr": "--lr",
         "epochs": "--epochs", "max_steps": "--max-steps", "group_by_length": "--no-length-grouping",
         "weight_decay": "--weight-decay", "warmup_ratio": "--warmup-ratio", "max_grad_norm": "--max-grad-norm",
         "mixed_precision": "--mixed-precision", "max_length": "--max-length", "world_size": "torchrun --nproc_per_node",
         "data": "--data / --max-train-examples / --max-length", "recipe": "--recipe", "terms": "--recipe / --weight / --temperature",
         "teacher_weights": "--teacher: its weights changed", "dropout_draws": "--dropout-draws"}


#: fields written only when they differ from their default (absent means the default), so that a
#: comparison of known fields must look at them whether or not this run sets them
OPTIONAL_FIELDS = ("dropout_draws", "compact_embeddings")


def train_fields(config) -> dict:
    """The fields of a ``TrainConfig`` that belong to the fingerprint."""
    fields = {name: getattr(config, name) for name in TRAIN_FIELDS}
    draws = getattr(config, "dropout_draws", "torch")
    if draws != "torch":  # another random stream; absent means torch's draws
        fields["dropout_draws"] = draws
    return fields


def run_fingerprint(config, world_size: int, features: Iterable[dict], extra: dict) -> dict:
    """The fingerprint ``TrainLoop`` stores for a run of ``config`` over ``features`` on
    ``world_size`` processes, the recipe's fields ``extra`` included."""
    fp = {**train_fields(config), "world_size": world_size}
    fp["data"] = extra.get("data") or data_hash(features)
    return normalise({**fp, **extra})


def data_hash(features: Iterable[dict]) -> str:
    """sha256 over every training example's token ids, token types and label, in order."""
    h = hashlib.sha256()
    for f in features:
        h.update(json.dumps([f["input_ids"], f.get("token_type_ids"), f.get("labels")]).encode())
        h.update(b"\n")
    return h.hexdigest()[:16]


def normalise(fingerprint: dict) -> dict:
    """The JSON form (tuples become lists, numbers and strings as JSON stores them)."""
    return json.loads(json.dumps(fingerprint, sort_keys=True, default=str))


def differences(old: dict, new: dict) -> list[tuple[str, Any, Any]]:
    old, new = normalise(old), normalise(new)
    return [(key, old.get(key, "(absent)"), new.get(key, "(absent)"))
            for key in sorted(set(old) | set(new)) if old.get(key, "(absent)") != new.get(key, "(absent)")]


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 120 else text[:117] + "..."


def describe_differences(diff: list[tuple[str, Any, Any]]) -> str:
    """One line per field, each ending in ``;`` (still readable when printed on one line)."""
    return "\n".join(f"  {key}{' (' + FLAGS[key] + ')' if key in FLAGS else ''}: {_short(a)} (checkpoint) vs "
                     f"{_short(b)} (now);" for key, a, b in diff)


def check_resume(old: dict | None, new: dict, checkpoint: str, keys: Iterable[str] | None = None) -> None:
    """Raise ValueError when the checkpoint's run differs from the run being started; with
    ``keys``, only those fields (and :data:`OPTIONAL_FIELDS`) are compared: the ones known
    before the data and the models are loaded."""
    if old is None:
        return
    if keys is not None:
        wanted = set(keys) | set(OPTIONAL_FIELDS)
        old = {k: v for k, v in old.items() if k in wanted}
        new = {k: v for k, v in new.items() if k in wanted}
    diff = differences(old, new)
    if not diff:
        return
    raise ValueError(
        f"the checkpoint {checkpoint} belongs to a different run; resuming it would continue another "
        "batching/optimisation. What differs:\n" + describe_differences(diff)
        + "\nRun the original command again to resume, or start afresh with --no-resume (the old checkpoints "
        "are then discarded) or with another --output."
    )
