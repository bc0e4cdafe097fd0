"""The GPU check: distillation steps on one CUDA device (and two processes when there are two).

Measures, with random weights of the real shapes and synthetic inputs (no data is read):
  * the GPU's bf16 peak: the best rate of back-to-back 8192x8192 bf16 matrix products;
  * the task-distillation step of an SST-2 student (MiniLM-L6-shaped teacher, its 3-layer
    student from every other layer, the ``distilbert`` recipe, batch 32, length 64) in fp32 and
    under bf16 autocast: samples/s and the share of the bf16 peak (FLOPs counted by
    ``bertdistill.bench.flops.step_flops``);
  * general distillation (``general_distilbert``, masked-LM terms over chunks of positions) at
    batch 32 and 256, length 128, bf16, with gradient accumulation to 4,096 sequences per
    optimizer update as in DistilBERT: tokens/s and peak GPU memory (max allocated);
  * the same at batch 32 on 2 processes (torchrun, DDP) when the machine has more than one GPU.
On a machine without CUDA it prints one line saying so and exits 0.

    python benchmarks/gpu_check.py --out benchmarks/results/gpu-check/gpu_check.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import torch

SEQUENCES_PER_UPDATE = 4096


def bf16_peak(size: int = 8192, seconds: float = 3.0) -> float:
    a = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(10):
            a @ b
        torch.cuda.synchronize()
        best = max(best, 10 * 2 * size**3 / (time.perf_counter() - start))
    return best


def minilm_shaped(kind: str):
    from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification

    config = BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                        intermediate_size=1536, num_labels=2, attn_implementation="sdpa")
    torch.manual_seed(0)
    model = BertForMaskedLM(config) if kind == "mlm" else BertForSequenceClassification(config)
    return model.eval().requires_grad_(False)


def distill_setup(recipe: str, kind: str, layers: str, arch: str):
    from bertdistill.distill.distiller import Distiller
    from bertdistill.distill.features import prepare_model
    from bertdistill.distill.recipe import load_recipe
    from bertdistill.distill.vocab_chunks import DEFAULT_VOCAB_CHUNK, chunked_module
    from bertdistill.pipelines.distill import DistillModule
    from bertdistill.students import build_student

    teacher = minilm_shaped(kind)
    student, info = build_student(teacher, layers=layers, arch=arch, attn_implementation="sdpa")
    distiller = Distiller(load_recipe(recipe).terms, student_config=student.config, teacher_config=teacher.config,
                          kept=info.kept, task_kind="token_classification" if kind == "mlm" else "classification")
    prepare_model(student, distiller.student_needs)
    prepare_model(teacher, distiller.teacher_needs)
    module = (chunked_module(student, distiller, teacher, DEFAULT_VOCAB_CHUNK) if kind == "mlm" else None) \
        or DistillModule(student, distiller)
    return teacher.cuda(), distiller, module.cuda().train()


def batch_of(size: int, length: int, mlm: bool, device: str = "cuda") -> dict:
    g = torch.Generator().manual_seed(size)
    ids = torch.randint(1000, 30000, (size, length), generator=g)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if mlm:
        masked = torch.rand(ids.shape, generator=g) < 0.15
        batch["labels"] = torch.where(masked, ids, torch.full_like(ids, -100))
        batch["input_ids"] = ids.masked_fill(masked, 103)
    else:
        batch["labels"] = torch.randint(0, 2, (size,), generator=g)
    return {k: v.to(device) for k, v in batch.items()}


def step_fn(teacher, distiller, module, batch, dtype):
    from bertdistill.distill.features import extract
    from bertdistill.models.inputs import model_inputs

    inner = getattr(module, "module", module)  # DDP-wrapped on two processes

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=dtype == "bf16"):
            if hasattr(inner, "teacher_features"):
                feats = inner.teacher_features(batch)
            else:
                with torch.no_grad():
                    out = teacher(**model_inputs(teacher, batch), output_hidden_states=distiller.teacher_needs
                                  .hidden_states)
                feats = extract(out, distiller.teacher_keys)
            total, _ = module(batch, feats)
        total.backward()
    return step


def timed(fn, repeats: int) -> float:
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def task_step(dtype: str, peak: float) -> dict:
    from bertdistill.bench.flops import step_flops, utilisation

    teacher, distiller, module = distill_setup("distilbert", "classification", "every_other", "same")
    batch = batch_of(32, 64, mlm=False)
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-4)
    step = step_fn(teacher, distiller, module, batch, dtype)

    def update():
        step()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    flops = step_flops(step)
    optimizer.zero_grad(set_to_none=True)
    for _ in range(5):
        update()
    seconds = timed(update, 30)
    return {"dtype": dtype, "batch": 32, "length": 64, "samples_per_s": round(32 / seconds, 1),
            "step_flops": flops, "share_of_bf16_peak": round(utilisation(flops, seconds, peak), 4)}


def general_step(batch_size: int, ddp: bool = False) -> dict:
    teacher, distiller, module = distill_setup("general_distilbert", "mlm", "skip", "distilbert")
    world = 1
    if ddp:
        world = torch.distributed.get_world_size()
        module = torch.nn.parallel.DistributedDataParallel(module, device_ids=[torch.cuda.current_device()])
    micro = max(1, SEQUENCES_PER_UPDATE // (batch_size * world))
    batch = batch_of(batch_size, 128, mlm=True)
    optimizer = torch.optim.AdamW(module.parameters(), lr=5e-4)
    step = step_fn(teacher, distiller, module, batch, "bf16")

    def update():
        for i in range(micro):
            if ddp and i < micro - 1:
                with module.no_sync():
                    step()
            else:
                step()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    step()  # warm-up micro-batch
    optimizer.zero_grad(set_to_none=True)
    torch.cuda.reset_peak_memory_stats()
    seconds = timed(update, 1)
    tokens = batch_size * 128 * micro * world
    return {"batch": batch_size, "length": 128, "processes": world, "micro_batches_per_update": micro,
            "sequences_per_update": batch_size * micro * world, "dtype": "bf16",
            "tokens_per_s": round(tokens / seconds, 1),
            "peak_gpu_memory_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1)}


def two_processes() -> dict:
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", __file__,
                           "--ddp-worker"], capture_output=True, text=True, timeout=300)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"error": (done.stderr or done.stdout).strip().splitlines()[-1:]}
    return json.loads(lines[-1])


def ddp_worker() -> None:
    torch.distributed.init_process_group("nccl")
    torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    row = general_step(32, ddp=True)
    if torch.distributed.get_rank() == 0:
        print(json.dumps(row))
    torch.distributed.destroy_process_group()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="also write the JSON here")
    ap.add_argument("--ddp-worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("gpu-check: no CUDA device on this machine; nothing measured")
        return 0
    if a.ddp_worker:
        ddp_worker()
        return 0
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32
    peak = bf16_peak()
    report = {"device": torch.cuda.get_device_name(0), "gpus": torch.cuda.device_count(),
              "torch": torch.__version__, "cuda": torch.version.cuda, "inputs": "synthetic, random weights",
              "bf16_peak_tflops": round(peak / 1e12, 1),
              "task_step": [task_step("fp32", peak), task_step("bf16", peak)],
              "general": [general_step(32), general_step(256)]}
    if torch.cuda.device_count() > 1:
        report["general_two_processes"] = two_processes()
    print(json.dumps(report, indent=2))
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=2)
            fh.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
