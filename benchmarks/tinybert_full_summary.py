"""One JSON line of a two-stage tinybert_task run (benchmarks/tinybert_full.sh): dev and test
accuracy of teacher and student, retention, each stage's steps and seconds, and the whole
command's wall time and peak memory from ``/usr/bin/time -v``.

Usage: python benchmarks/tinybert_full_summary.py RUN_DIR TIME_V_STDERR
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path


def wall_seconds(text: str) -> float | None:
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", text)
    if not m:
        return None
    h, mnt, s = m.groups()
    return 3600 * int(h or 0) + 60 * int(mnt) + float(s)


def summary(run: Path, err: Path) -> dict:
    result = json.loads((run / "results.json").read_text())
    stages = [json.loads(p.read_text()) for p in sorted(run.glob("0*/stage.json"))]
    text = err.read_text(errors="replace") if err.exists() else ""
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    dev, test = result["dev"], result.get("test", {})
    return {
        "run": run.name, "command": result.get("command"), "seed": result["config"]["train"].get("seed"),
        "student": json.loads(sorted(run.glob("0*/run_config.json"))[0].read_text())["student"],
        "dev": {"teacher": dev["teacher"]["accuracy"], "student": dev["student"]["accuracy"],
                "retention": dev["retention"]},
        "test": {"teacher": test["teacher"]["accuracy"], "student": test["student"]["accuracy"],
                 "retention": test["retention"]} if test else None,
        "stages": [{k: s.get(k) for k in ("stage", "steps", "seconds", "best_dev")} for s in stages],
        "wall_seconds": wall_seconds(text), "max_rss_mb": int(rss.group(1)) / 1024 if rss else None,
    }


if __name__ == "__main__":
    print(json.dumps(summary(Path(sys.argv[1]), Path(sys.argv[2])), indent=1))
