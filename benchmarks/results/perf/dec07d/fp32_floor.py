"""The fp32 floor of the SST-2 epoch job (issue 11): how long its matrix products alone take at this
CPU's measured fp32 matmul peak, against the 4x target (TextBrewer's loop / 4).

Reads textbrewer_compare.py results (the ours_cache run: its batches' real and padded tokens,
its cache build and loop times; TextBrewer's loop), counts the FLOPs of the job's products:
  * the cache build: the 6-layer teacher's forward over the length-sorted 4,096-token batches
    of the build (recomputed here from the tokenised train split, as TeacherCache builds them);
  * the student's training: forward + backward (2x the forward) of its 3 layers over the
    length-grouped batches' padded tokens,
checks the per-token count against torch's FlopCounterMode on a real batch, measures the fp32
peak (bench.flops.matmul_peak, as peak_flops.py does), and prints the floor. Run from the root:
    python benchmarks/results/perf/dec07d/fp32_floor.py benchmarks/results/perf/dec07b/fc-fp32-intel-seed{3,4,5}.json
"""
import json, statistics, sys, tempfile
from pathlib import Path
import torch
sys.path.insert(0, "benchmarks")
from sst2_job import sst2_recipe
from bertdistill.distill.cache import token_budget_batches
from bertdistill.bench.flops import matmul_peak, step_flops

torch.set_num_threads(2)
files = sys.argv[1:]
runs = [json.loads(Path(f).read_text()) for f in files]
tb = [r["runs"]["tb_dynamic"]["train_seconds"] for r in runs]
build = [r["teacher_cache"]["build_seconds"] for r in runs]
loop = [r["runs"]["ours_cache"]["train_seconds"] for r in runs]
batch_stats = [r["runs"]["ours_cache"]["batches"] for r in runs]  # each seed groups its own batches
stats = batch_stats[0]
assert all(b["real_tokens"] == stats["real_tokens"] for b in batch_stats), "the runs' data differ"

r = sst2_recipe(Path(tempfile.mkdtemp()) / "o")
T, S = r.teacher, r.student
lengths = sorted(len(f["input_ids"]) for f in r.train_features)
assert sum(lengths) == stats["real_tokens"], (sum(lengths), stats["real_tokens"])
build_batches = [(e - s, lengths[e - 1]) for s, e in token_budget_batches(lengths, 4096)]


def linear_per_token(model) -> int:
    """FLOPs per token of the encoder's linear layers (2 per multiply-add)."""
    return 2 * sum(m.weight.numel() for n, m in model.named_modules()
                   if isinstance(m, torch.nn.Linear) and ".encoder." in f".{n}")


def attention_per_sequence(model, length: int) -> int:
    """FLOPs of q.k^T and attention x v for one sequence, all layers."""
    c = model.config
    return c.num_hidden_layers * 2 * 2 * length * length * c.hidden_size


# check the count against FlopCounterMode on one real batch of 32 (forward only)
batch = r.collate([dict(f, index=i) for i, f in enumerate(r.train_features[:32])])
inputs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
B, L = inputs["input_ids"].shape
for name, model in (("teacher", T), ("student", S)):
    model.eval()
    with torch.no_grad():
        counted = step_flops(lambda: model(**inputs))
    mine = B * L * linear_per_token(model) + B * attention_per_sequence(model, L)
    print(f"{name}: forward of a {B}x{L} batch, FlopCounterMode {counted / 1e9:.3f} GFLOP, this count "
          f"{mine / 1e9:.3f} GFLOP (pooler and head: the rest)")

build_tokens = sum(n * l for n, l in build_batches)
build_flops = build_tokens * linear_per_token(T) + sum(n * attention_per_sequence(T, l) for n, l in build_batches)
student_flops = statistics.mean(  # the seeds' mean; attention at the mean padded length: < 1 %
    3 * (b["padded_tokens"] * linear_per_token(S) + b["batches"] * 32 * attention_per_sequence(S, round(b["mean_padded_length"])))
    for b in batch_stats)
total = build_flops + student_flops
peaks = [matmul_peak(torch.float32, size=2048, seconds=3.0) for _ in range(2)]
peak = max(peaks)
budget = statistics.mean(tb) / 4
floor = total / peak
actual = statistics.mean(build) + statistics.mean(loop)
out = {
    "files": files, "real_tokens": stats["real_tokens"], "build_padded_tokens": build_tokens,
    "student_padded_tokens": [b["padded_tokens"] for b in batch_stats], "build_tflop": build_flops / 1e12,
    "student_train_tflop": student_flops / 1e12, "total_tflop": total / 1e12,
    "fp32_peak_gflops": [p / 1e9 for p in peaks], "floor_seconds": floor,
    "textbrewer_loop_mean": statistics.mean(tb), "budget_4x_seconds": budget,
    "bertdistill_end_to_end_mean": actual, "bertdistill_share_of_peak": total / actual / peak,
    "share_needed_for_4x": total / budget / peak,
}
print(json.dumps(out, indent=2))
print(f"products: cache build {build_flops / 1e12:.1f} TFLOP + student training {student_flops / 1e12:.1f} TFLOP "
      f"= {total / 1e12:.1f} TFLOP; at the fp32 peak ({peak / 1e9:.0f} GFLOP/s) {floor:.0f} s, "
      f"{100 * floor / budget:.0f} % of the 4x budget ({budget:.0f} s = TextBrewer's {statistics.mean(tb):.0f} s / 4)")
print(f"bertdistill end to end now: {actual:.0f} s = {100 * out['bertdistill_share_of_peak']:.0f} % of the peak on the "
      f"job's products; 4x needs {100 * out['share_needed_for_4x']:.0f} % over the whole job")
