"""The SST-2 distillation job of ``textbrewer_compare.py``, set up for the scripts that take it apart.

``sst2_recipe()`` returns a ``DistillRecipe`` after ``setup()``: recipe ``kd_hidden_mse``, the student
made of layers 0, 2 and 4 of the SST-2 teacher of ``run_all.sh`` (``runs/bench/sst2-teacher/best``),
batch 32, length 64, the shared SST-2 copy (``$BERTDISTILL_DATA``). The profiling and floor scripts under
``benchmarks/results/perf/`` (issue 11) build their runs with it, so they all take apart the same job.
"""

from __future__ import annotations

from pathlib import Path

from bertdistill.pipelines.distill import DistillConfig, DistillRecipe

TEACHER = "runs/bench/sst2-teacher/best"
KEPT = [0, 2, 4]


def sst2_recipe(output: str | Path, *, max_train_examples: int | None = None, seed: int = 3,
                cache_dir: str | Path | None = None, compact_embeddings: bool = False,
                train: dict | None = None) -> DistillRecipe:
    """The job over the first ``max_train_examples`` train phrases (all: None). With ``cache_dir`` the
    teacher cache is on, built there with eager attention (the 2.53x setting's build); else the teacher
    runs live. ``train`` overrides the TrainConfig (default: one step, no resume)."""
    config = DistillConfig(
        teacher=TEACHER, task="sst2", data=None, output=str(output), recipe="kd_hidden_mse", student_arch="same",
        student_layers=list(KEPT), temperature=4.0, max_length=64, max_train_examples=max_train_examples,
        cache_teacher=cache_dir is not None, cache_dir=str(cache_dir) if cache_dir is not None else None,
        cache_attention="eager" if cache_dir is not None else None, compact_embeddings=compact_embeddings,
        eval_batch_size=64,
        train={"max_steps": 1, "batch_size": 32, "seed": seed, "resume": False, **(train or {})},
    )
    recipe = DistillRecipe(config)
    recipe.setup()
    return recipe
