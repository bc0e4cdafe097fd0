"""The end-of-run verdict: did the trained model learn the task?

A run can end without an error and still have produced a useless model: a student that
predicts one class for every input scores exactly what a constant answer scores. After a
fine-tuning or distillation run the model's main dev metric is compared with

* the best constant answer (classification): the metric of predicting one class for every
  example of the split, for the class that scores highest (the majority class for accuracy);
* the teacher (distillation): below ``RETENTION_FLOOR`` of the teacher's metric is flagged.

A flagged run is said in a WARNING on stderr with what to change, and recorded in results.json.
"""

from __future__ import annotations

import sys

from ..metrics import compute_metrics

RETENTION_FLOOR = 0.9  # a student below 90 % of its teacher's metric is flagged
TOLERANCE = 1e-9


def constant_baseline(task, references: list) -> dict | None:
    """{"label", "score"}: the best main-metric score of one class predicted for all ``references``.

    None for tasks that are not sentence classification or when there is nothing to score.
    """
    if task.kind != "classification" or not references:
        return None
    best = None
    for class_id, name in enumerate(task.labels):
        score = compute_metrics(task, [class_id] * len(references), references)[task.main_metric]
        if best is None or score > best["score"]:
            best = {"label": name, "score": float(score)}
    return best


def judge(metric: str, score: float, *, baseline: dict | None = None, teacher: float | None = None,
          who: str = "student") -> list[str]:
    """What is wrong with ``score`` (the model's ``metric`` on dev): an empty list when nothing."""
    problems = []
    if baseline is not None and score <= baseline["score"] + TOLERANCE:
        problems.append(f"the {who}'s {metric} ({score:.4f}) is no better than always answering "
                        f"{baseline['label']!r} ({baseline['score']:.4f}): it has not learned the task")
    if teacher is not None and teacher > 0 and score < RETENTION_FLOOR * teacher:
        problems.append(f"the {who}'s {metric} ({score:.4f}) is {score / teacher:.1%} of the teacher's "
                        f"({teacher:.4f}), below {RETENTION_FLOOR:.0%}")
    if teacher is not None and baseline is not None and teacher <= baseline["score"] + TOLERANCE:
        problems.append(f"the teacher's {metric} ({teacher:.4f}) is no better than that constant answer either: "
                        "fine-tune the teacher further first (bertdistill finetune)")
    return problems


def training_numbers(config, steps: int, rows: int) -> dict:
    """What ``advice`` reads from a run: its TrainConfig, the optimizer steps made, the train rows."""
    return {"rows": rows, "steps": steps, "epochs": config.epochs, "max_steps": config.max_steps,
            "batch_size": config.batch_size, "lr": config.lr}


def advice(training: dict) -> str:
    """What to change, from the run's training numbers (``training_numbers``)."""
    epochs, batch, lr = training["epochs"], training["batch_size"], training["lr"]
    if training.get("max_steps"):
        options = [f"more steps (--max-steps {2 * training['steps']})"]
    else:
        options = [f"more epochs (--epochs {max(2 * epochs, epochs + 5):g})"]
    if batch > 8:
        options.append(f"a smaller batch (--batch-size {max(8, batch // 2)})")
    options.append(f"a higher learning rate (--lr {2 * lr:g})")
    length = f"max steps {training['max_steps']}" if training.get("max_steps") else f"{epochs:g} epochs"
    return (f"it trained for {training['steps']} optimizer steps on {training['rows']} rows ({length}, "
            f"batch {batch}, lr {lr:g}); try {', '.join(options[:-1])} or {options[-1]}")


def verdict(task, score: float, references: list, training: dict, *, teacher: float | None = None,
            split: str = "dev", who: str = "student") -> dict:
    """The verdict of a finished run (JSON-ready), warned about on stderr when something is wrong."""
    metric = task.main_metric
    baseline = constant_baseline(task, references)
    problems = judge(metric, score, baseline=baseline, teacher=teacher, who=who)
    result = {
        "ok": not problems, "split": split, "metric": metric, who: score, "constant_baseline": baseline,
        "teacher": teacher, "retention": score / teacher if teacher else None,
        "retention_floor": RETENTION_FLOOR if teacher is not None else None,
        "problems": problems, "advice": advice(training) if problems else None,
    }
    if problems:
        text = result["advice"]
        print(f"bertdistill: WARNING: on {split}, {'; '.join(problems)}. {text[0].upper()}{text[1:]}. "
              "(results.json: \"verdict\")", file=sys.stderr, flush=True)
    return result
