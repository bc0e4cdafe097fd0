"""TextBrewer vs bertdistill on the same distillation job, one after the other in one process.

The job (identical on both sides):

* teacher: ``--teacher`` (default ``runs/bench/sst2-teacher/best``, the MiniLM-L6 teacher
  fine-tuned on SST-2; when that default folder does not exist yet, ``minilm-l6`` with a
  fresh classification head is used instead and the output says so: a smoke run);
* student: built ONCE with ``build_student(teacher, layers=[0, 2, 4], arch="same")`` and
  deep-copied for every run, so every run starts from the same weights (a same-architecture
  BERT student, so TextBrewer's BERT adaptor works unchanged);
* data: SST-2 train from the shared data (``load_task("sst2")``), encoded once with
  ``max_length`` 64, batch size 32, ``--steps`` optimizer steps;
* objective: KD on the logits at temperature T=4 plus hidden-state MSE between each student
  layer j and the teacher layer kept[j] it was copied from (hidden indices j+1 <-> kept[j]+1,
  masked mean over real tokens), every term weight 1. bertdistill's ``kd_hidden_mse`` recipe
  uses ``kd_kl`` = T²·KL(p_T ‖ p_S); TextBrewer's ``kd_loss_type='ce'`` is the soft
  cross-entropy CE(p_T, p_S) with no T² factor, so TextBrewer gets ``kd_loss_weight=T²``.
  KL and soft CE differ only by the teacher's entropy, a constant for the student, so both
  sides have the same gradient; the script checks it on one batch before training
  ("objective check");
* optimizer: AdamW lr 5e-5, weight decay 0.01 (not on biases / LayerNorm), linear schedule
  with 10 % warm-up, gradient clipping at 1.0, same seed.

Runs (each from a fresh copy of the student):

1. TextBrewer ``GeneralDistiller`` with its own train loop and a plain DataLoader (shuffled)
   over the encoded features, padded per batch by bertdistill's dynamic-padding collator;
2. the same, padded to ``max_length`` (the way TextBrewer's examples feed data);
3. bertdistill ``DistillRecipe`` (recipe ``kd_hidden_mse``) with the teacher cache on and
   length-grouped batches; the one-off cache build is timed on its own;
4. ablations (``--no-ablations`` skips them): bertdistill with the teacher computed live, and
   bertdistill with the cache but shuffled (not length-grouped) batches.

Speed is samples/s over the training loop only: from the call that starts training to the
end of the last optimizer step (an optimizer step-post hook stamps the time), so model
loading, the final evaluation and checkpoint saving are outside it. Each student is then
scored on SST-2 dev by the same evaluation code.

Runtime compatibility: TextBrewer 0.2.1.post1 runs unpatched on torch 2.13 / transformers 5
(it needs ``tensorboardX`` or ``tensorboard`` importable, only for its optional logger).

Usage::

    python benchmarks/textbrewer_compare.py --steps 300 --out runs/bench/textbrewer
    python benchmarks/textbrewer_compare.py --steps 20 --max-train-examples 4000  # smoke
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_TEACHER = "runs/bench/sst2-teacher/best"
#: every run the script knows; ``--runs`` picks some
RUNS = ("tb_dynamic", "tb_maxlen", "ours_cache", "ours_live", "ours_cache_random", "ours_live_random")
ABLATIONS = ("ours_live", "ours_cache_random", "ours_live_random")
FALLBACK_TEACHER = "minilm-l6"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", default=DEFAULT_TEACHER,
                   help=f"fine-tuned teacher folder (default {DEFAULT_TEACHER}; if that default "
                        f"does not exist, {FALLBACK_TEACHER} with a fresh head, for smoke runs)")
    p.add_argument("--task", default="sst2")
    p.add_argument("--data", default=None, help="task data (default: the shared SST-2 copy)")
    p.add_argument("--steps", type=int, default=300, help="optimizer steps per run")
    p.add_argument("--epochs", type=float, default=None,
                   help="train this many epochs of the train split instead of --steps (e.g. 1: a full run)")
    p.add_argument("--optimizer", default="fused", choices=["fused", "foreach", "loop"],
                   help="AdamW kernels, the same for both tools (bertdistill's make_optimizer)")
    p.add_argument("--mixed-precision", default="no", choices=["no", "bf16"],
                   help="bertdistill's precision (its runs and its cache build; TextBrewer has no CPU autocast "
                        "and trains in fp32)")
    p.add_argument("--cache-attention", default=None, choices=["eager", "sdpa"],
                   help="bertdistill's --cache-attention: the teacher's attention kernel in its cache build "
                        "(default: its own, sdpa)")
    p.add_argument("--compact-embeddings", action="store_true",
                   help="bertdistill's --compact-embeddings: train only the word-embedding rows the train split "
                        "reads (the others get the weight decay alone, as in a dense run)")
    p.add_argument("--dropout-draws", choices=["torch", "fast"], default="torch",
                   help="bertdistill's --dropout-draws: dropout masks of its training steps (default: torch)")
    p.add_argument("--cpu-allocator", choices=["keep", "system"], default="keep",
                   help="bertdistill's --cpu-allocator (process-wide: TextBrewer's run shares it) (default: keep)")
    p.add_argument("--textbrewer-from", default=None, metavar="JSON",
                   help="take the TextBrewer run (tb_dynamic) from an earlier result of this script with the "
                        "same settings instead of running it again; the row says so")
    p.add_argument("--runs", default=",".join(RUNS),
                   help=f"comma-separated runs of {', '.join(RUNS)} (tb_dynamic and ours_cache are always run)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--layers", default="0,2,4", help="teacher layers the student keeps")
    p.add_argument("--temperature", type=float, default=4.0)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--warmup-ratio", type=float, default=0.1)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--max-grad-norm", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--max-train-examples", type=int, default=None,
                   help="use only the first N training examples (both tools; smoke runs)")
    p.add_argument("--amortise-epochs", type=float, default=3.0,
                   help="epochs of a full training over which the one-off cache build is amortised")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--no-ablations", action="store_true",
                   help="skip the bertdistill ablations (live teacher, shuffled batches)")
    p.add_argument("--progress", action="store_true", help="show the tools' progress bars")
    p.add_argument("--keep-work", action="store_true",
                   help="keep the per-run folders (checkpoints, teacher cache) under --out")
    p.add_argument("--out", default="runs/bench/textbrewer", help="folder for the JSON result")
    return p.parse_args(argv)


# --------------------------------------------------------------------------- helpers

class StepClock:
    """Stamps the end of every optimizer step (any torch optimizer) while installed."""

    def __init__(self):
        self.stamps: list[float] = []
        self._handle = None

    def __enter__(self):
        from torch.optim.optimizer import register_optimizer_step_post_hook

        self.stamps = []
        self._handle = register_optimizer_step_post_hook(lambda opt, args, kwargs: self.stamps.append(time.perf_counter()))
        return self

    def __exit__(self, *exc):
        self._handle.remove()
        return False


class CountingCollate:
    """Wraps a collate function: counts examples, padded and real tokens of what it returns."""

    def __init__(self, fn):
        self.fn = fn
        self.examples = self.tokens = self.real_tokens = self.batches = 0

    def __call__(self, items):
        batch = self.fn(items)
        self.batches += 1
        self.examples += len(items)
        self.tokens += int(batch["input_ids"].numel())
        self.real_tokens += int(batch["attention_mask"].sum())
        return batch

    def stats(self) -> dict:
        return {"batches": self.batches, "examples": self.examples, "padded_tokens": self.tokens,
                "real_tokens": self.real_tokens,
                "padding_share": 1 - self.real_tokens / self.tokens if self.tokens else None,
                "mean_padded_length": self.tokens / self.examples if self.examples else None}


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def bert_adaptor(batch, outputs):
    """TextBrewer adaptor for a HF BERT classifier called with output_hidden_states=True."""
    return {"logits": outputs.logits, "hidden": outputs.hidden_states, "inputs_mask": batch["attention_mask"]}


def tb_features(features: list[dict]) -> list[dict]:
    """What TextBrewer's DataLoader iterates: model inputs only (no labels: no hard-label loss)."""
    return [{k: v for k, v in f.items() if k in ("input_ids", "token_type_ids")} for f in features]


def make_tb_distiller(teacher, student, kept: list[int], args, output_dir: str):
    from textbrewer import DistillationConfig, GeneralDistiller, TrainingConfig

    matches = [{"layer_T": t + 1, "layer_S": j + 1, "feature": "hidden", "loss": "hidden_mse", "weight": 1}
               for j, t in enumerate(kept)]
    train_config = TrainingConfig(device="cpu", output_dir=output_dir, log_dir=None, ckpt_steps=args.steps)
    distill_config = DistillationConfig(
        temperature=args.temperature, kd_loss_type="ce", kd_loss_weight=args.temperature ** 2,
        hard_label_weight=0, intermediate_matches=matches,
    )
    return GeneralDistiller(train_config=train_config, distill_config=distill_config, model_T=teacher,
                            model_S=student, adaptor_T=bert_adaptor, adaptor_S=bert_adaptor)


def evaluate(model, recipe, batch_size: int) -> float:
    from bertdistill.evaluation import predict
    from bertdistill.metrics import compute_metrics

    preds, refs = predict(model, recipe.task, recipe.dev_features, recipe.collator, batch_size=batch_size,
                          device="cpu", desc="dev")
    return float(compute_metrics(recipe.task, preds, refs)[recipe.task.main_metric])


# --------------------------------------------------------------------------- checks

def objective_check(recipe, student0, kept, args, work: Path) -> dict:
    """One batch, dropout off: bertdistill's loss and gradients vs TextBrewer's."""
    import torch
    import torch.nn.functional as F

    from bertdistill.pipelines.distill import DistillModule

    items = recipe.train_features[: args.batch_size]
    batch = recipe.collate(items)
    ours = copy.deepcopy(student0).eval()
    module = DistillModule(ours, recipe.distiller)
    saved_cache, recipe.cache = recipe.cache, None  # the live teacher: no fp16 rounding
    try:
        loss_ours, parts = recipe.loss_step(module, batch)
    finally:
        recipe.cache = saved_cache
    loss_ours.backward()

    theirs = copy.deepcopy(student0).eval()
    distiller = make_tb_distiller(recipe.teacher, theirs, kept, args, str(work / "tb-check"))
    tb_batch = recipe.collator(tb_features(items))
    loss_tb, tb_parts = distiller.train_on_batch(tb_batch, {"output_hidden_states": True})
    loss_tb.backward()

    with torch.no_grad():
        logits_t = recipe.teacher(**{k: v for k, v in tb_batch.items()}).logits.float()
        p_t = F.softmax(logits_t / args.temperature, dim=-1)
        entropy = float(-(p_t * F.log_softmax(logits_t / args.temperature, dim=-1)).sum(-1).mean())
    offset = args.temperature ** 2 * entropy
    worst, scale = 0.0, 0.0
    grads_ours = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        g_tb, g_ours = p.grad, grads_ours[name].grad
        if g_tb is None and g_ours is None:
            continue
        g_tb = torch.zeros_like(p) if g_tb is None else g_tb
        g_ours = torch.zeros_like(p) if g_ours is None else g_ours
        worst = max(worst, float((g_tb - g_ours).abs().max()))
        scale = max(scale, float(g_ours.abs().max()))
    return {
        "loss_bertdistill": loss_ours.item(), "loss_textbrewer": loss_tb.item(),
        "teacher_entropy_term": offset,
        "loss_gap_minus_entropy_term": loss_tb.item() - loss_ours.item() - offset,
        "grad_max_abs_diff": worst, "grad_max_abs": scale,
        "grad_rel_diff": worst / scale if scale else None,
        "parts_bertdistill": parts,
        "parts_textbrewer": {k: float(v.detach()) for k, v in tb_parts.items()},
    }


# --------------------------------------------------------------------------- runs

def run_textbrewer(recipe, student0, kept, args, work: Path, *, pad_to_max: bool, name: str) -> dict:
    import torch
    from torch.utils.data import DataLoader
    from transformers import get_linear_schedule_with_warmup

    from bertdistill.data.encode import Collator
    from bertdistill.training.engine import make_optimizer

    student = copy.deepcopy(student0)
    seed_everything(args.seed)
    collator = Collator(recipe.tokenizer.pad_token_id, pad_to_multiple_of=args.max_length if pad_to_max else None)
    counter = CountingCollate(collator)
    loader = DataLoader(tb_features(recipe.train_features), batch_size=args.batch_size, shuffle=True,
                        collate_fn=counter, generator=torch.Generator().manual_seed(args.seed))
    warmup = int(args.warmup_ratio * args.steps)
    out_dir = work / name
    load_before = loadavg()
    with StepClock() as clock:
        start = time.perf_counter()
        optimizer = make_optimizer(student, recipe.train_config)  # the same AdamW as bertdistill's runs
        distiller = make_tb_distiller(recipe.teacher, student, kept, args, str(out_dir))
        with distiller:
            distiller.train(optimizer, loader, num_steps=args.steps, scheduler_class=get_linear_schedule_with_warmup,
                            scheduler_args={"num_warmup_steps": warmup, "num_training_steps": args.steps},
                            max_grad_norm=args.max_grad_norm, output_hidden_states=True)
    return _finish(name, "textbrewer", start, clock, counter, student, recipe, args, load_before)


def run_bertdistill(recipe, student0, args, work: Path, *, cache, group_by_length: bool, name: str) -> dict:
    from bertdistill.pipelines.distill import DistillModule

    student = copy.deepcopy(student0)
    seed_everything(args.seed)
    recipe.student = student
    recipe.module = DistillModule(student, recipe.distiller)
    recipe.cache = cache
    recipe.train_config.group_by_length = group_by_length
    recipe.output = work / name
    counter = CountingCollate(recipe.collate)  # the recipe's own (bound) collate
    recipe.collate = counter  # instance attribute: the TrainLoop collates through the counter
    load_before = loadavg()
    try:
        with StepClock() as clock:
            start = time.perf_counter()
            recipe.train()
    finally:
        del recipe.collate
    return _finish(name, "bertdistill", start, clock, counter, student, recipe, args, load_before)


def _finish(name, tool, start, clock, counter, student, recipe, args, load_before) -> dict:
    if len(clock.stamps) < args.steps:
        raise RuntimeError(f"{name}: {len(clock.stamps)} optimizer steps recorded, expected {args.steps}")
    seconds = clock.stamps[args.steps - 1] - start
    stats = counter.stats()
    examples = stats["examples"]
    result = {
        "name": name, "tool": tool, "steps": args.steps, "examples": examples,
        "train_seconds": seconds, "samples_per_s": examples / seconds,
        "seconds_per_step": seconds / args.steps, "batches": stats, "loadavg_before": load_before,
        "loadavg_after": loadavg(),
    }
    t = time.perf_counter()
    result["dev_accuracy"] = evaluate(student, recipe, 64)
    result["eval_seconds"] = time.perf_counter() - t
    print(f"  {name}: {result['samples_per_s']:.1f} samples/s ({seconds:.1f} s for {args.steps} steps, "
          f"padding {stats['padding_share']:.0%}), dev accuracy {result['dev_accuracy']:.4f}", flush=True)
    return result


# --------------------------------------------------------------------------- table

def _break_even(build_seconds: float, other_rate: float, cached_rate: float, batch_size: int) -> int | None:
    """Optimizer steps after which the cached run, its cache build included, has caught up
    with a run at ``other_rate`` samples/s: n / cached + build = n / other."""
    gain = 1 / other_rate - 1 / cached_rate
    if gain <= 0:
        return None
    return math.ceil(build_seconds / gain / batch_size)


def table(rows: list[dict]) -> str:
    head = ["run", "samples/s", "x TB (dyn pad)", "x TB (max-len pad)", "dev acc", "note"]
    lines = [head]
    for r in rows:
        acc = "" if r.get("dev_accuracy") is None else f"{r['dev_accuracy']:.4f}"
        lines.append([r["label"], f"{r['samples_per_s']:.1f}", f"{r['speedup_vs_tb_dynamic']:.2f}x",
                      "-" if r["speedup_vs_tb_maxlen"] is None else f"{r['speedup_vs_tb_maxlen']:.2f}x", acc,
                      r.get("note", "")])
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    out = []
    for k, line in enumerate(lines):
        out.append("  ".join(str(c).ljust(w) if i in (0, 5) else str(c).rjust(w)
                             for i, (c, w) in enumerate(zip(line, widths))).rstrip())
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


# --------------------------------------------------------------------------- main

def _quiet_progress_bars() -> None:
    """Hide the TrainLoop / teacher-cache bars (they pass ``disable=`` explicitly, so the
    TQDM_DISABLE variable alone does not reach them); the script prints one line per run."""
    import bertdistill.distill.cache as cache_module
    import bertdistill.training.engine as engine

    for module in (engine, cache_module):
        original = module.tqdm

        def quiet(*a, _original=original, **k):
            k["disable"] = True
            return _original(*a, **k)

        module.tqdm = quiet


def selected_runs(args) -> set[str]:
    """The runs asked for by ``--runs`` / ``--no-ablations``; unknown names are refused before any work."""
    if args.epochs is not None and args.epochs <= 0:
        raise SystemExit(f"--epochs must be positive, got {args.epochs}")
    names = {n.strip() for n in args.runs.split(",") if n.strip()}
    unknown = sorted(names - set(RUNS))
    if unknown:
        raise SystemExit(f"--runs: unknown run(s) {', '.join(unknown)}; known: {', '.join(RUNS)}")
    if args.no_ablations:
        names -= set(ABLATIONS)
    return names | {"tb_dynamic", "ours_cache"}


#: settings that must match for a TextBrewer run to be reused (``--textbrewer-from``)
SAME_JOB = ("teacher", "task", "data", "steps", "epochs", "optimizer", "batch_size", "max_length", "layers",
            "temperature", "lr", "warmup_ratio", "weight_decay", "max_grad_norm", "seed", "max_train_examples",
            "threads")


def read_textbrewer_run(path: str) -> tuple[dict, dict]:
    """``(settings, tb_dynamic run)`` of an earlier result of this script (read before any model)."""
    try:
        earlier = json.loads(Path(path).read_text())
        return earlier["settings"], dict(earlier["runs"]["tb_dynamic"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SystemExit(f"--textbrewer-from {path}: not a result of this script with a tb_dynamic run ({e})")


def reused_textbrewer_run(args) -> dict:
    """The ``tb_dynamic`` run of an earlier result of this script, if it was the same job."""
    path = Path(args.textbrewer_from)
    old, run = read_textbrewer_run(args.textbrewer_from)
    now = vars(args)
    differ = [k for k in SAME_JOB if old.get(k) != now.get(k)]
    if differ:
        raise SystemExit(f"--textbrewer-from {path}: another job ({', '.join(f'{k} {old.get(k)!r} there, {now.get(k)!r} here' for k in differ)})")
    run["reused_from"] = str(path)
    return run


def main(argv=None) -> dict:
    args = parse_args(argv)
    wanted = selected_runs(args)
    if args.textbrewer_from:
        read_textbrewer_run(args.textbrewer_from)  # a bad file fails here, before the models load
    if not args.progress:
        os.environ.setdefault("TQDM_DISABLE", "1")
    import logging
    import warnings

    import torch

    if not args.progress:
        _quiet_progress_bars()

    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", category=SyntaxWarning)  # TextBrewer's `is not 'none'`
    import textbrewer
    import transformers

    from bertdistill.bench.machine import cpu_model_and_flags
    cpu, cpu_flags = cpu_model_and_flags()  # recorded with the results: numbers depend on the host
    from bertdistill.distill.cache import TeacherCache
    from bertdistill.pipelines.distill import DistillConfig, DistillRecipe
    from bertdistill.students import build_student

    from bertdistill.training.allocator import keep_freed_memory

    allocator = keep_freed_memory(args.cpu_allocator)  # process-wide (malloc), so both tools run under it
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="work-", dir=out))
    kept = [int(x) for x in args.layers.split(",")]

    teacher_name, teacher_note = args.teacher, "fine-tuned teacher"
    if args.teacher == DEFAULT_TEACHER and not Path(DEFAULT_TEACHER).is_dir():
        teacher_name = FALLBACK_TEACHER
        teacher_note = (f"FALLBACK: {DEFAULT_TEACHER} does not exist yet, using {FALLBACK_TEACHER} with a "
                        "fresh (random) classification head: a smoke run, accuracies are meaningless")
    print(f"teacher: {teacher_name} ({teacher_note})", flush=True)
    load = loadavg()
    if load and torch.get_num_threads() > 1 and load[0] > 0.5:
        print(f"WARNING: load average {load[0]} before start: other processes use the CPUs, and torch's "
              f"{torch.get_num_threads()} threads will be oversubscribed (much slower, noisy); --threads 1 "
              "or an idle machine gives steadier numbers", flush=True)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, textbrewer "
          f"{textbrewer.__version__}, {torch.get_num_threads()} threads, load {loadavg()}", flush=True)

    config = DistillConfig(
        teacher=teacher_name, task=args.task, data=args.data, output=str(work / "bertdistill"),
        recipe="kd_hidden_mse", student_arch="same", student_layers=kept, temperature=args.temperature,
        max_length=args.max_length, max_train_examples=args.max_train_examples, cache_teacher=False,
        eval_batch_size=64, compact_embeddings=args.compact_embeddings,
        train={"max_steps": args.steps, "batch_size": args.batch_size, "lr": args.lr,
               "warmup_ratio": args.warmup_ratio, "weight_decay": args.weight_decay,
               "max_grad_norm": args.max_grad_norm, "seed": args.seed, "resume": False,
               "group_by_length": True, "grad_accum": 1, "mixed_precision": args.mixed_precision,
               "log_every": 50, "dropout_draws": args.dropout_draws, "cpu_allocator": args.cpu_allocator},
    )
    recipe = DistillRecipe(config)
    t = time.perf_counter()
    recipe.setup()
    setup_seconds = time.perf_counter() - t
    n_train = len(recipe.train_features)
    if args.epochs:
        args.steps = math.ceil(args.epochs * n_train / args.batch_size)
        recipe.train_config.max_steps = args.steps
    recipe.train_config.optimizer = args.optimizer
    print(f"setup {setup_seconds:.1f} s: {n_train} train / {len(recipe.dev_features)} dev examples, "
          f"{args.steps} steps per run, AdamW kernels {args.optimizer!r} on both sides, "
          f"teacher keys {recipe.distiller.teacher_keys}", flush=True)

    # one student, deep-copied for every run
    student0, info = build_student(recipe.teacher, layers=kept, arch="same")
    if info.kept != recipe.student_info.kept:
        raise RuntimeError(f"student layers differ: {info.kept} vs the recipe's {recipe.student_info.kept}")
    same_init = all(torch.equal(a, b) for a, b in zip(student0.state_dict().values(),
                                                      recipe.student.state_dict().values()))
    student0.set_attn_implementation(recipe.student.config._attn_implementation)
    print(f"student: layers {kept} of {recipe.teacher.config.num_hidden_layers}, "
          f"{sum(p.numel() for p in student0.parameters()) / 1e6:.1f} M parameters, same init as the "
          f"recipe's own student: {same_init}", flush=True)

    check = objective_check(recipe, student0, kept, args, work)
    print(f"objective check (1 batch, no dropout): loss TB - ours - T²·H(p_T) = "
          f"{check['loss_gap_minus_entropy_term']:.2e}; max |grad diff| / max |grad| = {check['grad_rel_diff']:.2e}",
          flush=True)

    runs: dict[str, dict] = {}
    print("runs:", flush=True)
    if args.textbrewer_from:
        runs["tb_dynamic"] = reused_textbrewer_run(args)
        print(f"  tb_dynamic: {runs['tb_dynamic']['train_seconds']:.1f} s, dev {runs['tb_dynamic']['dev_accuracy']:.4f} "
              f"(not run: from {args.textbrewer_from})", flush=True)
    else:
        runs["tb_dynamic"] = run_textbrewer(recipe, student0, kept, args, work, pad_to_max=False, name="tb_dynamic")
    if "tb_maxlen" in wanted:
        runs["tb_maxlen"] = run_textbrewer(recipe, student0, kept, args, work, pad_to_max=True, name="tb_maxlen")

    cache_dir = work / "teacher-cache"
    t = time.perf_counter()
    cache = TeacherCache.load_or_build(recipe.teacher, recipe.train_features, recipe.distiller.teacher_keys,
                                       cache_dir=cache_dir, precision=args.mixed_precision,
                                       attention=args.cache_attention)
    cache_seconds = time.perf_counter() - t
    cache_bytes = sum(f.stat().st_size for f in cache_dir.rglob("*") if f.is_file())
    print(f"  teacher cache: built in {cache_seconds:.1f} s for {n_train} examples "
          f"({cache_bytes / 2**20:.0f} MiB)", flush=True)
    runs["ours_cache"] = run_bertdistill(recipe, student0, args, work, cache=cache, group_by_length=True,
                                         name="ours_cache")
    ablations = {"ours_live": (None, True), "ours_cache_random": (cache, False), "ours_live_random": (None, False)}
    for name, (run_cache, grouped) in ablations.items():
        if name in wanted:
            runs[name] = run_bertdistill(recipe, student0, args, work, cache=run_cache, group_by_length=grouped,
                                         name=name)
    del cache

    teacher_acc = evaluate(recipe.teacher, recipe, 64)

    # ---- rows
    base_dyn = runs["tb_dynamic"]["samples_per_s"]
    base_max = runs["tb_maxlen"]["samples_per_s"] if "tb_maxlen" in runs else None
    ours = runs["ours_cache"]
    with_build = ours["examples"] / (ours["train_seconds"] + cache_seconds)
    per_sample = 1 / ours["samples_per_s"] + cache_seconds / (args.amortise_epochs * n_train)
    amortised = 1 / per_sample
    rows = [
        {"label": "TextBrewer, dynamic padding", "samples_per_s": base_dyn,
         "dev_accuracy": runs["tb_dynamic"]["dev_accuracy"],
         "note": "baseline; shuffled batches" + ("; earlier run, reused" if args.textbrewer_from else "")},
        {"label": "bertdistill, cache + length groups", "samples_per_s": ours["samples_per_s"],
         "dev_accuracy": ours["dev_accuracy"], "note": "loop only, cache already built"},
        {"label": "  incl. cache build (this run)", "samples_per_s": with_build, "dev_accuracy": None,
         "note": f"+{cache_seconds:.1f} s build over all {n_train} train examples"},
        {"label": f"  cache build amortised, {args.amortise_epochs:g} epochs", "samples_per_s": amortised,
         "dev_accuracy": None, "note": f"build / ({args.amortise_epochs:g} x {n_train}) added per sample"},
    ]
    if "tb_maxlen" in runs:
        rows.insert(1, {"label": f"TextBrewer, padded to {args.max_length}", "samples_per_s": base_max,
                        "dev_accuracy": runs["tb_maxlen"]["dev_accuracy"], "note": "as TextBrewer's examples feed data"})
    labels = {"ours_live": ("bertdistill, live teacher + length groups", "ablation: no cache"),
              "ours_cache_random": ("bertdistill, cache + shuffled batches", "ablation: no length groups"),
              "ours_live_random": ("bertdistill, live teacher + shuffled batches",
                                   "engine alone: TextBrewer's work per step")}
    for name, (label, note) in labels.items():
        if name in runs:
            rows.append({"label": label, "samples_per_s": runs[name]["samples_per_s"],
                         "dev_accuracy": runs[name]["dev_accuracy"], "note": note})
    break_even = {"vs_textbrewer_dynamic_steps": _break_even(cache_seconds, base_dyn, ours["samples_per_s"],
                                                             args.batch_size)}
    if "ours_live" in runs:
        break_even["vs_bertdistill_live_teacher_steps"] = _break_even(
            cache_seconds, runs["ours_live"]["samples_per_s"], ours["samples_per_s"], args.batch_size)
    for r in rows:
        r["speedup_vs_tb_dynamic"] = r["samples_per_s"] / base_dyn
        r["speedup_vs_tb_maxlen"] = r["samples_per_s"] / base_max if base_max else None

    end_to_end = {"textbrewer_seconds": runs["tb_dynamic"]["train_seconds"],
                  "bertdistill_seconds": cache_seconds + ours["train_seconds"],
                  "bertdistill_cache_build_seconds": cache_seconds}
    end_to_end["speedup"] = end_to_end["textbrewer_seconds"] / end_to_end["bertdistill_seconds"]
    text = table(rows)
    header = (f"{args.task} · teacher {teacher_name} (dev acc {teacher_acc:.4f}) · student layers {kept} · "
              f"{args.steps} steps x batch {args.batch_size} · max_length {args.max_length} · "
              f"KD T={args.temperature:g} + hidden MSE · {torch.get_num_threads()} threads")
    print()
    print(header)
    print(text)
    print(f"end to end, {args.steps} steps: TextBrewer {end_to_end['textbrewer_seconds']:.1f} s (training loop), "
          f"bertdistill {end_to_end['bertdistill_seconds']:.1f} s (cache build {cache_seconds:.1f} s + training loop): "
          f"{end_to_end['speedup']:.2f}x")
    steps_per_epoch = math.ceil(n_train / args.batch_size)
    for key, label in (("vs_textbrewer_dynamic_steps", "TextBrewer (dynamic padding)"),
                       ("vs_bertdistill_live_teacher_steps", "bertdistill with the live teacher")):
        if key in break_even:
            value = break_even[key]
            where = ("never (not faster per step)" if value is None else
                     f"{value} steps = {value / steps_per_epoch:.2f} epochs of {steps_per_epoch} steps")
            print(f"cache build pays for itself vs {label} after: {where}")

    result = {
        "benchmark": "textbrewer_compare",
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "teacher": teacher_name, "teacher_note": teacher_note, "teacher_dev_accuracy": teacher_acc,
        "task": args.task, "train_examples": n_train, "dev_examples": len(recipe.dev_features),
        "student": {"kept_layers": kept, "parameters": sum(p.numel() for p in student0.parameters()),
                    "same_init_as_recipe_student": same_init},
        "settings": {k: v for k, v in vars(args).items()},
        "objective": {
            "bertdistill": "recipe kd_hidden_mse: kd_kl (T² KL, T=%g) weight 1 + hidden_mse over copied layers "
                           "(summed over pairs) weight 1" % args.temperature,
            "textbrewer": "GeneralDistiller: kd_loss_type 'ce' weight T²=%g + hidden_mse matches %s weight 1 each"
                          % (args.temperature ** 2, [(j + 1, t + 1) for j, t in enumerate(kept)]),
            "check": check,
        },
        "setup_seconds": setup_seconds,
        "teacher_cache": {"build_seconds": cache_seconds, "bytes": cache_bytes, "examples": n_train,
                          "dtype": "float16", "keys": recipe.distiller.teacher_keys,
                          "teacher_precision": args.mixed_precision},
        "runs": runs, "rows": rows, "table": text, "end_to_end": end_to_end,
        "cache_break_even": {**break_even, "steps_per_epoch": math.ceil(n_train / args.batch_size)},
        "environment": {"python": platform.python_version(), "torch": torch.__version__,
                        "transformers": transformers.__version__, "textbrewer": textbrewer.__version__,
                        "threads": torch.get_num_threads(), "cpus": os.cpu_count(), "machine": platform.machine(),
                        "allocator": allocator, "dropout_draws": args.dropout_draws,
                        "cpu": cpu, "cpu_flags": cpu_flags},
        "timing_note": "wall time from the start of training to the end of the last optimizer step; the machine "
                       "may be shared (see loadavg_before/after of each run)",
    }
    path = out / "textbrewer_compare.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\nwrote {path}")
    if args.keep_work:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return result


if __name__ == "__main__":
    main()
