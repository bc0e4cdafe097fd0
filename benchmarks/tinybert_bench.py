"""TinyBERT shapes, PKD / KD baselines, the three layer-wise strategies and the TextRCNN
teacher on an SST-2 subset (benchmark ``tinybert``). Each run writes <out>/<name>.json as soon as it ends,
so a partial benchmark keeps what it measured.

    python benchmarks/tinybert_bench.py --teacher DIR --data ../shared/data/sst2/glue \
        --train 2000 --epochs 1 --out benchmarks/results/tinybert --runs runs/bench/tinybert

Columns: dev accuracy (full SST-2 dev), retention (student / teacher), parameters, batch-1
CPU latency (teacher and student timed in the same process, interleaved in rounds, median
of the rounds' medians), speed-up, FLOP ratio (forward FLOPs on the same dev sentences,
FlopCounterMode: matmuls and attention), training time (wall clock of the whole run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml

from bertdistill import api
from bertdistill.bench.flops import step_flops
from bertdistill.bench.latency import measure_latency, parameter_count
from bertdistill.distill.recipe import load_recipe
from bertdistill.models.inputs import model_inputs
from bertdistill.models.loading import load_task_model, load_tokenizer
from bertdistill.data import load_task


def tinybert_variant(folder: Path, name: str, strategy: str | None) -> str:
    """tinybert_task with its stages replaced by a layer-wise strategy (a YAML beside the runs)."""
    data = load_recipe("tinybert_task").to_dict()
    data["name"] = name
    if strategy:
        data["strategy"] = strategy
    else:
        data["stages"] = [{"name": "intermediate", "terms": ["embedding_mse", "attention_mse", "hidden_mse"],
                           "transfer": True}, {"name": "prediction", "terms": ["soft_ce"]}]
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def plan(args, folder: Path) -> dict[str, dict]:
    """The runs, most important first (a partial benchmark keeps the first ones)."""
    three = {"student_layers": [0, 2, 4]}  # 3 layers of the 6-layer teacher, same width
    narrow = {"lr": args.lr_random, "epochs": args.epochs_random}
    return {
        "tinybert_4x312": dict(recipe="tinybert_task", student_config={"preset": "tinybert4"}, **narrow),
        "kd_3L": dict(recipe="kd", **three),
        "pkd_3L": dict(recipe="pkd_skip", student_layers=3),
        "tinybert_3L_two_stage": dict(recipe="tinybert_task", **three),
        "tinybert_3x192": dict(recipe="tinybert_task", student_config={"preset": "3x192"}, **narrow),
        "tinybert_3L_all_at_once": dict(recipe=tinybert_variant(folder, "tinybert_all", "all_at_once"), **three),
        "tinybert_3L_progressive": dict(recipe=tinybert_variant(folder, "tinybert_prog", "progressive"), **three),
    }


def textrcnn_plan(args, runs: Path) -> dict[str, dict]:
    """Plain and TextRCNN teachers fine-tuned on the same subset, then KD at T=5 into the same
    3-layer student (layers 1, 3, 5 of the pre-trained MiniLM, no task training)."""
    from bertdistill.models.loading import save_model
    from bertdistill.students import build_student

    init = runs / "minilm3_init"
    if not (init / "config.json").exists():
        task = load_task("sst2", args.data).task
        base = load_task_model("minilm-l6", task)
        student, _ = build_student(base, layers=[0, 2, 4])
        save_model(student, load_tokenizer("minilm-l6"), init, task=task)
    jobs = {}
    for head in ("default", "textrcnn"):
        folder = runs / f"teacher_{head}_subset"
        if not (folder / "best" / "config.json").exists():
            from bertdistill.training.engine import TrainConfig

            start = time.perf_counter()
            result = api.finetune("sst2", "minilm-l6", str(folder), args.data, head=head,
                                  max_train_examples=args.train, max_length=args.max_length, test_split=None,
                                  train=TrainConfig(epochs=args.teacher_epochs, lr=1e-4, batch_size=args.batch_size,
                                                    seed=0))
            (folder / "bench_time.json").write_text(json.dumps({"seconds": time.perf_counter() - start,
                                                                "dev": result["dev"]}))
        jobs[f"kd_T5_from_{head}_teacher"] = dict(recipe="kd_textrcnn", teacher=str(folder / "best"),
                                                  student=str(init))
    return jobs


def interleaved_latency(teacher, student, tokenizer, texts, rounds: int, runs: int, max_length: int):
    t_med, s_med = [], []
    for _ in range(rounds):
        t_med.append(measure_latency(teacher, tokenizer, texts, runs=runs, warmup=3, max_length=max_length).median_ms)
        s_med.append(measure_latency(student, tokenizer, texts, runs=runs, warmup=3, max_length=max_length).median_ms)
    return statistics.median(t_med), statistics.median(s_med)


def forward_flops(model, tokenizer, texts, max_length: int) -> int:
    model.eval()
    total = 0
    with torch.inference_mode():
        for text in texts:
            enc = dict(tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt"))
            total += step_flops(lambda: model(**model_inputs(model, enc)))
    return total


def measure(name: str, result: dict, teacher_dir: str, args, texts: list[str], seconds: float) -> dict:
    task = load_task("sst2", args.data).task
    tokenizer = load_tokenizer(teacher_dir)
    teacher = load_task_model(teacher_dir, task).eval()
    student = load_task_model(result["student_dir"], task).eval()
    t_ms, s_ms = interleaved_latency(teacher, student, tokenizer, texts, args.rounds, args.latency_runs,
                                     args.max_length)
    t_flops = forward_flops(teacher, tokenizer, texts[:50], args.max_length)
    s_flops = forward_flops(student, tokenizer, texts[:50], args.max_length)
    dev = result["dev"]
    row = {
        "name": name, "teacher": teacher_dir, "student_dir": result["student_dir"],
        "teacher_accuracy": dev["teacher"]["accuracy"], "student_accuracy": dev["student"]["accuracy"],
        "retention": dev["student"]["accuracy"] / dev["teacher"]["accuracy"],
        "teacher_params": parameter_count(teacher), "student_params": parameter_count(student),
        "student_layers": student.config.num_hidden_layers, "student_hidden": student.config.hidden_size,
        "teacher_ms": t_ms, "student_ms": s_ms, "speedup": t_ms / s_ms,
        "flop_ratio": t_flops / s_flops, "train_seconds": round(seconds, 1),
        "stages": result.get("stages"), "threads": torch.get_num_threads(),
    }
    return row


def run_one(name: str, job: dict, args, out: Path, runs: Path, texts: list[str]) -> None:
    if args.seed:
        name = f"{name}_s{args.seed}"
    if (out / f"{name}.json").exists():
        print(f"{name}: done already")
        return
    job = dict(job)
    teacher = job.pop("teacher", args.teacher)
    lr = job.pop("lr", args.lr)
    epochs = job.pop("epochs", args.epochs)
    start = time.perf_counter()
    result = api.distill(teacher, "sst2", str(runs / name), args.data, max_train_examples=args.train,
                         max_length=args.max_length, cache_dir=str(runs / "cache"), test_split=None,
                         train={"epochs": epochs, "lr": lr, "batch_size": args.batch_size, "seed": args.seed},
                         **job)
    seconds = time.perf_counter() - start
    row = measure(name, result, teacher, args, texts, seconds)
    row["command"] = " ".join(sys.argv)
    row["config"] = {"train_examples": args.train, "epochs_per_stage": epochs, "lr": lr, "seed": args.seed,
                     "batch_size": args.batch_size, "max_length": args.max_length, **{
                         k: v for k, v in job.items() if k != "recipe"}, "recipe": job["recipe"]}
    (out / f"{name}.json").write_text(json.dumps(row, indent=2, default=str))
    print(json.dumps({k: row[k] for k in ("name", "student_accuracy", "retention", "speedup",
                                          "flop_ratio", "train_seconds")}), flush=True)



def table(out: Path) -> str:
    """The markdown table of every <out>/*.json row (numbers as measured, nothing typed)."""
    lines = ["| run | student (layers/hidden) | params | dev acc | teacher dev acc | retention | "
             "batch-1 ms (teacher / student) | speed-up | FLOP ratio | training time |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for path in sorted(out.glob("*.json")):
        r = json.loads(path.read_text())
        if "student_accuracy" not in r:
            continue
        lines.append(
            f"| {r['name']} | {r['student_layers']}L/{r['student_hidden']} | {r['student_params'] / 1e6:.1f} M | "
            f"{r['student_accuracy']:.4f} | {r['teacher_accuracy']:.4f} | {100 * r['retention']:.1f} % | "
            f"{r['teacher_ms']:.1f} / {r['student_ms']:.1f} | {r['speedup']:.2f}x | {r['flop_ratio']:.2f}x | "
            f"{r['train_seconds'] / 60:.1f} min |")
    return "\n".join(lines)


def seeds_table(out: Path) -> str:
    """Mean ± standard deviation over seeds of each run (names ``<run>_s<seed>``; seed 0 has no suffix)."""
    import re

    groups: dict[str, list[dict]] = {}
    for path in sorted(out.glob("*.json")):
        r = json.loads(path.read_text())
        if "student_accuracy" in r:
            groups.setdefault(re.sub(r"_s\d+$", "", r["name"]), []).append(r)
    lines = ["| run | seeds | dev acc (mean ± sd) | per seed | retention | training time (mean) |",
             "|---|---|---|---|---|---|"]
    for name, rows in groups.items():
        acc = [r["student_accuracy"] for r in rows]
        sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
        seeds = [str(r.get("config", {}).get("seed", 0)) for r in rows]
        lines.append(f"| {name} | {', '.join(seeds)} | {statistics.mean(acc):.4f} ± {sd:.4f} | "
                     f"{' / '.join(f'{a:.4f}' for a in acc)} | "
                     f"{100 * statistics.mean(r['retention'] for r in rows):.1f} % | "
                     f"{statistics.mean(r['train_seconds'] for r in rows) / 60:.1f} min |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teacher")
    p.add_argument("--data")
    p.add_argument("--table", action="store_true", help="only print the table of --out's JSON files")
    p.add_argument("--seeds-table", action="store_true",
                   help="only print mean ± sd over seeds of --out's JSON files (runs named <run>_s<seed>)")
    p.add_argument("--train", type=int, default=2000)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-4, help="students copied from the teacher")
    p.add_argument("--lr-random", type=float, default=3e-4, help="randomly initialised narrow students")
    p.add_argument("--epochs-random", type=float, default=2.0, help="epochs per stage, random narrow students")
    p.add_argument("--teacher-epochs", type=float, default=2.0, help="the subset teachers of the TextRCNN table")
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--latency-runs", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", required=True)
    p.add_argument("--runs", help="run folders (models; outside git)")
    p.add_argument("--only", nargs="*", default=None)
    p.add_argument("--seed", type=int, default=0,
                   help="training seed, also the seed of the --train subset; a seed other than 0 adds "
                        "_s<seed> to each run's name")
    p.add_argument("--textrcnn", action="store_true", help="also the plain vs TextRCNN teacher table")
    args = p.parse_args(argv)
    if args.table or args.seeds_table:
        print(table(Path(args.out)) if args.table else seeds_table(Path(args.out)))
        return 0
    if not args.teacher or not args.data or not args.runs:
        p.error("--teacher, --data and --runs are required (except with --table)")
    torch.set_num_threads(args.threads)
    out, runs = Path(args.out), Path(args.runs)
    out.mkdir(parents=True, exist_ok=True)
    runs.mkdir(parents=True, exist_ok=True)
    dev = load_task("sst2", args.data).split("dev")
    texts = [e.text for e in dev[:200]]
    jobs = plan(args, runs)
    for name, job in list(jobs.items()) + [("textrcnn", None)]:
        if name == "textrcnn":
            if not args.textrcnn:
                continue
            for sub, job in textrcnn_plan(args, runs).items():
                if not args.only or "none" in args.only or sub in args.only:
                    run_one(sub, job, args, out, runs, texts)
            continue
        if args.only and name not in args.only:
            continue
        run_one(name, job, args, out, runs, texts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
