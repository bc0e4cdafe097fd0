"""The loss of a log row: the mean over the logging window's optimizer steps and over processes.

Each process adds its step's loss and loss parts (already averaged over the step's
accumulated micro-batches); a log row divides the window's sums by its step count and
averages that over the processes with one all-reduce. The total and every part go through
the same arithmetic, so a row's parts combine to its total exactly as a step's do (for a
weighted sum of parts: the weighted sum of the logged parts is the logged total).

At a checkpoint the partial sums are averaged over the processes and stored in the
``TrainState``; a resumed run starts its window from them, and since an average over
processes is linear, its rows equal the uninterrupted run's. Every process must call
:meth:`LossWindow.row` and :meth:`LossWindow.merge` at the same steps, and its ``loss_step``
must report the same part names (the recipes do: one part per loss term).
"""

from __future__ import annotations

from typing import Mapping

import torch


class LossWindow:
    """Sums of the loss and its parts over the optimizer steps since the last log row."""

    def __init__(self, steps: int = 0, loss: float = 0.0, parts: Mapping[str, float] | None = None):
        self.steps, self.loss, self.parts = steps, loss, dict(parts or {})

    def add(self, loss: float, parts: Mapping[str, float]) -> None:
        self.steps += 1
        self.loss += loss
        for key, value in parts.items():
            self.parts[key] = self.parts.get(key, 0.0) + float(value)

    def _over_processes(self, accelerator, divisor: int) -> tuple[float, dict[str, float]]:
        keys = sorted(self.parts)
        local = torch.tensor([self.loss, *(self.parts[k] for k in keys)], dtype=torch.float64) / divisor
        if accelerator.num_processes > 1:
            local = accelerator.reduce(local.to(accelerator.device), reduction="mean").cpu()
        values = local.tolist()
        return values[0], dict(zip(keys, values[1:]))

    def row(self, accelerator) -> tuple[float, dict[str, float]]:
        """The window's mean loss and mean parts, averaged over processes; the window restarts."""
        loss, parts = self._over_processes(accelerator, max(self.steps, 1))
        self.steps, self.loss, self.parts = 0, 0.0, {}
        return loss, parts

    def merge(self, accelerator) -> dict:
        """Average the partial sums over processes (all now hold the same) and return them as
        the ``TrainState.window`` a checkpoint stores."""
        self.loss, self.parts = self._over_processes(accelerator, 1)
        return {"steps": self.steps, "loss": self.loss, "parts": dict(self.parts)}

    @classmethod
    def restored(cls, saved: Mapping | None) -> "LossWindow":
        """The window a checkpoint stored (an empty one for checkpoints without it)."""
        saved = saved or {}
        return cls(int(saved.get("steps", 0)), float(saved.get("loss", 0.0)), saved.get("parts"))
