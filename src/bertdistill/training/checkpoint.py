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
scheduler and scaler states go through ``torch.save`` and are read back with
``weights_only=True``, as is each process's RNG state (``rng_rank<r>.pt``, one file per
process: each rank draws its own dropout masks and resumes with its own generators).
``run.json`` holds the run's fingerprint (what determines the batching and the
optimisation), which resume compares with the new run's.

A write that fails (``OSError``: a full disk, a quota) before ``latest`` is repointed
removes the new folder and raises :class:`~bertdistill.durable.DiskWriteError`; ``latest``
still points at the previous checkpoint, which the next run resumes from.
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

from ..durable import DiskWriteError, fsync_dir, fsync_file

POINTER = "latest"
PREFIX = "ckpt-"
PARTIAL = ".partial-"
RNG_FILE = "rng_rank{rank}.pt"


@dataclass
class TrainState:
    """Where the run is: optimizer steps done, epoch, batches of that epoch consumed."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_metric: float | None = None
    best_step: int | None = None
    eval_step: int | None = None     # the last step evaluated (not evaluated again after a resume)
    window: dict | None = None       # the log window's loss sums so far, averaged over processes (loss_window.py)


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
    rng_states: list[dict] | None = None,
) -> Path:
    """Write a new checkpoint under ``root``, repoint ``root/latest`` at it, keep the newest ``keep``.

    ``rng_states``: every process's :func:`rng_state`, in rank order (default: this process's).
    Raises ``DiskWriteError`` when a write fails; nothing of the new checkpoint is left then.
    """
    root = Path(root)
    name = f"{PREFIX}{state.step}-{uuid.uuid4().hex[:8]}"
    tmp, final = root / f"{PARTIAL}{name}", root / name
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        save_file(_contiguous(model.state_dict()), str(tmp / "model.safetensors"))
        trainer = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
        if scaler is not None:
            trainer["scaler"] = scaler.state_dict()
        torch.save(trainer, tmp / "trainer.pt")
        for rank, rng in enumerate(rng_states if rng_states is not None else [rng_state()]):
            torch.save(rng, tmp / RNG_FILE.format(rank=rank))
        (tmp / "state.json").write_text(json.dumps(asdict(state), indent=2))
        (tmp / "run.json").write_text(json.dumps(fingerprint or {}, indent=2, sort_keys=True))
        for file in tmp.iterdir():
            fsync_file(file)
        fsync_dir(tmp)
        os.replace(tmp, final)
        fsync_dir(root)
        write_text_atomic(root / POINTER, name)
    except OSError as err:  # `latest` was not repointed: the new folder is nobody's
        for leftover in (tmp, final):
            shutil.rmtree(leftover, ignore_errors=True)
        (root / f"{POINTER}.tmp").unlink(missing_ok=True)
        previous = _pointed(root)
        kept = (f"the last good checkpoint {previous} is kept; free space and run the same command again to "
                "resume from it") if previous else "no earlier checkpoint exists; free space and run the command again"
        raise DiskWriteError.writing("the checkpoint", final, err, kept) from err
    prune(root, keep=keep)
    return final


def _pointed(root: Path) -> Path | None:
    """The folder ``latest`` names, if the pointer can be read (no completeness check)."""
    try:
        return root / (root / POINTER).read_text().strip()
    except OSError:
        return None


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
    rank: int = 0,
    world_size: int = 1,
) -> TrainState:
    """Restore everything ``save_checkpoint`` wrote; returns the saved TrainState.

    Process ``rank`` of ``world_size`` gets its own RNG state back; a checkpoint written by
    another number of processes is refused (``ValueError``), before anything is restored.
    """
    path = Path(path)
    saved_ranks = len(list(path.glob(RNG_FILE.format(rank="*"))))
    if saved_ranks and saved_ranks != world_size:
        raise ValueError(
            f"the checkpoint {path} was written by {saved_ranks} process(es) and this run has {world_size}; "
            f"resume with {saved_ranks} process(es) (torchrun --nproc_per_node {saved_ranks}) or start afresh "
            "with --no-resume"
        )
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
    if saved_ranks:
        set_rng_state(torch.load(path / RNG_FILE.format(rank=rank), weights_only=True, map_location="cpu"))
    else:  # written before the per-process RNG files: one state, in trainer.pt
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
