"""Started by tests/test_distributed.py under torchrun (2 CPU processes, gloo).

A small sequence model with dropout trains on examples of varying lengths, so the two
ranks draw dropout masks of different sizes and their RNG states drift apart. In one
launch, each rank writes what it computed and its final weights for:

* ``straight/``: 8 optimizer steps, never interrupted;
* ``resumed/``: the same run stopped while computing step 4 (its last checkpoint is step 2),
  then a fresh ``TrainLoop`` in the same folder, which resumes and finishes;
* ``one_rng/``: a copy of the stopped run resumed with the fault injected that every rank
  restores rank 0's RNG state (as when one state is saved for all).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from bertdistill.training import engine
from bertdistill.training.engine import TrainConfig, TrainLoop

L2_WEIGHT = 0.5  # loss = mse + L2_WEIGHT * l2; the logged parts must combine the same way
STOP_AT_CALL = 4


class SeqNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(3, 8)
        self.drop = torch.nn.Dropout(0.3)
        self.b = torch.nn.Linear(8, 1)

    def forward(self, x):
        return self.b(self.drop(torch.tanh(self.a(x))).mean(1)).squeeze(-1)


def features() -> list[dict]:
    g = torch.Generator().manual_seed(1)
    out = []
    for i in range(40):
        n = 2 + (i * 7) % 5
        x = torch.randn(n, 3, generator=g)
        out.append({"input_ids": [1] * n, "x": x.tolist(), "y": float(x[:, 0].mean() - x[:, 1].sum())})
    return out


def collate(items):
    width = max(len(f["x"]) for f in items)
    x = torch.zeros(len(items), width, 3)
    for row, f in enumerate(items):
        x[row, : len(f["x"])] = torch.tensor(f["x"])
    return {"x": x, "y": torch.tensor([f["y"] for f in items])}


class Stopped(Exception):
    """Raised on every rank at the same step: the run ends there, as if killed."""


def run(out: Path, *, stop: bool = False) -> None:
    seen: list[float] = []

    def loss_step(module, batch):
        if stop and len(seen) + 1 == STOP_AT_CALL:
            raise Stopped
        pred = module(batch["x"])
        mse, l2 = (pred - batch["y"]).pow(2).mean(), pred.pow(2).mean()
        loss = mse + L2_WEIGHT * l2
        seen.append(float(loss.detach()))
        return loss, {"mse": float(mse.detach()), "l2": float(l2.detach())}

    torch.manual_seed(0)
    model = SeqNet()
    cfg = TrainConfig(max_steps=8, batch_size=4, lr=0.05, warmup_ratio=0.0, seed=3, save_every=2, log_every=3)
    loop = TrainLoop(model, features(), collate, loss_step, config=cfg, output_dir=out)
    rank = loop.accelerator.process_index
    try:
        loop.train()
    except Stopped:
        return
    finally:
        (out / f"seen_rank{rank}.json").write_text(json.dumps(seen))
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()},
              str(out / f"weights_rank{rank}.safetensors"))


def main() -> None:
    import torch.distributed as dist

    root = Path(sys.argv[1])
    run(root / "straight")
    run(root / "resumed", stop=True)
    if dist.get_rank() == 0:
        shutil.copytree(root / "resumed", root / "one_rng")
    dist.barrier()
    run(root / "resumed")

    load = engine.load_checkpoint
    engine.load_checkpoint = lambda *a, **k: load(*a, **{**k, "rank": 0})  # the fault: rank 0's RNG everywhere
    try:
        run(root / "one_rng")
    finally:
        engine.load_checkpoint = load


if __name__ == "__main__":
    main()
