"""How fast the student's matrix products run inside real training steps (issue 11), against the
fp32 peak of one large square product measured in the same process.

The SST-2 job of textbrewer_compare.py (kd_hidden_mse, layers 0,2,4 of the SST-2 teacher, fp32,
batch 32, length-grouped), over all 67,349 train phrases with the teacher live (no cache:
the teacher's forward runs outside the profiled region), as the engine runs it: malloc keeping
freed memory (training/allocator.py), --compact-embeddings, and $BERTDISTILL_DROPOUT's dropout
(the 2.53x setting: BERTDISTILL_DROPOUT=fast). K steps (default 200) spread over
the epoch's length-grouped batches: the student's loss + backward under torch.profiler, its
FLOPs counted by FlopCounterMode in a separate pass. Prints the self time of aten::mm / addmm /
bmm and their FLOP/s. Run from the repository root:
    BERTDISTILL_DROPOUT=fast python benchmarks/results/perf/dec07d/product_rate.py 200
"""
import sys, tempfile, time
from pathlib import Path
import torch
sys.path.insert(0, "benchmarks")
from sst2_job import sst2_recipe
from bertdistill.data.encode import length_grouped_batches
from bertdistill.bench.flops import matmul_peak, step_flops
from bertdistill.models import compact_embedding
from bertdistill.training.allocator import keep_freed_memory
from bertdistill.training.dropout import training_dropout

torch.set_num_threads(2)
keep_freed_memory()
K = int(sys.argv[1]) if len(sys.argv) > 1 else 200
r = sst2_recipe(Path(tempfile.mkdtemp()) / "o")
F = r.train_features
lengths = [len(f["input_ids"]) for f in F]
batches = length_grouped_batches(lengths, 32, shuffle=True, seed=3)
picked = batches[:: max(1, len(batches) // K)][:K]
prepared = []
for idx in picked:
    batch = r.collate([dict(F[i], index=i) for i in idx])
    batch["teacher"] = r.teacher_features(batch)  # outside the timed region
    prepared.append(batch)
compact_embedding.install(r.student, compact_embedding.used_token_ids(F))
module = r.module.train()


def step(batch):
    saved, r.teacher_features = r.teacher_features, (lambda b: b["teacher"])
    try:
        loss, _ = r.loss_step(module, batch)
        loss.backward()
    finally:
        r.teacher_features = saved
    module.zero_grad(set_to_none=True)


with training_dropout(module, torch.device("cpu")):
    for b in prepared[:5]:
        step(b)  # warm-up
    flops = sum(step_flops(lambda b=b: step(b)) for b in prepared)
    walls = []
    for _ in range(2):  # the same steps unprofiled: wall time
        t = time.perf_counter()
        for b in prepared:
            step(b)
        walls.append(time.perf_counter() - t)
    with torch.profiler.profile() as prof:
        for b in prepared:
            step(b)
events = {e.key: e.self_cpu_time_total / 1e6 for e in prof.key_averages()}
total = sum(events.values())
products = sum(events.get(k, 0.0) for k in ("aten::mm", "aten::addmm", "aten::bmm"))
peak = max(matmul_peak(torch.float32, size=2048, seconds=3.0) for _ in range(2))
tokens = sum(b["input_ids"].numel() for b in prepared)
print(f"{len(prepared)} steps, {tokens} padded tokens (mean {tokens / len(prepared) / 32:.1f} per phrase), "
      f"{flops / 1e12:.2f} TFLOP (FlopCounterMode)")
print(f"profiled self time {total:.2f} s; aten::mm {events.get('aten::mm', 0):.2f} s, addmm {events.get('aten::addmm', 0):.2f} s, "
      f"bmm {events.get('aten::bmm', 0):.2f} s: products {products:.2f} s = {100 * products / total:.0f} % of the step")
print(f"products at {flops / products / 1e9:.0f} GFLOP/s = {100 * flops / products / peak:.0f} % of the fp32 peak "
      f"measured here ({peak / 1e9:.0f} GFLOP/s); the whole forward+backward at {100 * flops / total / peak:.0f} %")
calls = sum(e.count for e in prof.key_averages() if e.key.startswith("aten::"))
wall = min(walls)
print(f"unprofiled wall time of the same steps: {wall:.2f} s (runs {', '.join(f'{w:.2f}' for w in walls)}), "
      f"{1000 * wall / len(prepared):.1f} ms per forward+backward; operator self time under the profiler "
      f"{1000 * total / len(prepared):.1f} ms; {calls / len(prepared):.0f} aten calls per step; "
      f"products at {100 * flops / wall / peak:.0f} % of the peak on the wall time")
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
