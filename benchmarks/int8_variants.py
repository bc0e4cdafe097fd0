"""Dev accuracy of ONNX Runtime dynamic int8 variants of one exported fp32 model.

Per-tensor vs per-channel weight scales, with and without the fused Attention nodes quantised;
each variant scored on the task's whole dev split next to the fp32 graph.

    python benchmarks/int8_variants.py EXPORTED_FP32_DIR --data ../shared/data/sst2/glue --max-length 64 \
        --output benchmarks/results/export/int8_variants.json
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import warnings
from pathlib import Path

from onnx import TensorProto
from onnxruntime.quantization import QuantType, quantize_dynamic

from bertdistill.data import load_task
from bertdistill.data.encode import Collator, encode
from bertdistill.evaluation import evaluate_features
from bertdistill.export.runtime import ONNX_FILE, OnnxModel, read_manifest
from bertdistill.models.loading import load_tokenizer, task_from_labels

VARIANTS = {
    "per-tensor, MatMul + Attention": {"per_channel": False},
    "per-tensor, MatMul only": {"per_channel": False, "op_types_to_quantize": ["MatMul"]},
    "per-channel, MatMul only": {"per_channel": True, "op_types_to_quantize": ["MatMul"]},
    "per-channel, MatMul + Attention (bertdistill's choice)": {"per_channel": True},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("exported_dir", help="a `bertdistill export --format onnx` folder")
    parser.add_argument("--data", default=None)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    if read_manifest(args.exported_dir)["format"] != "onnx":
        raise SystemExit(f"{args.exported_dir} is not an fp32 (--format onnx) export")
    warnings.simplefilter("ignore")
    logging.getLogger().setLevel(logging.ERROR)
    task = task_from_labels(args.exported_dir)
    tokenizer = load_tokenizer(args.exported_dir)
    features = encode(task, load_task(task.name, args.data).split("dev"), tokenizer, args.max_length)
    collator = Collator(tokenizer.pad_token_id)
    fp32 = Path(args.exported_dir) / ONNX_FILE
    rows = {"fp32": evaluate_features(OnnxModel(fp32), task, features, collator, device="cpu")[task.main_metric]}
    print(f"fp32: {rows['fp32']:.4f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, options in VARIANTS.items():
            out = Path(tmp) / "q.onnx"
            quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8,
                             extra_options={"DefaultTensorType": TensorProto.FLOAT}, **options)
            rows[name] = evaluate_features(OnnxModel(out), task, features, collator, device="cpu")[task.main_metric]
            print(f"{name}: {rows[name]:.4f}", flush=True)
    if args.output:
        Path(args.output).write_text(json.dumps({"model": args.exported_dir, "metric": task.main_metric,
                                                 "examples": len(features), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
