"""Where the teacher-cache build goes (issue 11): N SST-2 train phrases (default 16,000), the SST-2
teacher of run_all.sh, 2 threads; sdpa vs eager compute and save times, then cProfile and
torch.profiler of one eager build. Run from the repository root:
    python benchmarks/results/perf/dec07c/cache_build_profile.py 16000 > .../cache_build_profile.txt
"""
import sys, time, tempfile, cProfile, pstats
from pathlib import Path
import torch
from safetensors.torch import save_file
from bertdistill.pipelines.distill import DistillConfig, DistillRecipe
from bertdistill.distill.cache import TeacherCache, token_budget_batches, attention_kernel

torch.set_num_threads(2)
N = int(sys.argv[1]) if len(sys.argv) > 1 else 16000
work = Path(tempfile.mkdtemp())
cfg = DistillConfig(teacher="runs/bench/sst2-teacher/best", task="sst2", data="../shared/data/sst2/glue",
                    output=str(work / "o"), recipe="kd_hidden_mse", student_arch="same", student_layers=[0, 2, 4],
                    max_length=64, max_train_examples=N, cache_teacher=False,
                    train={"max_steps": 1, "batch_size": 32, "seed": 3, "resume": False})
r = DistillRecipe(cfg); r.setup()
T, F, K = r.teacher, r.train_features, r.distiller.teacher_keys
lengths = sorted(len(f["input_ids"]) for f in F)
padded = sum((e - s) * lengths[e - 1] for s, e in token_budget_batches(lengths, 4096))
# multiply-adds of the encoder's linear layers per token, x2 for FLOPs (attention products not counted)
linear = sum(m.weight.numel() for n, m in T.named_modules() if isinstance(m, torch.nn.Linear) and ".encoder." in f".{n}")
print("keys", K, "examples", len(F), "real tokens", sum(lengths), "padded tokens", padded,
      f"encoder linear FLOPs {2 * linear * padded / 1e12:.2f} T")
for att in ("sdpa", "eager"):
    with attention_kernel(T, att, K):
        t = time.perf_counter(); tensors = TeacherCache._compute(T, F, K, 4096, torch.float16, 0); c = time.perf_counter() - t
    t = time.perf_counter(); save_file(tensors, str(work / f"f-{att}.safetensors")); s = time.perf_counter() - t
    print(f"{att}: compute {c:.1f} s, save {s:.1f} s, {sum(v.numel()*v.element_size() for v in tensors.values())/2**20:.0f} MiB")
with attention_kernel(T, "eager", K):
    pr = cProfile.Profile(); pr.enable(); TeacherCache._compute(T, F, K, 4096, torch.float16, 0); pr.disable()
pstats.Stats(pr).sort_stats("tottime").print_stats(18)
with attention_kernel(T, "eager", K), torch.profiler.profile() as prof:
    TeacherCache._compute(T, F, K, 4096, torch.float16, 0)
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=22))
addmm = sum(e.self_cpu_time_total for e in prof.key_averages() if e.key == "aten::addmm") / 1e6
rate = 2 * linear * padded / addmm
from bertdistill.bench.flops import matmul_peak
peak = matmul_peak(torch.float32, size=2048, seconds=3.0)  # as benchmarks/peak_flops.py measures it
print(f"aten::addmm self time {addmm:.1f} s: {rate / 1e9:.0f} GFLOP/s on the encoder's linear layers; "
      f"fp32 matmul peak now {peak / 1e9:.0f} GFLOP/s (2048x2048, best 3 s block): {100 * rate / peak:.0f} % of it")
