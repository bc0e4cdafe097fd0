"""Model cards: README.md in a saved student's folder, in the Hugging Face model-card layout.

YAML front matter (pipeline tag, library, tags, the dataset, and a ``model-index`` with the
measured dev metric) followed by sections: what the model is, its teacher and data, the recipe
and its loss terms, measured quality and speed, how to use it, and the exact command that
reproduces it.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..data.examples import TaskSpec
from .runs import RunEntry

PIPELINE_TAGS = {"classification": "text-classification", "regression": "text-classification",
                 "token_classification": "token-classification", "qa": "question-answering"}
#: task kind -> the transformers Auto class that loads the saved folder
AUTO_CLASSES = {"token_classification": "AutoModelForTokenClassification", "qa": "AutoModelForQuestionAnswering"}


def _yaml_value(value) -> str:
    return json.dumps(value)  # JSON scalars and lists are valid YAML flow values


def recipe_terms(entry: RunEntry) -> list[dict]:
    """The loss terms of the student's recipe, with the run's overrides applied."""
    from ..distill.recipe import load_recipe

    config = entry.config
    recipe = load_recipe(config.get("recipe") or entry.results.get("recipe"))
    recipe = recipe.with_overrides(temperature=config.get("temperature"), weights=config.get("weights"))
    return [{"name": t.name, "loss": t.loss, "weight": t.weight, "temperature": t.temperature,
             "student": t.student, "teacher": t.teacher, "layers": t.layers} for t in recipe.terms]


def front_matter(entry: RunEntry, task: TaskSpec, metric: str, value: float | None) -> str:
    lines = ["---", "library_name: transformers", f"pipeline_tag: {PIPELINE_TAGS.get(task.kind, 'text-classification')}",
             "tags:", "  - bertdistill", "  - knowledge-distillation", f"  - {entry.results.get('recipe', 'distillation')}",
             "datasets:", f"  - {task.name}", "model-index:", f"  - name: {entry.name}", "    results:",
             f"      - task: {{type: {PIPELINE_TAGS.get(task.kind, 'text-classification')}}}",
             f"        dataset: {{name: {task.name}, type: {task.name}, split: dev}}",
             "        metrics:"]
    if value is not None:
        lines.append(f"          - {{type: {metric}, value: {value:.4f}}}")
    else:
        lines[-1] = "        metrics: []"
    lines.append("---")
    return "\n".join(lines)


def write_model_card(entry: RunEntry, teacher: RunEntry, task: TaskSpec, model: dict, speed: list[dict]) -> Path:
    """Write ``README.md`` into the student's folder; returns its path."""
    main = task.main_metric
    value, t_value = entry.metrics.get(main), teacher.metrics.get(main)
    config = entry.config
    student = entry.results.get("student") or {}
    train = config.get("train") or {}
    lines = [front_matter(entry, task, main, value), "", f"# {entry.name}", "",
             f"A {student.get('arch', 'distilled')} student distilled with bertdistill from the teacher "
             f"`{entry.results.get('teacher')}` on the task **{task.name}** ({task.kind}; labels: "
             f"{', '.join(task.labels or (['answer spans'] if task.kind == 'qa' else ['score']))}).", "",
             "## Model", "",
             f"- architecture: {student.get('arch')}; teacher layers kept: {student.get('kept_layers')}",
             f"- parameters: {model.get('params'):,} ({model.get('params_without_embeddings'):,} without embeddings)"
             if model.get("params") else "- parameters: not measured",
             f"- size on disk: {model['bytes'] / 1e6:.1f} MB (safetensors)" if model.get("bytes") else "",
             "", "## Teacher and data", "",
             f"- teacher: `{entry.results.get('teacher')}` (dev {main} {t_value:.4f})" if t_value is not None
             else f"- teacher: `{entry.results.get('teacher')}`",
             f"- data: task `{task.name}` read from `{config.get('data') or 'the task default'}`; "
             f"train examples: {config.get('max_train_examples') or 'all'}; max length {config.get('max_length')}",
             "", "## Recipe and loss terms", "",
             f"Recipe `{entry.results.get('recipe')}`; training: {train.get('epochs')} epochs, batch size "
             f"{train.get('batch_size')}, learning rate {train.get('lr')}, seed {train.get('seed')}.", "",
             "| term | loss | weight | temperature | student feature | teacher feature | layers |",
             "|---|---|---|---|---|---|---|"]
    for t in recipe_terms(entry):
        lines.append(f"| {t['name']} | {t['loss']} | {t['weight']:g} | {t['temperature']:g} | {t['student']} | "
                     f"{t['teacher']} | {t['layers'] if t['layers'] is not None else '—'} |")
    retention = f"{value / t_value:.1%}" if value is not None and t_value else "—"
    lines += ["", "## Results (measured)", "",
              f"Dev {main}: **{value:.4f}** (teacher {t_value:.4f}, retention {retention})." if value is not None
              and t_value is not None else f"Dev {main}: {value}.", ""]
    if task.kind == "qa" and entry.metrics.get("f1") is not None:
        t_f1 = teacher.metrics.get("f1")
        lines += [f"Dev f1: **{entry.metrics['f1']:.4f}**" + (f" (teacher {t_f1:.4f})." if t_f1 is not None else "."), ""]
    if speed:
        lines += ["| format | length | median latency ms (batch 1) | speed-up vs teacher fp32 | dev " + main + " |",
                  "|---|---|---|---|---|"]
        for r in speed:
            speedup = f"{r['speedup']:.2f}x" if r["speedup"] else "—"
            metric = f"{r['metric']:.4f}" if r["metric"] is not None else "—"
            lines.append(f"| {r['format']} | {r['length']} | {r['latency_ms']:.2f} | {speedup} | {metric} |")
        lines += ["", "Latency measured on CPU with `bertdistill benchmark` (see the report for the machine)."]
    auto = AUTO_CLASSES.get(task.kind, "AutoModelForSequenceClassification")
    lines += ["", "## Use", "", "```python", f"from transformers import {auto}, AutoTokenizer",
              f"model = {auto}.from_pretrained(\"PATH\")",
              "tokenizer = AutoTokenizer.from_pretrained(\"PATH\")", "```", "",
              "For CPU serving: `bertdistill export PATH --format onnx-int8` writes an ONNX Runtime folder with a "
              "runnable `predict.py`.", ""]
    command = entry.command()
    if command:
        lines += ["## Reproduce", "", "```bash", command, "```", ""]
    path = Path(entry.model_dir) / "README.md"
    path.write_text("\n".join(line for line in lines if line is not None) + "\n", encoding="utf-8")
    return path
