"""The offline demo: fine-tune the packaged MiniLM teacher on Rotten Tomatoes, distil a
3-layer DistilBERT-style student, evaluate both on the test split, time both at batch size
1 and print a comparison table."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..bench.latency import folder_bytes, measure_latency, parameter_count
from ..data import load_task
from ..evaluation import evaluate_model
from ..models.loading import load_task_model, load_tokenizer
from ..report import build_report
from ..training.engine import TrainConfig
from .distill import DistillConfig, DistillRecipe
from .finetune import FinetuneConfig, FinetuneRecipe


def run_demo(output: str = "runs/demo", *, teacher: str = "minilm-l6", task: str = "rotten_tomatoes",
             data: str | None = None, teacher_epochs: float = 2.0, student_epochs: float = 3.0,
             max_train_examples: int | None = None, max_eval_examples: int | None = None,
             latency_runs: int = 100, batch_size: int = 32, seed: int = 42) -> dict:
    out = Path(output)
    started = time.perf_counter()
    print(f"[1/5] fine-tuning the teacher ({teacher}) on {task} ...")
    ft = FinetuneRecipe(FinetuneConfig(
        task=task, model=teacher, output=str(out / "teacher"), data=data,
        max_train_examples=max_train_examples, max_eval_examples=max_eval_examples,
        train=TrainConfig(epochs=teacher_epochs, lr=5e-5, batch_size=batch_size, seed=seed),
    )).run()
    teacher_dir = ft["best_dir"]
    print(f"[2/5] distilling a 3-layer DistilBERT-style student from {teacher_dir} ...")
    ds = DistillRecipe(DistillConfig(
        teacher=teacher_dir, task=task, output=str(out / "student"), data=data, recipe="distilbert",
        student_arch="distilbert", student_layers="every_other",
        max_train_examples=max_train_examples, max_eval_examples=max_eval_examples,
        cache_dir=str(out / "teacher_cache"),
        train={"epochs": student_epochs, "batch_size": batch_size, "seed": seed},
    )).run()
    student_dir = ds["student_dir"]

    print("[3/5] evaluating both on the test split ...")
    task_data = load_task(task, data)
    split = "test" if "test" in task_data.splits else "dev"
    examples = task_data.split(split)
    tokenizer = load_tokenizer(teacher_dir)
    rows = {}
    for name, path in (("teacher", teacher_dir), ("student", student_dir)):
        model = load_task_model(path, task_data.task)
        # the distillation run already scored both models on this split; score only if it did not
        metrics = ds[split][name] if split in ds else evaluate_model(model, tokenizer, task_data.task, examples)
        rows[name] = {"metrics": metrics, "params": parameter_count(model), "bytes": folder_bytes(path),
                      "dir": path, "model": model}

    print(f"[4/5] timing both at batch size 1 ({latency_runs} runs each) ...")
    texts = [e.text if isinstance(e.text, str) else " ".join(e.text) for e in examples[:50]]
    for row in rows.values():
        row["latency"] = measure_latency(row.pop("model"), tokenizer, texts, runs=latency_runs).as_dict()

    main = task_data.task.main_metric
    table = format_comparison(rows, main, split)
    summary = {
        "task": task, "split": split, "main_metric": main,
        "teacher": rows["teacher"], "student": rows["student"],
        "retention": rows["student"]["metrics"][main] / rows["teacher"]["metrics"][main],
        "speedup": rows["teacher"]["latency"]["median_ms"] / rows["student"]["latency"]["median_ms"],
        "run_dir": str(out.resolve()),
    }
    (out / "demo.json").write_text(json.dumps(summary, indent=2, default=str))  # kept if the report fails
    (out / "demo.txt").write_text(table + "\n")
    print("[5/5] report: accuracy and latency per format (ONNX Runtime exports made on the way), model card ...")
    report = build_report([str(out / "teacher"), str(out / "student")], out / "report",
                          formats=("pytorch-fp32", "onnx-fp32", "onnx-int8"), lengths=(64,), runs=latency_runs)
    summary["report"] = str((out / "report" / "report.md").resolve())
    summary["pareto"] = report["pareto"]
    summary["minutes"] = (time.perf_counter() - started) / 60  # the whole demo, the report included
    (out / "demo.json").write_text(json.dumps(summary, indent=2, default=str))
    # the table last, after the export logs, so that it is what stays on screen
    print(f"\n{table}\nrun directory: {out.resolve()}  ({summary['minutes']:.1f} min)", flush=True)
    return summary


def format_comparison(rows: dict, main: str, split: str) -> str:
    t, s = rows["teacher"], rows["student"]
    speedup = t["latency"]["median_ms"] / s["latency"]["median_ms"]
    lines = [
        f"{'model':<10} {main + ' (' + split + ')':>18} {'params':>12} {'size MB':>9} {'latency ms':>11} {'speed-up':>9}",
    ]
    for name, row in (("teacher", t), ("student", s)):
        lines.append(
            f"{name:<10} {row['metrics'][main]:>18.4f} {row['params']:>12,} {row['bytes'] / 1e6:>9.1f} "
            f"{row['latency']['median_ms']:>11.2f} {(speedup if name == 'student' else 1.0):>8.2f}x"
        )
    lines.append(f"retention of the teacher's {main}: {s['metrics'][main] / t['metrics'][main]:.1%}  "
                 f"(latency: median of batch-size-1 forwards, {t['latency']['threads']} threads)")
    return "\n".join(lines)
