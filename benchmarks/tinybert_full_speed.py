"""Batch-1 CPU speed-up and FLOP ratio of the students of benchmarks/tinybert_full.sh against
their teacher, measured the way tinybert_bench.py measures its rows (teacher and student in
one process, interleaved in rounds over the first 200 SST-2 dev sentences, median of the
rounds' medians; forward FLOPs on the first 50 of them).

    python benchmarks/tinybert_full_speed.py --teacher runs/bench/sst2-teacher/best \
        --data ../shared/data/sst2/glue --output benchmarks/results/tinybert-full/speed.json \
        runs/bench/tinybert-full/tb4_gd_full_s1 runs/bench/tinybert-full/tb4_full_s1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tinybert_bench import forward_flops, interleaved_latency  # noqa: E402

from bertdistill.bench.latency import parameter_count  # noqa: E402
from bertdistill.data import load_task  # noqa: E402
from bertdistill.models.loading import load_task_model, load_tokenizer  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="run folders of tinybert_full.sh (each has results.json)")
    p.add_argument("--teacher", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--latency-runs", type=int, default=20)
    p.add_argument("--max-length", type=int, default=64)
    args = p.parse_args(argv)
    students = []
    for run in map(Path, args.runs):
        results = run / "results.json"
        if not results.is_file():
            p.error(f"{results} does not exist (not a finished tinybert_full.sh run)")
        students.append((run.name, json.loads(results.read_text())["student_dir"]))
    torch.set_num_threads(args.threads)
    task = load_task("sst2", args.data)
    texts = [e.text for e in task.split("dev")[:200]]
    tokenizer = load_tokenizer(args.teacher)
    teacher = load_task_model(args.teacher, task.task).eval()
    t_flops = forward_flops(teacher, tokenizer, texts[:50], args.max_length)
    rows = []
    for name, student_dir in students:
        student = load_task_model(student_dir, task.task).eval()
        t_ms, s_ms = interleaved_latency(teacher, student, tokenizer, texts, args.rounds, args.latency_runs,
                                         args.max_length)
        s_flops = forward_flops(student, tokenizer, texts[:50], args.max_length)
        rows.append({"run": name, "student_dir": student_dir, "student_params": parameter_count(student),
                     "teacher_params": parameter_count(teacher), "teacher_ms": t_ms, "student_ms": s_ms,
                     "speedup": t_ms / s_ms, "flop_ratio": t_flops / s_flops, "threads": args.threads})
        print(f"{name}: batch-1 {t_ms:.2f} / {s_ms:.2f} ms = {t_ms / s_ms:.2f}x, FLOP ratio {t_flops / s_flops:.2f}x",
              flush=True)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": " ".join(sys.argv), "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
