"""Started by tests/test_general_distributed.py through torch.distributed.run (2 CPU processes).

Runs the same short general distillation twice and saves each rank's student parameters:
``normal/`` as shipped (accelerate wraps the student in DDP), ``unsynced/`` with the fault
injected (accelerate's prepare returns the module unwrapped, so gradients are never
all-reduced and each rank trains on its own batches only).
"""

from __future__ import annotations

import sys
from pathlib import Path

from safetensors.torch import save_file

from bertdistill.pipelines.general_distill import GeneralDistillConfig, GeneralDistillRecipe

TRAIN = {"max_steps": 3, "batch_size": 4, "lr": 1e-3, "seed": 5, "resume": False, "log_every": 1}


def run(teacher: str, corpus: str, out: Path, *, grad_accum: int, sync: bool = True) -> dict:
    recipe = GeneralDistillRecipe(GeneralDistillConfig(teacher=teacher, corpus=corpus, output=str(out),
                                                       train={**TRAIN, "grad_accum": grad_accum}))
    recipe.setup()
    if not sync:
        recipe.accelerator.prepare = lambda *objects: objects
    recipe.train()
    return {k: v.detach().clone().contiguous() for k, v in recipe.student.state_dict().items()}


def main() -> None:
    teacher, corpus, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    for name, sync in (("normal", True), ("unsynced", False)):
        params = run(teacher, corpus, out / name, grad_accum=1, sync=sync)
        import torch.distributed as dist

        save_file(params, str(out / name / f"rank{dist.get_rank()}.safetensors"))


if __name__ == "__main__":
    main()
