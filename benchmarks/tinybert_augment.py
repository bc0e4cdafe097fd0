"""What TinyBERT's data augmentation gives its task distillation on a small GLUE task.

Fine-tunes the MiniLM-L6 teacher on the task (once), writes TinyBERT's augmented transfer set
(`bertdistill augment --method tinybert`, once), then runs the `tinybert_task` recipe (both
stages) into a 3-layer student copied from teacher layers 1, 3, 5, with and without the
augmented set, for each seed. Writes one JSON per run and a summary (mean ± sd per variant)
under --out.

    python benchmarks/tinybert_augment.py --task cola --data ../shared/data/glue/CoLA \
        --work runs/bench/tinybert-augment --out benchmarks/results/tinybert-augment --seeds 1 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import bertdistill


def teacher(args, work: Path) -> Path:
    best = work / "teacher" / "best"
    if not best.is_dir():
        bertdistill.finetune(args.task, model="minilm-l6", output=str(work / "teacher"), data=args.data,
                             max_length=args.max_length,
                             train={"epochs": 3, "batch_size": 32, "lr": 5e-5, "seed": 42})
    return best


def transfer_set(args, work: Path) -> tuple[Path, float | None]:
    path = work / f"transfer-tinybert-c{args.copies}.jsonl"
    if path.is_file():
        return path, None
    start = time.perf_counter()
    command = ["bertdistill", "augment", "--task", args.task, "--data", args.data, "--method", "tinybert",
               "--copies", str(args.copies), "--seed", "0", "--output", str(path)]
    if args.subset:
        command += ["--subset", str(args.subset)]
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True)
    return path, round(time.perf_counter() - start, 1)


def metric_of(result: dict, split: str, main: str) -> dict:
    row = result[split]
    return {"student": row["student"][main], "teacher": row["teacher"][main]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="cola")
    p.add_argument("--data", default="../shared/data/glue/CoLA")
    p.add_argument("--metric", default="matthews", help="the task metric to report")
    p.add_argument("--work", default="runs/bench/tinybert-augment", help="models and run folders (outside git)")
    p.add_argument("--out", default="benchmarks/results/tinybert-augment")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    p.add_argument("--copies", type=int, default=4, help="augmented copies per training sentence")
    p.add_argument("--subset", type=int, default=None, help="augment only this many training sentences")
    p.add_argument("--epochs", type=float, default=2.0, help="epochs per stage, with and without augmentation")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--max-length", type=int, default=64)
    args = p.parse_args(argv)
    work, out = Path(args.work), Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)

    best = teacher(args, work)
    transfer, augment_seconds = transfer_set(args, work)
    rows = sum(1 for _ in transfer.open(encoding="utf-8"))
    runs = {}
    for seed in args.seeds:
        for variant, data in (("no-augmentation", None), ("augmented", transfer)):
            name = f"{variant}-s{seed}"
            target = out / f"{name}.json"
            if target.is_file():
                runs[name] = json.loads(target.read_text())
                continue
            start = time.perf_counter()
            result = bertdistill.distill(
                str(best), task=args.task, data=args.data, recipe="tinybert_task", output=str(work / name),
                max_length=args.max_length, cache_dir=str(work / "cache"), latency_runs=0,
                transfer_data=str(data) if data else None,
                train={"epochs": args.epochs, "lr": args.lr, "batch_size": 32, "seed": seed})
            record = {"variant": variant, "seed": seed, "dev": metric_of(result, "dev", args.metric),
                      "stages": result.get("stages"), "seconds": round(time.perf_counter() - start, 1)}
            target.write_text(json.dumps(record, indent=2) + "\n")
            runs[name] = record
    summary = {"task": args.task, "metric": args.metric, "copies": args.copies, "subset": args.subset,
               "transfer_rows": rows, "augment_seconds": augment_seconds, "epochs_per_stage": args.epochs,
               "lr": args.lr, "max_length": args.max_length, "seeds": args.seeds, "variants": {}}
    for variant in ("no-augmentation", "augmented"):
        values = [runs[f"{variant}-s{s}"]["dev"]["student"] for s in args.seeds]
        summary["variants"][variant] = {
            "dev": values, "mean": statistics.mean(values),
            "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "teacher": runs[f"{variant}-s{args.seeds[0]}"]["dev"]["teacher"]}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    for variant, row in summary["variants"].items():
        print(f"{variant:16s} dev {args.metric} {row['mean']:.4f} ± {row['sd']:.4f} "
              f"({' / '.join(f'{v:.4f}' for v in row['dev'])}); teacher {row['teacher']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
