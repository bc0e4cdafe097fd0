"""The public Python API. The CLI only parses arguments and calls these functions."""

from __future__ import annotations

import json
from pathlib import Path

from .data import load_task
from .metrics import format_metrics
from .pipelines.distill import DistillConfig, DistillRecipe
from .pipelines.finetune import FinetuneConfig, FinetuneRecipe
from .training.engine import TrainConfig


def finetune(task: str, model: str, output: str, data: str | None = None, *, train: TrainConfig | None = None,
             **options) -> dict:
    """Fine-tune ``model`` on ``task``; the best dev checkpoint lands in ``output/best``."""
    config = FinetuneConfig(task=task, model=model, output=output, data=data, **options)
    if train is not None:
        config.train = train
    return FinetuneRecipe(config).run()


def distill(teacher: str, task: str, output: str, data: str | None = None, *, recipe: str = "distilbert",
            **options) -> dict:
    """Distil a fine-tuned ``teacher`` into a student; the best student lands in ``output/student``."""
    return DistillRecipe(DistillConfig(teacher=teacher, task=task, output=output, data=data, recipe=recipe,
                                       **options)).run()


def evaluate(model: str, task: str, data: str | None = None, *, split: str = "dev", output: str | None = None,
             batch_size: int = 64, max_length: int = 128, skip_bad_rows: bool = False) -> dict:
    """Evaluate a saved model on one split; prints the metrics table, writes JSON if asked."""
    from .evaluation import evaluate_model
    from .export.runtime import load_for_inference
    from .models.loading import load_tokenizer

    task_data = load_task(task, data, skip_bad_rows=skip_bad_rows)
    examples = task_data.split(split)
    if any(e.label is None for e in examples):
        raise ValueError(f"the {split!r} split of {task!r} has no labels; evaluate on a labelled split")
    tokenizer = load_tokenizer(model)
    net = load_for_inference(model, task_data.task)  # a saved PyTorch model or an exported ONNX folder
    metrics = evaluate_model(net, tokenizer, task_data.task, examples, batch_size=batch_size, max_length=max_length)
    print(format_metrics(task_data.task, metrics, title=f"{task} {split} ({model})"))
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(json.dumps({"task": task, "split": split, "model": model, "metrics": metrics}, indent=2))
    return metrics


def embed(model: str, task: str, data: str | None = None, *, pooling: str = "cls", output: str | None = None,
          **options) -> dict:
    """Feature-extraction baseline: frozen encoder + logistic regression."""
    from .embed import embed_baseline

    result = embed_baseline(model, load_task(task, data), pooling=pooling, **options)
    if output:
        Path(output).write_text(json.dumps(result, indent=2, default=str))
    return result


def demo(output: str = "runs/demo", **options) -> dict:
    """The README's main job: teacher fine-tune, student distillation, comparison table."""
    from .pipelines.demo import run_demo

    return run_demo(output, **options)
