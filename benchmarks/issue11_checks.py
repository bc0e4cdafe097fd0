"""One-off checks behind the cache-build and step numbers of the night of 2026-12-06 (issue 11;
benchmarks/RESULTS.md and the closing note). Each runs on the SST-2 teacher of run_all.sh
(``runs/bench/sst2-teacher/best``), 2 threads, ``kd_hidden_mse`` keys::

    python benchmarks/issue11_checks.py split       # time of the bf16 cache build's compute and of writing it
    python benchmarks/issue11_checks.py profile     # profiler table of the bf16 build over 20,000 phrases
    python benchmarks/issue11_checks.py attention   # teacher forwards over all of SST-2, sdpa vs eager, 2 rounds
    python benchmarks/issue11_checks.py equal OLD.py 3000 hidden:1,hidden:3,hidden:5,logits,attention:2,embeddings
        # this code's cache build against an earlier one, torch.equal per tensor, bf16 and fp32; OLD.py from
        #   git show 3875f47:src/bertdistill/distill/cache.py | sed 's/^from \.\./from bertdistill./; \
        #     s/^from \.features/from bertdistill.distill.features/' > OLD.py
    python benchmarks/issue11_checks.py embedding   # cached bf16 step, word embedding trained vs frozen, 6 rounds
    python benchmarks/issue11_checks.py step-profile  # profiler table of 20 cached bf16 steps
    python benchmarks/issue11_checks.py compact     # cached bf16 step, dense vs --compact-embeddings (all of
                                                    #   SST-2 train's rows), 6 rounds (2026-12-07)
"""

from __future__ import annotations

import copy
import importlib.util
import os
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TQDM_DISABLE", "1")
import torch  # noqa: E402

from bertdistill.data.encode import Collator, length_grouped_batches  # noqa: E402
from bertdistill.distill.cache import TeacherCache, token_budget_batches  # noqa: E402
from bertdistill.models.inputs import model_inputs  # noqa: E402
from bertdistill.pipelines.distill import DistillConfig, DistillModule, DistillRecipe  # noqa: E402
from bertdistill.training.clipping import clip_gradients  # noqa: E402
from bertdistill.training.dropout import training_dropout  # noqa: E402
from bertdistill.training.engine import make_optimizer  # noqa: E402

TEACHER = "runs/bench/sst2-teacher/best"


def sst2_recipe(max_train_examples=None) -> DistillRecipe:
    scratch = tempfile.mkdtemp(prefix="issue11-")
    cfg = DistillConfig(teacher=TEACHER, task="sst2", output=scratch, recipe="kd_hidden_mse", max_length=64,
                        max_train_examples=max_train_examples, cache_teacher=False,
                        train={"batch_size": 32, "seed": 42})
    recipe = DistillRecipe(cfg)
    recipe.setup()
    shutil.rmtree(scratch)
    return recipe


def split() -> None:
    from safetensors.torch import save_file
    r = sst2_recipe()
    t = time.perf_counter()
    tensors = TeacherCache._compute(r.teacher, r.train_features, r.distiller.teacher_keys, 4096, torch.float16, 0, "bf16")
    t1 = time.perf_counter()
    print("compute", t1 - t, flush=True)
    folder = tempfile.mkdtemp(prefix="issue11-")
    save_file(tensors, f"{folder}/f.safetensors")
    os.sync()
    print("save", time.perf_counter() - t1, flush=True)
    shutil.rmtree(folder)


def profile_build() -> None:
    from torch.profiler import profile
    r = sst2_recipe()
    with profile() as p:
        TeacherCache._compute(r.teacher, r.train_features[:20000], r.distiller.teacher_keys, 4096, torch.float16, 0, "bf16")
    print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))


def attention() -> None:
    r = sst2_recipe()
    feats, teacher = r.train_features, r.teacher.eval()
    collate = Collator(pad_token_id=0)
    order = sorted(range(len(feats)), key=lambda i: len(feats[i]["input_ids"]))
    batches = token_budget_batches([len(feats[i]["input_ids"]) for i in order], 4096)
    inputs = [collate([{k: feats[i][k] for k in ("input_ids", "token_type_ids")} for i in order[s:e]])
              for s, e in batches]
    for _ in range(2):
        for impl in ("sdpa", "eager"):
            teacher.set_attn_implementation(impl)
            t = time.perf_counter()
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
                for b in inputs:
                    teacher(**model_inputs(teacher, b), output_hidden_states=True)
            print(impl, time.perf_counter() - t, flush=True)


def equal(old_path: str, n: str, keys: str) -> None:
    spec = importlib.util.spec_from_file_location("old_cache", old_path)
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    r = sst2_recipe()
    feats, keys = r.train_features[: int(n)], keys.split(",")
    if any(k.startswith("attention") for k in keys):
        r.teacher.set_attn_implementation("eager")
    for precision in ("bf16", "no"):
        t = time.perf_counter()
        a = old.TeacherCache._compute(r.teacher, feats, keys, 4096, torch.float16, 0, precision)
        t1 = time.perf_counter()
        b = TeacherCache._compute(r.teacher, feats, keys, 4096, torch.float16, 0, precision)
        t2 = time.perf_counter()
        assert a.keys() == b.keys(), (a.keys(), b.keys())
        for k in a:
            assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and torch.equal(a[k], b[k]), k
        print(precision, "identical", sorted(a), f"old {t1 - t:.1f} s new {t2 - t1:.1f} s", flush=True)


def cached_steps(kind: str) -> None:
    r = sst2_recipe(max_train_examples=4096)
    folder = tempfile.mkdtemp(prefix="issue11-")
    r.cache = TeacherCache.load_or_build(r.teacher, r.train_features, r.distiller.teacher_keys, cache_dir=folder,
                                         precision="bf16")
    shutil.rmtree(folder)
    lengths = [len(f["input_ids"]) for f in r.train_features]
    order = length_grouped_batches(lengths, 32, shuffle=True, seed=42)
    batches = [r.collate([r.train_features[i] for i in idx]) for idx in order[:60]]

    if kind == "compact":  # the rows the whole train split reads, as in the full job
        from bertdistill.data.encode import encode
        from bertdistill.models import compact_embedding

        used = compact_embedding.used_token_ids(encode(r.task, r.data.split("train"), r.tokenizer, r.max_length))
        print(f"{len(used)} word-embedding rows read by SST-2 train", flush=True)

    def stepper(mode: str):
        student = copy.deepcopy(r.student).train()
        student.get_input_embeddings().weight.requires_grad_(mode != "freeze")
        compact = compact_embedding.install(student, used) if mode == "compact" else None
        module = DistillModule(student, r.distiller)
        opt = make_optimizer(module, r.train_config)
        if compact is not None:
            compact.track(opt)

        def step(batch):
            cached = r.teacher_features(batch)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss, _ = module(batch, cached)
            loss.backward()
            clip_gradients(r.accelerator, module.parameters(), r.train_config.max_grad_norm)
            opt.step()
            opt.zero_grad(set_to_none=True)
        return student, step

    if kind == "step-profile":
        from torch.profiler import profile
        student, step = stepper("train")
        with training_dropout(student, torch.device("cpu")):
            for b in batches[:5]:
                step(b)
            with profile() as p:
                for b in batches[5:25]:
                    step(b)
        print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=40))
        return
    for _ in range(6):
        for mode in (("train", "compact") if kind == "compact" else ("train", "freeze")):
            student, step = stepper(mode)
            torch.manual_seed(0)
            with training_dropout(student, torch.device("cpu")):
                for b in batches[:5]:
                    step(b)
                t = time.perf_counter()
                for b in batches[5:]:
                    step(b)
            print(f"{mode:7s} {(time.perf_counter() - t) / 55 * 1000:.1f} ms/step", flush=True)


def main(argv: list[str]) -> None:
    torch.set_num_threads(2)
    if not argv:
        raise SystemExit(__doc__)
    command, rest = argv[0], argv[1:]
    if command in ("embedding", "step-profile", "compact"):
        cached_steps(command)
    else:
        {"split": split, "profile": profile_build, "attention": attention, "equal": equal}[command](*rest)


if __name__ == "__main__":
    main(sys.argv[1:])
