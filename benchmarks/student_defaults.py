"""Benchmark ``student-defaults`` (benchmarks/RESULTS.md, "Reliability"): which layers a
one-out-of-two student keeps, and which architecture a student gets on a sentence-pair task.

    python benchmarks/student_defaults.py layers --teacher T --task sst2 --data D/sst2/glue \
        --variants every_other every_other_last --train 8000 --epochs 1 --max-length 64 --seeds 1 2 --out X.json
    python benchmarks/student_defaults.py pairs --teacher T --task mrpc --data D/glue/MRPC \
        --variants same distilbert --epochs 2 --max-length 128 --seeds 1 --out Y.json

Every run is the distilbert recipe through ``bertdistill.api.distill`` (dev split scored,
test skipped); the JSON is rewritten after each run so that a partial grid survives.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bertdistill import api


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["layers", "pairs"])
    p.add_argument("--teacher", required=True)
    p.add_argument("--task", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--variants", nargs="+", required=True)
    p.add_argument("--train", type=int, default=None, help="seeded subset of the train split")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--seeds", type=int, nargs="+", default=[1])
    p.add_argument("--work", default="runs/student_defaults")
    p.add_argument("--out", required=True)
    a = p.parse_args()

    rows = []
    for seed in a.seeds:
        for variant in a.variants:
            options = ({"student_layers": variant} if a.what == "layers"
                       else {"student_arch": variant, "student_layers": "every_other_last"})
            out = Path(a.work) / f"{a.what}-{a.task}-{variant}-s{seed}"
            started = time.perf_counter()
            result = api.distill(a.teacher, a.task, str(out), a.data, recipe="distilbert", test_split=None,
                                 max_length=a.max_length, max_train_examples=a.train,
                                 cache_dir=str(Path(a.work) / "cache"),
                                 train={"epochs": a.epochs, "lr": a.lr, "batch_size": a.batch_size, "seed": seed,
                                        "resume": False},
                                 **options)
            dev = result["dev"]
            rows.append({"variant": variant, "seed": seed, "arch": result["student"]["arch"],
                         "kept_layers": result["student"]["kept_layers"], "student_dev": dev["student"],
                         "teacher_dev": dev["teacher"], "retention": dev["retention"],
                         "train_steps": result["train"]["steps"], "wall_seconds": time.perf_counter() - started})
            Path(a.out).parent.mkdir(parents=True, exist_ok=True)
            Path(a.out).write_text(json.dumps({"what": a.what, "args": vars(a), "runs": rows}, indent=2))
            print(json.dumps(rows[-1]), flush=True)


if __name__ == "__main__":
    main()
