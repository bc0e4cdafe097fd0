"""Crash-safe training checkpoints: model, optimizer, scheduler, RNG, scaler, data position.

Write sequence (``save_checkpoint``), chosen so that a run killed at ANY point leaves a
complete checkpoint behind the ``latest`` pointer:

1. every file is written into a fresh hidden folder ``.partial-<name>`` and fsynced;
2. the folder is renamed to its final, never-before-used name ``ckpt-<step>-<unique>``
   (``os.replace``), and the parent folder is fsynced;
3. the pointer file ``latest`` is repointed atomically: written to ``latest.tmp``, fsynced,
   ``os.replace``-d over ``latest``, parent fsynced;
4. only then are older checkpoints (and leftovers of interrupted writes) deleted.

The checkpoint ``latest`` points at is never deleted or overwritten: a second checkpoint
of the same step gets a new name. Tensors are stored with safetensors; the optimizer,
scheduler, RNG and scaler states go through ``torch.save`` and are read back with
``weights_only=True``. ``run.json`` holds the run's fingerprint (what determines the
batching and the optimisation), which resume compares with the new run's.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..durable import fsync_dir, fsync_file

POINTER = "latest"
PREFIX = "ckpt-"
PARTIAL = ".partial-"


@dataclass
class TrainState:
    """Where the run is: optimizer steps done, epoch, batches of that epoch consumed."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_metric: float | None = None
    best_step: int | None = None
    eval_step: int | None = None     # the last step evaluated (not evaluated again after a resume)


# ---- durable file primitives ----------------------------------------------------------------
def write_text_atomic(path: str | Path, text: str) -> None:
    """Replace ``path`` by ``text`` so that a reader sees the old or the new content, never a mix."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _contiguous(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses shared storage (tied embeddings): store independent copies.
    return {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}


# ---- RNG --------------------------------------------------------------------------------------
def rng_state() -> dict:
    """torch (CPU and every CUDA device), Python and NumPy generators, in weights_only-safe types."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": {"name": str(np_state[0]), "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    if "numpy" in state:
        n = state["numpy"]
        np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                             n["cached_gaussian"]))
    if "cuda" in state and torch.cuda.is_available():
        saved = state["cuda"]
        if len(saved) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(saved)
        else:
            for i, s in enumerate(saved[: torch.cuda.device_count()]):
                torch.cuda.set_rng_state(s, i)


# ---- save / find / load -----------------------------------------------------------------------
def checkpoint_step(path: str | Path) -> int:
    """The optimizer step a checkpoint folder was written at (from its ``state.json``)."""
    return int(json.loads((Path(path) / "state.json").read_text())["step"])


def save_checkpoint(
    root: str | Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler,
    state: TrainState,
    scaler=None,
    fingerprint: dict | None = None,
    keep: int = 1,
) -> Path:
    """Write a new checkpoint under ``root``, repoint ``root/latest`` at it, keep the newest ``keep``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    name = f"{PREFIX}{state.step}-{uuid.uuid4().hex[:8]}"
    tmp = root / f"{PARTIAL}{name}"
    tmp.mkdir()
    save_file(_contiguous(model.state_dict()), str(tmp / "model.safetensors"))
    trainer = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng_state()}
    if scaler is not None:
        trainer["scaler"] = scaler.state_dict()
    torch.save(trainer, tmp / "trainer.pt")
    (tmp / "state.json").write_text(json.dumps(asdict(state), indent=2))
    (tmp / "run.json").write_text(json.dumps(fingerprint or {}, indent=2, sort_keys=True))
    for file in tmp.iterdir():
        fsync_file(file)
    fsync_dir(tmp)
    final = root / name
    os.replace(tmp, final)
    fsync_dir(root)
    write_text_atomic(root / POINTER, name)
    prune(root, keep=keep)
    return final


def prune(root: str | Path, keep: int = 1) -> None:
    """Delete all but the newest ``keep`` checkpoints and any interrupted writes; never ``latest``'s."""
    root = Path(root)
    current = latest_checkpoint(root)
    others = [p for p in root.glob(f"{PREFIX}*") if p.is_dir() and p != current]
    others.sort(key=lambda p: (_name_step(p), p.stat().st_mtime))
    doomed = others[: max(0, len(others) - (keep - 1))] + list(root.glob(f"{PARTIAL}*"))
    for old in doomed:
        shutil.rmtree(old, ignore_errors=True)


def _name_step(path: Path) -> int:
    part = path.name[len(PREFIX):].split("-")[0]
    return int(part) if part.isdigit() else -1


def latest_checkpoint(root: str | Path) -> Path | None:
    """The folder ``latest`` points at, or None when no checkpoint was written.

    Raises RuntimeError if the pointer names a folder that is missing or incomplete (which
    the write sequence never produces; someone edited the folder by hand).
    """
    pointer = Path(root) / POINTER
    if not pointer.exists():
        return None
    target = Path(root) / pointer.read_text().strip()
    if not (target / "state.json").exists() or not (target / "model.safetensors").exists():
        raise RuntimeError(
            f"{pointer} points at {target.name}, which is missing or incomplete; the checkpoint folder was "
            "changed by hand. Start afresh with --no-resume (or another --output)."
        )
    return target


def forget_checkpoints(root: str | Path) -> Path | None:
    """Make the checkpoints under ``root`` unresumable (``--no-resume``): the pointer is removed,
    the folders are deleted by the next ``save_checkpoint``. Returns what ``latest`` pointed at."""
    pointer = Path(root) / POINTER
    if not pointer.exists():
        return None
    previous = Path(root) / pointer.read_text().strip()
    pointer.unlink()
    fsync_dir(Path(root))
    return previous


def read_fingerprint(path: str | Path) -> dict | None:
    file = Path(path) / "run.json"
    return json.loads(file.read_text()) if file.exists() else None


def load_checkpoint(
    path: str | Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler,
    scaler=None,
) -> TrainState:
    """Restore everything ``save_checkpoint`` wrote; returns the saved TrainState."""
    path = Path(path)
    weights = load_file(str(path / "model.safetensors"))
    missing, unexpected = model.load_state_dict(weights, strict=False)
    # Tied weights may be absent from the saved copy only if they are aliases.
    if unexpected or [m for m in missing if not _is_tied(model, m)]:
        raise RuntimeError(
            f"checkpoint {path} does not fit the model: missing {missing}, unexpected {unexpected}"
        )
    trainer = torch.load(path / "trainer.pt", weights_only=True, map_location="cpu")
    optimizer.load_state_dict(trainer["optimizer"])
    scheduler.load_state_dict(trainer["scheduler"])
    set_rng_state(trainer["rng"] if "rng" in trainer else {"torch": trainer["torch_rng"]})
    if scaler is not None and "scaler" in trainer:
        scaler.load_state_dict(trainer["scaler"])
    return TrainState(**json.loads((path / "state.json").read_text()))


def _is_tied(model: torch.nn.Module, name: str) -> bool:
    params = dict(model.named_parameters(remove_duplicate=False))
    target = params.get(name)
    if target is None:
        return False
    return any(p is target for n, p in params.items() if n != name)
