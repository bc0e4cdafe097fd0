"""Mean and spread over seeds of SST-2 student runs (benchmark ``sst2-student``).

Reads each run's ``results.json`` (written by ``bertdistill distill``) and writes one JSON with the
per-seed dev / test accuracies and training-loop times, plus their mean and standard deviation::

    python benchmarks/seed_spread.py grouped=runs/bench/sst2-student-default-s42,runs/bench/sst2-student-default-s1,... \\
        shuffled=runs/bench/sst2-student-shuffled-s42,... --output benchmarks/results/sst2-student/grouped-vs-shuffled-seeds.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def summarise(run_dirs: list[str]) -> dict:
    rows = []
    for folder in run_dirs:
        path = Path(folder) / "results.json"
        if not path.is_file():
            raise SystemExit(f"{path}: no results.json (did the run finish?)")
        d = json.loads(path.read_text())
        rows.append({"run": folder, "seed": d["config"]["train"].get("seed", 42),
                     "dev": d["dev"]["student"]["accuracy"], "test": d["test"]["student"]["accuracy"],
                     "train_seconds": d["train"]["train_seconds"], "samples_per_s": d["train"]["samples_per_s"],
                     "best_step": d["train"]["best_step"]})
    out = {"runs": rows}
    for key in ("dev", "test", "train_seconds"):
        values = [r[key] for r in rows]
        out[key] = {"mean": statistics.mean(values), "sd": statistics.stdev(values) if len(values) > 1 else None}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("groups", nargs="+", help="NAME=RUN_DIR,RUN_DIR,...")
    ap.add_argument("--output", required=True)
    a = ap.parse_args()
    result = {}
    for group in a.groups:
        name, sep, dirs = group.partition("=")
        if not sep or not dirs:
            raise SystemExit(f"{group!r}: expected NAME=RUN_DIR,RUN_DIR,...")
        result[name] = summarise(dirs.split(","))
        s = result[name]
        print(f"{name}: dev {s['dev']['mean']:.4f} ± {s['dev']['sd'] or 0:.4f}, test {s['test']['mean']:.4f} ± "
              f"{s['test']['sd'] or 0:.4f}, training loop {s['train_seconds']['mean']:.0f} s "
              f"({len(s['runs'])} seeds: {', '.join(str(r['seed']) for r in s['runs'])})")
    Path(a.output).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
