"""Atomic training checkpoints: model, optimizer, scheduler, RNG and data position.

A checkpoint is a folder ``ckpt-<step>`` written completely before the small pointer file
``latest`` is replaced (``os.replace`` is atomic), so a run killed at any moment leaves
either the previous checkpoint or the new one, never a half-written state. Tensors are
stored with safetensors; the optimizer/scheduler state and RNG go through ``torch.save``
and are read back with ``weights_only=True``.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

POINTER = "latest"


@dataclass
class TrainState:
    """Where the run is: optimizer steps done, epoch, batches of that epoch consumed."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_metric: float | None = None
    best_step: int | None = None


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _contiguous(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses shared storage (tied embeddings): store independent copies.
    return {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}


def save_checkpoint(
    root: str | Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler,
    state: TrainState,
    keep: int = 1,
) -> Path:
    """Write ``root/ckpt-<step>`` and point ``root/latest`` at it; keep the newest ``keep``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"ckpt-{state.step}"
    tmp = root / f".ckpt-{state.step}.partial"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    save_file(_contiguous(model.state_dict()), str(tmp / "model.safetensors"))
    torch.save(
        {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
        },
        tmp / "trainer.pt",
    )
    (tmp / "state.json").write_text(json.dumps(asdict(state), indent=2))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    _write_atomic(root / POINTER, final.name)
    older = sorted(
        (p for p in root.glob("ckpt-*") if p != final),
        key=lambda p: int(p.name.split("-")[1]),
    )
    for old in older[: max(0, len(older) - (keep - 1))]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(root: str | Path) -> Path | None:
    """The folder ``latest`` points at, or None when there is no complete checkpoint."""
    pointer = Path(root) / POINTER
    if not pointer.exists():
        return None
    target = Path(root) / pointer.read_text().strip()
    return target if (target / "state.json").exists() else None


def load_checkpoint(
    path: str | Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler,
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
    torch.set_rng_state(trainer["torch_rng"])
    return TrainState(**json.loads((path / "state.json").read_text()))


def _is_tied(model: torch.nn.Module, name: str) -> bool:
    params = dict(model.named_parameters(remove_duplicate=False))
    target = params.get(name)
    if target is None:
        return False
    return any(p is target for n, p in params.items() if n != name)
