"""Probe (issue 11): could ONNX Runtime int8 (VNNI) build the teacher cache faster than torch fp32,
and how far are its features from fp32's? N SST-2 train phrases (default 16,000), the SST-2 teacher
of run_all.sh, 2 threads. Run from the repository root:
    python benchmarks/results/perf/dec07d/int8_cache_probe.py 16000
"""
import sys, time, tempfile
from pathlib import Path
import numpy as np
import torch
sys.path.insert(0, "benchmarks")
from sst2_job import sst2_recipe
from bertdistill.distill.cache import token_budget_batches, attention_kernel
from bertdistill.data.encode import Collator

torch.set_num_threads(2)
N = int(sys.argv[1]) if len(sys.argv) > 1 else 16000
work = Path(tempfile.mkdtemp())
r = sst2_recipe(work / "o", max_train_examples=N)
T, F, K = r.teacher, r.train_features, r.distiller.teacher_keys
print("keys", K, "examples", len(F))
hidden = [int(k.split(":")[1]) for k in K if k.startswith("hidden:")]

class Outs(torch.nn.Module):
    def __init__(self, m):
        super().__init__(); self.m = m
    def forward(self, input_ids, attention_mask, token_type_ids):
        o = self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                   output_hidden_states=True)
        return (o.logits, *[o.hidden_states[i] for i in hidden])

names = ["logits"] + [f"hidden_{i}" for i in hidden]
inputs = ["input_ids", "attention_mask", "token_type_ids"]
t0 = time.perf_counter()
with attention_kernel(T, "eager", K):
    T.eval()
    args = (torch.randint(5, 1000, (2, 8)), torch.ones(2, 8, dtype=torch.long), torch.zeros(2, 8, dtype=torch.long))
    args[1][1, 4:] = 0
    axes = {n: {0: "b", 1: "s"} for n in inputs + names[1:]}; axes["logits"] = {0: "b"}
    with torch.no_grad():
        torch.onnx.export(Outs(T), args, str(work / "t.onnx"), dynamo=False, input_names=inputs, output_names=names,
                          dynamic_axes=axes, opset_version=17, do_constant_folding=True)
t_export = time.perf_counter() - t0
from bertdistill.export.onnx import optimize_transformer, fusion_counts
from bertdistill.export.families import FAMILIES
from bertdistill.export.quantize import quantize_int8
t0 = time.perf_counter(); fus = optimize_transformer(work / "t.onnx", work / "opt.onnx", T, FAMILIES["bert"]); t_opt = time.perf_counter() - t0
t0 = time.perf_counter(); quantize_int8(work / "opt.onnx", work / "q.onnx"); t_q = time.perf_counter() - t0
print(f"export {t_export:.1f} s, fuse {t_opt:.1f} s, quantise {t_q:.1f} s; fusions {fus}")
print("int8 graph ops:", {k: v for k, v in fusion_counts(work / "q.onnx").items() if v})

import onnxruntime as ort
def session(p):
    o = ort.SessionOptions(); o.intra_op_num_threads = 2; o.inter_op_num_threads = 1
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(p), o, providers=["CPUExecutionProvider"])

lengths = [len(f["input_ids"]) for f in F]
order = sorted(range(len(F)), key=lengths.__getitem__)
batches = token_budget_batches([lengths[i] for i in order], 4096)
col = Collator(pad_token_id=0)
prepared = []
for s, e in batches:
    idx = order[s:e]
    b = col([{k: F[i][k] for k in ("input_ids", "token_type_ids")} for i in idx])
    prepared.append((idx, {k: b[k].numpy().astype(np.int64) for k in inputs}))

def run_ort(sess):
    out = {}
    t = time.perf_counter()
    for idx, feeds in prepared:
        res = sess.run(names, feeds)
        out[tuple(idx)] = res
    return time.perf_counter() - t, out

def run_torch():
    T.eval()  # export() leaves the wrapped model in the wrapper's (training) mode
    out = {}
    t = time.perf_counter()
    with attention_kernel(T, "eager", K), torch.inference_mode():
        for idx, feeds in prepared:
            o = Outs(T)(*(torch.from_numpy(feeds[k]) for k in inputs))
            out[tuple(idx)] = [x.numpy() for x in o]
    return time.perf_counter() - t, out

tt, ref = run_torch()
print(f"torch fp32 eager: {tt:.1f} s")
for label, p in (("ort fp32 fused", work / "opt.onnx"), ("ort int8", work / "q.onnx")):
    s = session(p)
    dt, out = run_ort(s)
    agree = tot = 0; lmax = 0.0; rel = {n: [0.0, 0.0] for n in names[1:]}
    masks = {tuple(idx): feeds["attention_mask"].astype(bool) for idx, feeds in prepared}
    for key, res in out.items():
        r0 = ref[key]
        m = masks[key]  # real tokens only: padded rows are not cached
        agree += int((res[0].argmax(-1) == r0[0].argmax(-1)).sum()); tot += len(key)
        lmax = max(lmax, float(np.abs(res[0] - r0[0]).max()))
        for j, n in enumerate(names[1:], start=1):
            rel[n][0] += float(((res[j][m] - r0[j][m]) ** 2).sum()); rel[n][1] += float((r0[j][m] ** 2).sum())
    print(f"{label}: {dt:.1f} s ({tt / dt:.2f}x torch); argmax agrees {agree}/{tot}; max |dlogit| {lmax:.3f}; "
          + ", ".join(f"{n} rel err {np.sqrt(a / b):.4f}" for n, (a, b) in rel.items()))
