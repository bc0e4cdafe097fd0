"""Mean and spread over seeds of full-epoch TextBrewer comparisons (benchmark ``textbrewer``).

Reads the ``textbrewer_compare.json`` of each seed's run (``benchmarks/textbrewer_compare.py
--epochs 1 --seed S``) and prints, per run (``tb_dynamic``, ``ours_cache``, ...), the dev
accuracy and training-loop time as mean ± standard deviation, and the end-to-end speed-up
(bertdistill's cache build + training loop against TextBrewer's training loop). Each
bertdistill run's loop is also set against TextBrewer's loop of the same seed; for the runs
with a live teacher (``ours_live``, ``ours_live_random``) there is no cache to build, so that
ratio is their end-to-end speed-up. Each
bertdistill run's dev accuracy is set against TextBrewer's: the difference of the means with
its 95 % confidence interval from Welch's t (unequal variances, Welch-Satterthwaite degrees
of freedom); the seeds of the two tools are not paired, their random streams differ::

    python benchmarks/textbrewer_seeds.py benchmarks/results/textbrewer/bf16-s{42,1,2}.json \\
        --output benchmarks/results/textbrewer/bf16-seeds.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path


def mean_sd(values: list[float]) -> dict:
    return {"mean": statistics.mean(values), "sd": statistics.stdev(values) if len(values) > 1 else None,
            "values": values}


def welch(ours: list[float], theirs: list[float], level: float = 0.95) -> dict:
    """``mean(ours) - mean(theirs)``, Welch's t and degrees of freedom, and the two-sided
    ``level`` confidence interval of the difference (needs two values on each side)."""
    from scipy.stats import t as student_t

    n1, n2 = len(ours), len(theirs)
    if n1 < 2 or n2 < 2:
        raise ValueError(f"Welch's t needs at least two values on each side, got {n1} and {n2}")
    v1, v2 = statistics.variance(ours) / n1, statistics.variance(theirs) / n2
    diff = statistics.mean(ours) - statistics.mean(theirs)
    se = math.sqrt(v1 + v2)
    df = (v1 + v2) ** 2 / (v1 ** 2 / (n1 - 1) + v2 ** 2 / (n2 - 1)) if se else float(n1 + n2 - 2)
    half = float(student_t.ppf(0.5 + level / 2, df)) * se
    return {"difference": diff, "t": diff / se if se else 0.0, "df": df, "level": level,
            "interval": [diff - half, diff + half], "n": [n1, n2]}


#: bertdistill runs that build no teacher cache: their training loop is their whole job
LIVE_RUNS = ("ours_live", "ours_live_random")


def summarise(paths: list[str]) -> dict:
    seeds, runs, loop_ratio, e2e = [], {}, {}, {"textbrewer_seconds": [], "bertdistill_seconds": [], "speedup": [],
                                "bertdistill_cache_build_seconds": []}
    for path in paths:
        d = json.loads(Path(path).read_text())
        if d.get("benchmark") != "textbrewer_compare":
            raise SystemExit(f"{path}: not a textbrewer_compare result")
        seeds.append(d["settings"]["seed"])
        for name, r in d["runs"].items():
            runs.setdefault(name, {"dev_accuracy": [], "train_seconds": []})
            runs[name]["dev_accuracy"].append(r["dev_accuracy"])
            runs[name]["train_seconds"].append(r["train_seconds"])
            if name != "tb_dynamic":
                loop_ratio.setdefault(name, []).append(d["runs"]["tb_dynamic"]["train_seconds"] / r["train_seconds"])
        for key in e2e:
            e2e[key].append(d["end_to_end"][key])
    counts = {name: len(r["dev_accuracy"]) for name, r in runs.items()}
    base = runs.get("tb_dynamic", {}).get("dev_accuracy", [])
    against = {name: welch(r["dev_accuracy"], base) for name, r in runs.items()
               if name != "tb_dynamic" and len(r["dev_accuracy"]) > 1 and len(base) > 1}
    return {"seeds": seeds, "files": paths, "runs_per_name": counts,
            "runs": {name: {k: mean_sd(v) for k, v in r.items()} for name, r in runs.items()},
            "dev_against_textbrewer": against,
            "textbrewer_loop_over_this_loop": {name: mean_sd(v) for name, v in loop_ratio.items()},
            "end_to_end": {k: mean_sd(v) for k, v in e2e.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", nargs="+", help="textbrewer_compare.json of each seed")
    ap.add_argument("--output", required=True)
    a = ap.parse_args()
    s = summarise(a.results)
    for name, r in s["runs"].items():
        acc, sec = r["dev_accuracy"], r["train_seconds"]
        print(f"{name}: dev {acc['mean']:.4f} ± {acc['sd'] or 0:.4f}, training loop {sec['mean']:.0f} ± "
              f"{sec['sd'] or 0:.0f} s ({len(acc['values'])} seeds)")
    for name, w in s["dev_against_textbrewer"].items():
        lo, hi = w["interval"]
        print(f"{name} - tb_dynamic: dev {100 * w['difference']:+.2f} point, {w['level']:.0%} interval "
              f"[{100 * lo:+.2f}, {100 * hi:+.2f}] (Welch t {w['t']:.2f}, df {w['df']:.1f})")
    for name, r in s["textbrewer_loop_over_this_loop"].items():
        what = "no cache to build: end to end" if name in LIVE_RUNS else "loop only, cache build not counted"
        print(f"{name}: TextBrewer's loop / this loop = {r['mean']:.2f}x ± {r['sd'] or 0:.2f} ({what})")
    e = s["end_to_end"]
    print(f"end to end: TextBrewer {e['textbrewer_seconds']['mean']:.0f} s, bertdistill "
          f"{e['bertdistill_seconds']['mean']:.0f} s (cache build {e['bertdistill_cache_build_seconds']['mean']:.0f} s): "
          f"{e['speedup']['mean']:.2f}x ± {e['speedup']['sd'] or 0:.2f} (seeds {', '.join(map(str, s['seeds']))})")
    Path(a.output).parent.mkdir(parents=True, exist_ok=True)
    Path(a.output).write_text(json.dumps(s, indent=1) + "\n")


if __name__ == "__main__":
    main()
