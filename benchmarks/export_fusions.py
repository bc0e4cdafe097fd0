"""Which ONNX exporter gives a graph ONNX Runtime's transformer optimizer can fuse?

For a saved model: export with the TorchScript and the dynamo exporter, from eager and from
sdpa attention, run the optimizer (model_type bert) on each and count the fused operators;
also the largest logit difference to PyTorch on a few real sentences. JSON to --output.

    python benchmarks/export_fusions.py /work/artifacts/sst2-teacher/best --output benchmarks/results/export/fusions.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from bertdistill.export.families import family_of
from bertdistill.export.onnx import export_onnx, optimize_transformer
from bertdistill.export.package import FALLBACK_TEXTS
from bertdistill.export.runtime import OnnxModel
from bertdistill.models.loading import load_tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    family = family_of(args.model_dir)
    tokenizer = load_tokenizer(args.model_dir)
    batch = tokenizer(FALLBACK_TEXTS, padding=True, return_tensors="pt")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for exporter, opset in (("torchscript", 17), ("dynamo", 18)):
            for attn in ("eager", "sdpa"):
                model = family.load(args.model_dir, attn_implementation=attn).eval()
                start = time.perf_counter()
                raw = export_onnx(model, family, Path(tmp) / f"{exporter}-{attn}.onnx", opset=opset, exporter=exporter)
                seconds = time.perf_counter() - start
                fused = optimize_transformer(raw, Path(tmp) / f"{exporter}-{attn}.opt.onnx", model, family)
                inputs = {k: batch[k] for k in family.inputs}
                with torch.no_grad():
                    want = model(**inputs).logits
                got = OnnxModel(Path(tmp) / f"{exporter}-{attn}.opt.onnx")(**inputs).logits
                row = {"exporter": exporter, "opset": opset, "attention": attn, "export_seconds": round(seconds, 1),
                       "fused": {k: v for k, v in fused.items() if v}, "max_abs_diff": float((want - got).abs().max())}
                rows.append(row)
                print(json.dumps(row))
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps({"model": args.model_dir, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
