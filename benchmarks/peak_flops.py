"""How much of the CPU's matmul peak a bertdistill distillation step reaches, fp32 and bf16.

1. Measures the fp32 and bf16 ``torch.matmul`` peaks (FLOP/s of one large square product,
   best of several timed blocks; bf16 uses the CPU's bf16 instructions where it has them).
2. Builds a distillation run with bertdistill's ``DistillRecipe`` (default: the SST-2
   teacher ``runs/bench/sst2-teacher/best`` and recipe ``kd_hidden_mse``; when that default
   teacher folder does not exist yet, ``minilm-l6`` with a fresh classification head, and
   the output says so), then for fp32 and for bf16 autocast times ``--steps`` optimizer steps
   of ``loss_step`` + backward + clip + AdamW step on length-grouped batches (after
   ``--warmup`` untimed steps), exactly what the TrainLoop does per step.
3. Counts each timed step's FLOPs with ``FlopCounterMode`` (forward + backward: the
   teacher's no-grad forward when it runs live, the student's forward and backward; a
   separate, untimed pass over the same batches) and prints FLOP/s and the share of each peak.

Output: a plain table on stdout and ``<out>/peak_flops.json``.

Usage::

    python benchmarks/peak_flops.py                      # SST-2 teacher (or the fallback)
    python benchmarks/peak_flops.py --steps 5 --peak-seconds 1 --threads 1   # quick look
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

DEFAULT_TEACHER = "runs/bench/sst2-teacher/best"
FALLBACK_TEACHER = "minilm-l6"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--teacher", default=DEFAULT_TEACHER,
                   help=f"teacher folder (default {DEFAULT_TEACHER}; if that default does not exist, "
                        f"{FALLBACK_TEACHER} with a fresh head)")
    p.add_argument("--task", default="sst2")
    p.add_argument("--data", default=None)
    p.add_argument("--recipe", default="kd_hidden_mse")
    p.add_argument("--steps", type=int, default=20, help="timed optimizer steps per precision")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps before timing")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--train-examples", type=int, default=4096,
                   help="training examples to draw the batches from (a seeded random subset)")
    p.add_argument("--cache", action="store_true",
                   help="use the teacher cache (built over those examples, untimed): then a step "
                        "has no teacher forward")
    p.add_argument("--peak-size", type=int, default=2048, help="matrix size of the peak measurement")
    p.add_argument("--peak-seconds", type=float, default=3.0)
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--optimizer", choices=["fused", "foreach", "loop"], default="fused",
                   help="AdamW kernels of the timed steps (the engine's default: fused)")
    p.add_argument("--compact-embeddings", action="store_true",
                   help="bertdistill's --compact-embeddings: train only the word-embedding rows that the whole "
                        "train split reads (as a full run would)")
    p.add_argument("--dropout-draws", choices=["torch", "fast"], default="torch",
                   help="bertdistill's --dropout-draws: dropout masks of its training steps (default: torch)")
    p.add_argument("--cpu-allocator", choices=["keep", "system"], default="keep",
                   help="bertdistill's --cpu-allocator (default: keep)")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="also profile N steps per precision (torch.profiler): the ops by self CPU time, "
                        "grouped (matmul, attention softmax, layer norm, optimizer, ...), in <out>/profile.json")
    p.add_argument("--out", default="runs/bench/peak_flops")
    return p.parse_args(argv)


def _loadavg():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


#: profiler op names -> the group a reader cares about (first match wins; the rest is "other")
OP_GROUPS = (
    ("matmul", ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear", "aten::baddbmm",
                "mkldnn", "aten::_scaled_dot_product")),
    ("softmax", ("softmax",)),
    ("layer norm", ("layer_norm",)),
    ("gelu / activations", ("gelu", "tanh", "relu")),
    ("optimizer", ("adam", "_foreach", "_fused")),
    ("grad clipping", ("norm", "clamp")),
    ("dropout", ("dropout", "bernoulli", "native_dropout")),
    ("copies / casts / layout", ("copy_", "to_copy", "_to_copy", "contiguous", "clone", "cat", "transpose",
                                 "view", "reshape", "permute", "expand", "index", "embedding", "fill_", "zero_")),
    ("elementwise", ("add", "mul", "div", "sub", "where", "masked_fill", "sum", "mean", "pow", "sqrt", "exp", "log")),
)


def profile_steps(step, batches, out: Path, precision: str) -> dict:
    """Self CPU time of every op over ``batches`` (torch.profiler), grouped by ``OP_GROUPS``."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for batch in batches:
            step(batch)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    groups: dict[str, float] = {}
    ops = []
    for e in sorted(events, key=lambda e: -e.self_cpu_time_total):
        name = e.key.lower()
        group = next((g for g, keys in OP_GROUPS if any(k in name for k in keys)), "other")
        groups[group] = groups.get(group, 0.0) + e.self_cpu_time_total
        ops.append({"op": e.key, "group": group, "self_cpu_ms": e.self_cpu_time_total / 1000 / len(batches),
                    "calls_per_step": e.count / len(batches)})
    (out / f"profile_{precision}.txt").write_text(events.table(sort_by="self_cpu_time_total", row_limit=40))
    result = {"steps": len(batches), "self_cpu_ms_per_step": total / 1000 / len(batches),
              "groups_share": {g: round(v / total, 4) for g, v in sorted(groups.items(), key=lambda kv: -kv[1])},
              "top_ops": ops[:25]}
    print(f"profile {precision}: " + ", ".join(f"{g} {100 * v:.1f}%" for g, v in result["groups_share"].items()),
          flush=True)
    return result


def main(argv=None) -> dict:
    args = parse_args(argv)
    os.environ.setdefault("TQDM_DISABLE", "1")
    import torch
    import transformers

    from bertdistill.bench.flops import format_flops, matmul_peak, step_flops, utilisation
    from bertdistill.bench.machine import cpu_model_and_flags
    cpu, cpu_flags = cpu_model_and_flags()  # recorded with the results: numbers depend on the host
    from bertdistill.data.encode import length_grouped_batches
    from bertdistill.pipelines.distill import DistillConfig, DistillModule, DistillRecipe
    from bertdistill.training.clipping import clip_gradients
    from bertdistill.training.dropout import training_dropout
    from bertdistill.training.engine import make_optimizer

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"torch {torch.__version__}, {threads} threads, {os.cpu_count()} CPUs, load {_loadavg()}", flush=True)
    load = _loadavg()
    if load and threads > 1 and load[0] > 0.5:
        print(f"WARNING: load average {load[0]}: other processes use the CPUs and {threads} torch threads will "
              "be oversubscribed (much slower, noisy); use --threads 1 or an idle machine", flush=True)

    # ---- 1. peaks
    peaks = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        peaks[name] = matmul_peak(dtype, size=args.peak_size, seconds=args.peak_seconds)
        print(f"matmul peak {name}: {format_flops(peaks[name])}FLOP/s ({args.peak_size}x{args.peak_size}, "
              f"best block of {args.peak_seconds:g} s)", flush=True)

    # ---- 2. the distillation run
    teacher, note = args.teacher, "fine-tuned teacher"
    if args.teacher == DEFAULT_TEACHER and not Path(DEFAULT_TEACHER).is_dir():
        teacher = FALLBACK_TEACHER
        note = f"FALLBACK: {DEFAULT_TEACHER} does not exist yet, using {FALLBACK_TEACHER} with a fresh head"
    print(f"teacher: {teacher} ({note})", flush=True)
    scratch = tempfile.mkdtemp(prefix="recipe-", dir=out)  # the recipe writes its run config there; never kept
    config = DistillConfig(
        teacher=teacher, task=args.task, data=args.data, output=scratch, recipe=args.recipe,
        max_length=args.max_length, max_train_examples=args.train_examples, cache_teacher=False,
        train={"batch_size": args.batch_size, "seed": args.seed, "dropout_draws": args.dropout_draws,
               "cpu_allocator": args.cpu_allocator},
    )
    recipe = DistillRecipe(config)
    try:
        recipe.setup()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if args.cache:
        from bertdistill.distill.cache import TeacherCache

        cache_dir = tempfile.mkdtemp(prefix="teacher-cache-", dir=out)
        try:
            recipe.cache = TeacherCache.load_or_build(recipe.teacher, recipe.train_features,
                                                      recipe.distiller.teacher_keys, cache_dir=cache_dir)
        finally:
            shutil.rmtree(cache_dir, ignore_errors=True)  # the cache is held in memory from here on
    tc = dataclasses.replace(recipe.train_config, optimizer=args.optimizer)
    used = None
    if args.compact_embeddings:  # the rows of the whole train split, not only of the timed examples
        from bertdistill.data.encode import encode
        from bertdistill.models import compact_embedding

        used = compact_embedding.used_token_ids(encode(recipe.task, recipe.data.split("train"), recipe.tokenizer,
                                                       recipe.max_length))
        print(f"--compact-embeddings: {len(used)} word-embedding rows trained", flush=True)
    lengths = [len(f["input_ids"]) for f in recipe.train_features]
    order = length_grouped_batches(lengths, args.batch_size, shuffle=True, seed=args.seed)
    need = args.warmup + args.steps
    if len(order) < need:
        raise SystemExit(f"{len(order)} batches from {len(lengths)} examples; need {need}: raise --train-examples")
    batches = [recipe.collate([recipe.train_features[i] for i in idx]) for idx in order[:need]]
    student0 = copy.deepcopy(recipe.student)
    params = sum(p.numel() for p in student0.parameters())
    print(f"recipe {recipe.recipe.name}: student layers {recipe.student_info.kept}, {params / 1e6:.1f} M parameters, "
          f"teacher {'cached' if recipe.cache else 'live'}, batches of {args.batch_size} "
          f"(mean padded length {sum(b['input_ids'].shape[1] for b in batches[args.warmup:]) / args.steps:.1f})",
          flush=True)

    rows, profiles = [], {}
    for precision in ("fp32", "bf16"):
        student = copy.deepcopy(student0).train()
        compact = compact_embedding.install(student, used) if used is not None else None
        module = DistillModule(student, recipe.distiller)
        optimizer = make_optimizer(module, tc)
        if compact is not None:
            compact.track(optimizer)
        def step(batch, *, update=True):
            # = recipe.loss_step(module, batch) under autocast, except that cached teacher
            # features are looked up outside autocast: stacking the cache's fp16 tensors under
            # CPU bf16 autocast raises "Unexpected floating ScalarType in at::autocast::prioritize"
            cached = recipe.teacher_features(batch) if recipe.cache is not None else None
            with torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else nullcontext():
                if cached is None:
                    loss, _ = recipe.loss_step(module, batch)
                else:
                    loss, _ = module(batch, cached)
            loss.backward()
            if update:  # the engine's clipping (no pass over the gradients when within the bound)
                clip_gradients(recipe.accelerator, module.parameters(), tc.max_grad_norm)
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        torch.manual_seed(args.seed)
        # the engine's dropout while training on a CPU (--dropout-draws: torch's or 16-bit draws)
        with training_dropout(student, torch.device("cpu"), args.dropout_draws):
            for batch in batches[: args.warmup]:
                step(batch)
            load_before = _loadavg()
            times = []
            for batch in batches[args.warmup:]:
                start = time.perf_counter()
                step(batch)
                times.append(time.perf_counter() - start)
            if args.profile:
                profiles[precision] = profile_steps(step, batches[args.warmup: args.warmup + args.profile], out,
                                                    precision)
            # FLOPs of the same batches, untimed (the counter slows what it watches)
            flops = [step_flops(lambda b=batch: step(b, update=False)) for batch in batches[args.warmup:]]
        seconds, total = sum(times), sum(flops)
        rate = total / seconds
        row = {
            "precision": precision, "steps": args.steps, "seconds": seconds,
            "ms_per_step": 1000 * seconds / args.steps, "best_ms_per_step": 1000 * min(times),
            "flops_per_step": total / args.steps, "flops_per_s": rate,
            "share_of_fp32_peak": utilisation(total, seconds, peaks["fp32"]),
            "share_of_bf16_peak": utilisation(total, seconds, peaks["bf16"]),
            "samples_per_s": args.batch_size * args.steps / seconds,
            "loadavg_before": load_before, "loadavg_after": _loadavg(),
            "dropout_draws": args.dropout_draws, "cpu_allocator": args.cpu_allocator,
            "compact_embeddings": used is not None,
        }
        rows.append(row)
        print(f"{precision}: {row['ms_per_step']:.0f} ms/step, {format_flops(row['flops_per_step'])}FLOP/step, "
              f"{format_flops(rate)}FLOP/s", flush=True)

    # ---- 3. table
    head = ["", "ms/step", "FLOP/step", "FLOP/s", "% fp32 peak", "% bf16 peak", "samples/s"]
    lines = [head,
             ["matmul peak fp32", "", "", format_flops(peaks["fp32"]), "100.0%", f"{100 * peaks['fp32'] / peaks['bf16']:.1f}%", ""],
             ["matmul peak bf16", "", "", format_flops(peaks["bf16"]), f"{100 * peaks['bf16'] / peaks['fp32']:.1f}%", "100.0%", ""]]
    for r in rows:
        label = "distill step fp32" if r["precision"] == "fp32" else "distill step bf16 autocast"
        lines.append([label, f"{r['ms_per_step']:.0f}", format_flops(r["flops_per_step"]), format_flops(r["flops_per_s"]),
                      f"{100 * r['share_of_fp32_peak']:.1f}%", f"{100 * r['share_of_bf16_peak']:.1f}%",
                      f"{r['samples_per_s']:.1f}"])
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    text = []
    for k, line in enumerate(lines):
        text.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))))
        if k == 0:
            text.append("  ".join("-" * w for w in widths))
    table = "\n".join(text)
    print()
    print(f"{args.task} · {recipe.recipe.name} · teacher {teacher} · batch {args.batch_size} · max_length "
          f"{args.max_length} · {threads} threads · teacher {'cached' if recipe.cache else 'live'} "
          "(FLOPs: matmuls + attention, forward + backward)")
    print(table)

    result = {
        "benchmark": "peak_flops",
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "teacher": teacher, "teacher_note": note, "task": args.task, "recipe": recipe.recipe.name,
        "teacher_cached": recipe.cache is not None, "student_kept_layers": recipe.student_info.kept,
        "student_parameters": params, "peaks": {"fp32": peaks["fp32"], "bf16": peaks["bf16"],
                                                "size": args.peak_size, "seconds": args.peak_seconds},
        "steps": rows, "profiles": profiles, "settings": vars(args), "table": table,
        "environment": {"python": platform.python_version(), "torch": torch.__version__,
                        "transformers": transformers.__version__, "threads": threads, "cpus": os.cpu_count(),
                        "cpu": cpu, "cpu_flags": cpu_flags},
        "note": "FLOPs counted by torch.utils.flop_counter (matmuls, attention; not element-wise ops or the "
                "optimizer update); a shared machine makes timings noisy (see loadavg)",
    }
    path = out / "peak_flops.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\nwrote {path}")
    return result


if __name__ == "__main__":
    main()
