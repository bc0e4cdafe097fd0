"""Peak memory of one general-distillation step (general_distilbert), and what makes it.

A random masked-LM teacher of MiniLM-L6's shape (6 layers, 384 wide, 12 heads, BERT's 30,522-word
vocabulary) and its DistilBERT student from layers 0, 2, 4 (``bertdistill general-distill``'s
default), one forward and backward pass on a random batch with 15% of the real tokens masked.
Memory only, nothing is timed. Run each setting in its own process (the peak is the process's):

    python benchmarks/general_step_memory.py --batch 8 --length 128 --vocab-chunk 0     # all at once
    python benchmarks/general_step_memory.py --batch 8 --length 128                     # chunks (default)
    python benchmarks/general_step_memory.py --batch 8 --length 128 --vocab-chunk 0 --profile

Prints JSON: the resident set before the step, the process's peak, and the step's increment
(peak - before); ``--profile`` adds the operators that allocated the most (torch.profiler,
profile_memory=True), which names the tensors of the peak.
"""

from __future__ import annotations

import argparse
import json
import resource

import torch
from transformers import BertConfig, BertForMaskedLM

from bertdistill.distill.distiller import Distiller
from bertdistill.distill.features import extract, prepare_model
from bertdistill.distill.recipe import load_recipe
from bertdistill.distill.vocab_chunks import DEFAULT_VOCAB_CHUNK, chunked_module
from bertdistill.models.inputs import model_inputs
from bertdistill.pipelines.distill import DistillModule
from bertdistill.students import build_student


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def build(vocab_chunk: int):
    config = BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                        intermediate_size=1536, attn_implementation="sdpa")
    torch.manual_seed(0)
    teacher = BertForMaskedLM(config).eval().requires_grad_(False)
    student, info = build_student(teacher, layers="skip", arch="distilbert", attn_implementation="sdpa")
    distiller = Distiller(load_recipe("general_distilbert").terms, student_config=student.config,
                          teacher_config=teacher.config, kept=info.kept, task_kind="token_classification")
    prepare_model(student, distiller.student_needs)
    prepare_model(teacher, distiller.teacher_needs)
    module = chunked_module(student, distiller, teacher, vocab_chunk) or DistillModule(student, distiller)
    return teacher, distiller, module.train()


def batch_of(size: int, length: int) -> dict:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1000, 30000, (size, length), generator=g)
    mask = torch.ones_like(ids)
    mask[size // 2:, 3 * length // 4:] = 0  # half the batch padded by a quarter
    masked = (torch.rand(ids.shape, generator=g) < 0.15) & (mask == 1)
    labels = torch.where(masked, ids, torch.full_like(ids, -100))
    return {"input_ids": ids.masked_fill(masked, 103).masked_fill(mask == 0, 0), "attention_mask": mask,
            "labels": labels}


def step(teacher, distiller, module, batch) -> dict:
    if hasattr(module, "teacher_features"):
        feats = module.teacher_features(batch)
    else:
        with torch.no_grad():
            out = teacher(**model_inputs(teacher, batch), output_hidden_states=True)
        feats = extract(out, distiller.teacher_keys)
        del out
    total, parts = module(batch, feats)
    total.backward()
    return parts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--length", type=int, default=128)
    ap.add_argument("--vocab-chunk", type=int, default=DEFAULT_VOCAB_CHUNK)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--profile", action="store_true", help="also list the operators that allocated the most")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    teacher, distiller, module = build(a.vocab_chunk)
    batch = batch_of(a.batch, a.length)
    before = rss_mb()
    report = {"batch": a.batch, "length": a.length, "vocab_chunk": a.vocab_chunk, "module": type(module).__name__,
              "tokens": int(batch["attention_mask"].sum()), "rss_before_mb": round(before, 1)}
    if a.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            parts = step(teacher, distiller, module, batch)
        rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_memory_usage, reverse=True)[:12]
        report["top_allocating_ops"] = [{"op": e.key, "calls": e.count,
                                         "allocated_mb": round(e.self_cpu_memory_usage / 2**20, 1)} for e in rows]
    else:
        parts = step(teacher, distiller, module, batch)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report.update(peak_rss_mb=round(peak, 1), step_increment_mb=round(peak - before, 1),
                  losses={k: round(v, 6) for k, v in parts.items()})
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
