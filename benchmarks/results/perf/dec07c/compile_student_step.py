"""Is torch.compile of the student's step worth it on a CPU (issue 11)? The SST-2 student of
run_all.sh (layers 0, 2, 4 of the SST-2 teacher), fp32, dropout on, 2 threads, batches of 32 real
SST-2 train phrases grouped by length, as the engine's sampler makes them. The same 45 batches run
eager and then under ``torch.compile(dynamic=True)``; a step is the student's forward (logits and
hidden states), a CE + hidden-state loss, backward, fused AdamW. Run from the repository root:
    python benchmarks/results/perf/dec07c/compile_student_step.py > .../compile_student_step.txt
"""
import copy, random, statistics, tempfile, time
from pathlib import Path
import torch
from bertdistill.pipelines.distill import DistillConfig, DistillRecipe
from bertdistill.students import build_student
from bertdistill.data.encode import Collator

torch.set_num_threads(2)
work = Path(tempfile.mkdtemp())
cfg = DistillConfig(teacher="runs/bench/sst2-teacher/best", task="sst2", data="../shared/data/sst2/glue",
                    output=str(work / "o"), recipe="kd_hidden_mse", student_arch="same", student_layers=[0, 2, 4],
                    max_length=64, max_train_examples=8192, cache_teacher=False,
                    train={"max_steps": 1, "batch_size": 32, "seed": 3, "resume": False})
r = DistillRecipe(cfg); r.setup()
F = r.train_features
order = sorted(range(len(F)), key=lambda i: len(F[i]["input_ids"]))
groups = [order[i:i + 32] for i in range(0, len(order), 32)]
random.Random(3).shuffle(groups)
collate = Collator(pad_token_id=0)
batches = []
for g in groups[:45]:
    b = collate([{k: F[i][k] for k in ("input_ids", "token_type_ids", "attention_mask", "labels") if k in F[i]} for i in g])
    batches.append(b)
print("batch lengths:", [b["input_ids"].shape[1] for b in batches])
student0, _ = build_student(r.teacher, layers=[0, 2, 4], arch="same")


def run(model, label):
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5, fused=True)
    times = []
    for b in batches:
        t = time.perf_counter()
        out = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], output_hidden_states=True)
        loss = torch.nn.functional.cross_entropy(out.logits, b["labels"]) + sum(h.pow(2).mean() for h in out.hidden_states)
        loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t)
    steady = times[5:]
    print(f"{label}: first step {times[0]:.1f} s, all 45 steps {sum(times):.1f} s, steps 6-45 mean "
          f"{1000 * statistics.mean(steady):.1f} ms (median {1000 * statistics.median(steady):.1f} ms)", flush=True)
    return times


eager = run(copy.deepcopy(student0), "eager")
m = copy.deepcopy(student0)
m.compile(dynamic=True)
compiled = run(m, "torch.compile(dynamic=True)")
print("per-step times, ms (eager, compiled):")
for i, (a, b) in enumerate(zip(eager, compiled)):
    print(i, batches[i]["input_ids"].shape[1], f"{1000 * a:.1f}", f"{1000 * b:.1f}")
