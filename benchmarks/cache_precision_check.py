"""bf16 against fp32 teacher-cache build on a seeded SST-2 subset: time of each build (two rounds)
and how far the stored features move (issue 11).

    python benchmarks/cache_precision_check.py 8000

Needs the SST-2 teacher of ``bash benchmarks/run_all.sh sst2-teacher``.
"""
import sys, time, torch, tempfile, shutil
from bertdistill.pipelines.distill import DistillConfig, DistillRecipe
from bertdistill.distill.cache import TeacherCache
n = int(sys.argv[1])
cfg = DistillConfig(teacher="runs/bench/sst2-teacher/best", task="sst2", output=tempfile.mkdtemp(), recipe="kd_hidden_mse",
                    max_length=64, max_train_examples=n, cache_teacher=False, train={"batch_size": 32})
r = DistillRecipe(cfg); r.setup()
res = {}
for prec in ("no", "bf16", "no", "bf16"):
    d = tempfile.mkdtemp()
    t = time.perf_counter()
    c = TeacherCache.load_or_build(r.teacher, r.train_features, r.distiller.teacher_keys, cache_dir=d, precision=prec,
                                   pad_token_id=r.tokenizer.pad_token_id)
    print(prec, f"{time.perf_counter()-t:.1f}s", flush=True)
    res[prec] = c
    shutil.rmtree(d)
a, b = res["no"], res["bf16"]
for k in a.keys:
    x, y = a._data[k].float(), b._data[k].float()
    print(k, "max abs diff", float((x-y).abs().max()), "rel", float((x-y).norm()/x.norm()))
la = a._data["logits"].view(-1, 2).argmax(-1); lb = b._data["logits"].view(-1, 2).argmax(-1)
print("argmax agreement", float((la == lb).float().mean()))
