"""Where a real training loop's time goes (issue 11): the SST-2 job of textbrewer_compare.py
(kd_hidden_mse, layers 0,2,4 of the SST-2 teacher, batch 32, length 64, fp32, the cache built
with eager attention, --compact-embeddings; set BERTDISTILL_DROPOUT=fast for the 4x setting's
dropout), over the first N train phrases (default 16,000: 500 steps), through the TrainLoop
itself (recipe.train()). The loop runs once plain (timed), then under cProfile; then 60 steps of
it under torch.profiler. Run from the repository root:
    BERTDISTILL_DROPOUT=fast python benchmarks/results/perf/dec07d/loop_profile.py 16000
"""
import cProfile, pstats, sys, tempfile, time
from pathlib import Path
import torch
sys.path.insert(0, "benchmarks")
from sst2_job import sst2_recipe

torch.set_num_threads(2)
N = int(sys.argv[1]) if len(sys.argv) > 1 else 16000
work = Path(tempfile.mkdtemp())


def recipe(steps=None, name="run"):
    return sst2_recipe(work / name, max_train_examples=N, cache_dir=work / "cache", compact_embeddings=True,
                       train={"epochs": 1, "max_steps": steps, "lr": 5e-5, "warmup_ratio": 0.1,
                              "weight_decay": 0.01, "max_grad_norm": 1.0, "group_by_length": True, "log_every": 50})


r = recipe(name="warm")  # builds the cache (untimed here)
t = time.perf_counter(); out = r.train(); plain = time.perf_counter() - t
print(f"plain loop: {plain:.1f} s, {out.get('steps') if isinstance(out, dict) else '?'} steps", flush=True)
r = recipe(name="cprof")
pr = cProfile.Profile(); t = time.perf_counter(); pr.enable(); r.train(); pr.disable()
print(f"under cProfile: {time.perf_counter() - t:.1f} s")
pstats.Stats(pr).sort_stats("tottime").print_stats(30)
pstats.Stats(pr).sort_stats("cumtime").print_stats(40)
r = recipe(steps=60, name="tprof")
with torch.profiler.profile() as prof:
    r.train()
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30))
