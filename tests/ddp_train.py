"""Run by tests/test_distributed.py under torchrun (and once as a single process).

Trains a small model with ``TrainLoop`` for a few steps and saves each rank's final
parameters. ``--unsynced`` trains the bare module instead of accelerate's DDP wrapper, so
gradients are never all-reduced: the test uses it to show that its check can fail.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from bertdistill.training.engine import TrainConfig, TrainLoop


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(4, 8)
        self.b = torch.nn.Linear(8, 1)

    def forward(self, x):
        return self.b(torch.tanh(self.a(x))).squeeze(-1)


def features() -> list[dict]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 4, generator=g)
    y = (x[:, 0] - 2 * x[:, 1] + 0.5 * x[:, 2] * x[:, 3]).tolist()
    return [{"input_ids": [1], "x": x[i].tolist(), "y": y[i]} for i in range(32)]


def collate(items):
    return {"x": torch.tensor([f["x"] for f in items]), "y": torch.tensor([f["y"] for f in items])}


def loss_step(module, batch):
    return (module(batch["x"]) - batch["y"]).pow(2).mean(), {}


def run(out: Path, grad_accum: int, unsynced: bool) -> None:
    torch.manual_seed(0)
    model = Net()
    # 32 examples, batches of 4: 8 batches; 2 ranks x 1 or 1 rank x 2 accumulated = 4 steps/epoch
    cfg = TrainConfig(epochs=2, batch_size=4, grad_accum=grad_accum, lr=0.05, warmup_ratio=0.0,
                      group_by_length=False, seed=3, max_grad_norm=1.0, resume=False, log_every=1)
    loop = TrainLoop(model, features(), collate, loss_step, config=cfg, output_dir=out / "run")
    if unsynced:
        loop.module = loop.accelerator.unwrap_model(loop.module)
    summary = loop.train()
    rank = loop.accelerator.process_index
    torch.save({"params": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "steps": summary["steps"],
                "processes": summary["processes"]}, out / f"rank{rank}.pt")


if __name__ == "__main__":  # torchrun: both variants in one launch
    run(Path(sys.argv[1]) / "synced", grad_accum=1, unsynced=False)
    run(Path(sys.argv[1]) / "unsynced", grad_accum=1, unsynced=True)
