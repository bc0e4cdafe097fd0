"""A/B of the teacher-cache build: fixed 64-example batches (before) vs a 4096-token budget (after),
full SST-2 train, bf16 autocast, kd_hidden_mse keys, two rounds; the logits of both arms compared.

    python benchmarks/cache_batching_ab.py benchmarks/results/perf/cache-batching/cache_ab.json

Needs the SST-2 teacher of ``bash benchmarks/run_all.sh sst2-teacher`` (runs/bench/sst2-teacher/best).
"""
import json, sys, tempfile, time, shutil
import torch
from bertdistill.pipelines.distill import DistillConfig, DistillRecipe
from bertdistill.distill import cache as C

cfg = DistillConfig(teacher="runs/bench/sst2-teacher/best", task="sst2", output=tempfile.mkdtemp(), recipe="kd_hidden_mse",
                    max_length=64, cache_teacher=False, train={"batch_size": 32, "mixed_precision": "bf16"})
r = DistillRecipe(cfg); r.setup()
real = C.token_budget_batches
def fixed64(lengths, budget):
    return [(s, min(s + 64, len(lengths))) for s in range(0, len(lengths), 64)]
rows = []
for rnd in range(2):
    for arm, fn in (("fixed64", fixed64), ("tokens4096", real)):
        C.token_budget_batches = fn
        d = tempfile.mkdtemp()
        t = time.perf_counter()
        c = C.TeacherCache.load_or_build(r.teacher, r.train_features, r.distiller.teacher_keys, cache_dir=d,
                                         precision="bf16", pad_token_id=r.tokenizer.pad_token_id)
        sec = time.perf_counter() - t
        lg = c._data["logits"].float().clone()
        rows.append({"round": rnd, "arm": arm, "seconds": sec, "batches": len(fn(sorted(len(f["input_ids"]) for f in r.train_features), 4096))})
        print(rows[-1], flush=True)
        if arm == "fixed64": ref = lg
        else: rows[-1]["max_abs_logit_diff_vs_fixed64"] = float((lg - ref).abs().max()); print(rows[-1], flush=True)
        shutil.rmtree(d)
json.dump(rows, open(sys.argv[1], "w"), indent=1)
