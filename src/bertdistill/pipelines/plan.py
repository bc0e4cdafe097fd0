"""What a distillation run will do, said before it starts and kept in the run folder.

``check_teacher`` refuses a teacher that was never fine-tuned for a task (its head would
be random) before anything heavy is loaded. ``announce`` prints the plan of a set-up
``DistillRecipe`` (teacher, student, recipe terms with their effective weights and
temperatures, the effective training settings, data sizes) and writes it to
``<output>/run_config.json``, with a copy of a custom recipe YAML beside it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

from ..bench.latency import parameter_count
from ..distill.losses import LOSSES
from ..models.loading import LABELS_FILE, hub_errors, pretrained_kwargs, quiet_transformers, resolve_model
from .runfolder import check_recipe_run

PLAN_FILE = "run_config.json"
HEAD_SUFFIXES = ("ForSequenceClassification", "ForTokenClassification", "ForQuestionAnswering")


def check_teacher(teacher: str, *, allow_untrained: bool = False, finetune_hint: str = "") -> None:
    """Refuse a teacher without a trained task head (unless ``allow_untrained``).

    A folder saved by bertdistill holds ``labels.json``; any other checkpoint is accepted
    when its config names a classification head (a model fine-tuned elsewhere). A base
    encoder (``minilm-l6``, ``bert-base-uncased``) would get a randomly initialised head,
    and a student distilled from it learns noise: ValueError with the fine-tune command.
    """
    if allow_untrained:
        return
    source = resolve_model(teacher)
    if (Path(source) / LABELS_FILE).is_file():
        return
    from transformers import AutoConfig

    with quiet_transformers(), hub_errors(teacher):
        config = AutoConfig.from_pretrained(source, **pretrained_kwargs())
    architectures = list(getattr(config, "architectures", None) or [])
    if any(a.endswith(HEAD_SUFFIXES) for a in architectures):
        return
    shown = ", ".join(architectures) or "no architectures"
    raise ValueError(
        f"--teacher {teacher} was never fine-tuned for a task ({shown}, no {LABELS_FILE}): its "
        f"classification head would be random and the student would learn noise. Fine-tune it "
        f"first with `bertdistill finetune --model {teacher}{finetune_hint} --output runs/teacher` "
        f"and pass --teacher runs/teacher/best (or --allow-untrained-teacher to go on anyway)"
    )


def describe(recipe) -> dict:
    """The plan of a set-up ``DistillRecipe`` as a JSON-ready dict."""
    cfg, task = recipe.config, recipe.task
    info = recipe.student_info
    if info is None:  # the word-level BiLSTM student: its own vocabulary, no teacher layers
        c = recipe.student.config
        student = {"arch": "bilstm", "kept_teacher_layers": None, "from": None, "layers": 1,
                   "config": {"embeddings": c.embeddings, "embedding_dim": c.embedding_dim,
                              "hidden_size": c.hidden_size, "mlp_size": c.mlp_size, "vocabulary": c.vocab_size,
                              "frozen_embeddings": c.freeze_embeddings},
                   "parameters": parameter_count(recipe.student)}
    else:
        student = {"arch": info.arch, "kept_teacher_layers": info.kept, "from": cfg.student,
                   "config": cfg.student_config, "layers": recipe.student.config.num_hidden_layers,
                   "parameters": parameter_count(recipe.student)}
    terms = []
    for term in recipe.recipe.terms:
        row = {"name": term.name, "loss": term.loss, "weight": term.weight,
               "student": term.student, "teacher": term.teacher}
        if LOSSES[term.loss].uses_temperature:
            row["temperature"] = term.temperature
        if term.layers is not None:
            row["layers"] = term.layers if isinstance(term.layers, str) else [list(p) for p in term.layers]
        terms.append(row)
    return {
        "teacher": {"model": cfg.teacher, "layers": recipe.teacher.config.num_hidden_layers,
                    "hidden_size": recipe.teacher.config.hidden_size,
                    "parameters": parameter_count(recipe.teacher)},
        "student": student,
        "recipe": {"name": recipe.recipe.name, "source": recipe.recipe.source,
                   "overrides": recipe.recipe.overrides, "terms": terms},
        "training": {**asdict(recipe.train_config), "max_length": recipe.max_length},
        "data": {"task": task.name, "kind": task.kind, "labels": task.labels, "source": cfg.data,
                 "train": len(recipe.train_features), "dev": len(recipe.dev_features),
                 **{s: len(e) for s, e in recipe.data.splits.items() if s not in ("train", "dev")}},
        # planned before the cache is built (DistillRecipe.cache_plan: the cache's root folder), else as built
        "teacher_cache": getattr(recipe, "cache_plan", None) or {
            "enabled": recipe.cache is not None, "path": str(recipe.cache.path) if recipe.cache is not None else None},
        "output": str(recipe.output),
    }


def format_plan(plan: dict) -> str:
    t, s, r, tr, d = plan["teacher"], plan["student"], plan["recipe"], plan["training"], plan["data"]
    kept = f", kept teacher layers {s['kept_teacher_layers']}" if s["kept_teacher_layers"] else ""
    lines = [
        f"distill plan (also in {Path(plan['output']) / PLAN_FILE}):",
        f"  teacher   {t['model']}: {t['layers']} layers, hidden {t['hidden_size']}, {t['parameters']:,} parameters",
        f"  student   {s['arch']}: {s['layers']} layers{kept}, {s['parameters']:,} parameters "
        f"({s['parameters'] / t['parameters']:.0%} of the teacher)",
        f"  recipe    {r['name']} ({r['source']})" + (f", overrides {r['overrides']}" if r["overrides"] else ""),
    ]
    for term in r["terms"]:
        temp = f", T={term['temperature']:g}" if "temperature" in term else ""
        lines.append(f"    term {term['name']:<14} {term['loss']:<14} weight {term['weight']:g}{temp}")
    lines.append(
        f"  training  epochs {tr['epochs']:g}, max_steps {tr['max_steps']}, batch {tr['batch_size']} x "
        f"accum {tr['grad_accum']}, lr {tr['lr']:g}, warmup {tr['warmup_ratio']:g}, weight decay "
        f"{tr['weight_decay']:g}, max length {tr['max_length']}, seed {tr['seed']}, precision "
        f"{tr['mixed_precision']} (recipe defaults, then your flags)"
    )
    lines.append(f"  cpu       dropout draws {tr['dropout_draws']}, "
                 f"allocator {tr['cpu_allocator']} (--dropout-draws, --cpu-allocator)")
    extra = "".join(f", {k} {v}" for k, v in d.items() if k not in ("task", "kind", "labels", "source", "train", "dev"))
    lines.append(f"  data      {d['task']} ({d['kind']}{', labels ' + ','.join(d['labels']) if d['labels'] else ''}): "
                 f"train {d['train']}, dev {d['dev']}{extra}")
    lines.append(f"  cache     {'teacher outputs cached in ' + plan['teacher_cache']['path'] if plan['teacher_cache']['enabled'] else 'teacher runs live'}")
    return "\n".join(lines)


def announce(recipe) -> dict:
    """Print the plan of a set-up ``DistillRecipe`` and write it into its output folder, once
    the run is known to fit the checkpoint the folder holds (nothing is written otherwise)."""
    check_recipe_run(recipe)
    if not recipe.accelerator.is_main_process:
        return {}
    plan = describe(recipe)
    out = Path(recipe.output)
    out.mkdir(parents=True, exist_ok=True)
    source = Path(recipe.recipe.source)
    copy = out / f"recipe{source.suffix or '.yaml'}"
    if source.is_file():  # a custom recipe: keep the exact file beside the plan
        if not (copy.exists() and copy.samefile(source)):  # a stage's recipe already lives there
            shutil.copyfile(source, copy)
        plan["recipe"]["copy"] = str(copy)
    write_json_atomic(out / PLAN_FILE, plan)
    print(format_plan(plan), flush=True)
    return plan


def write_json_atomic(path: Path, data) -> None:
    """Write JSON through a temporary file and a rename: a kill never leaves half a file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, default=str)
    os.replace(tmp, path)


def report(recipe, results: dict, *, latency_runs: int = 30, output: str | Path | None = None) -> dict:
    """After a run: the student's folder, retention of the teacher's metric, and both models'
    size and batch-1 latency (median of ``latency_runs`` forwards, timed interleaved in this
    process). Printed, added to ``results`` and to ``<output>/results.json`` (default: the
    recipe's output folder; a staged run passes its top folder)."""
    from ..bench.latency import folder_bytes, measure_latency
    from ..models.loading import load_task_model
    from ..students.bilstm import is_bilstm_dir, load_bilstm

    if not results or not results.get("student_dir"):
        return results
    main = recipe.task.main_metric
    split = next((s for s in (recipe.config.eval_split, recipe.config.test_split) if s in results), None)
    if is_bilstm_dir(results["student_dir"]):  # reads its own word vocabulary
        student, student_tokenizer = load_bilstm(results["student_dir"])
        if student.config.pair:  # timed on single texts below, which a pair BiLSTM cannot read
            latency_runs = 0
    else:
        student, student_tokenizer = load_task_model(results["student_dir"], recipe.task), recipe.tokenizer
    teacher_dir = resolve_model(recipe.config.teacher)
    teacher = load_task_model(teacher_dir, recipe.task)  # loaded the same way as the student
    sizes = {"teacher": {"parameters": parameter_count(teacher), "bytes": folder_bytes(teacher_dir)},
             "student": {"parameters": parameter_count(student), "bytes": folder_bytes(results["student_dir"])}}
    if latency_runs:
        examples = recipe.data.splits.get("dev") or recipe.data.split("train")
        texts = [e.text if isinstance(e.text, str) else " ".join(e.text) for e in examples[:50]]
        if recipe.task.kind == "qa":  # question and context, as a window reads them
            texts = [f"{e.text} {e.text_pair}" for e in examples[:50]]
        for _ in range(2):  # interleaved: teacher, student, teacher, student
            for who, model, tokenizer in (("teacher", teacher, recipe.tokenizer),
                                          ("student", student, student_tokenizer)):
                lat = measure_latency(model, tokenizer, texts, runs=max(1, latency_runs // 2), warmup=3,
                                      max_length=recipe.max_length)
                sizes[who].setdefault("latency_ms", []).append(lat.median_ms)
        for row in sizes.values():
            row["latency_ms"] = min(row["latency_ms"])
    summary = {"student_dir": results["student_dir"], "split": split, "metric": main, **sizes}
    if split:
        summary["retention"] = results[split]["retention"]
    kind = "a bertdistill BiLSTM folder" if is_bilstm_dir(results["student_dir"]) else "a plain Hugging Face checkpoint"
    lines = [f"student saved in {results['student_dir']} ({kind})"]
    if split:
        row = results[split]
        lines.append(f"{main} ({split}): student {row['student'][main]:.4f} vs teacher {row['teacher'][main]:.4f}"
                     f" = {row['retention']:.1%} retention" if row["retention"] is not None else
                     f"{main} ({split}): student {row['student'][main]:.4f}, teacher 0")
    t, s = sizes["teacher"], sizes["student"]
    lines.append(f"size: student {s['parameters']:,} parameters ({s['bytes'] / 1e6:.1f} MB) vs teacher "
                 f"{t['parameters']:,} ({t['bytes'] / 1e6:.1f} MB) = {s['parameters'] / t['parameters']:.0%}")
    if latency_runs:
        lines.append(f"batch-1 latency (CPU, median): student {s['latency_ms']:.2f} ms vs teacher "
                     f"{t['latency_ms']:.2f} ms = {t['latency_ms'] / s['latency_ms']:.2f}x faster")
    print("\n".join(lines), flush=True)
    results["summary"] = summary
    write_json_atomic(Path(output or recipe.output) / "results.json", results)
    return results
