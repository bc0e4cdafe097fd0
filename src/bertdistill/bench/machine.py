"""What the numbers were measured on: CPU model, the instruction-set flags that matter, GPU."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

# flags that decide which kernels run: AVX2 / AVX-512 fp32, VNNI int8, bf16 and AMX tiles
RELEVANT_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8",
                  "amx_tile")


def cpu_model_and_flags() -> tuple[str, list[str]]:
    """The CPU's model name and which of ``RELEVANT_FLAGS`` it has (from /proc/cpuinfo on Linux)."""
    model, flags = platform.processor() or platform.machine(), set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    return model, [f for f in RELEVANT_FLAGS if f in flags]


def cpu_has_bf16() -> bool:
    """Native bf16 arithmetic on this CPU (AVX-512 BF16 or AMX), which PyTorch's bf16 kernels use."""
    _, flags = cpu_model_and_flags()
    return "avx512_bf16" in flags or "amx_bf16" in flags


def machine_info(threads: int) -> dict:
    model, flags = cpu_model_and_flags()
    info = {
        "cpu": model, "cpu_flags": flags, "logical_cpus": os.cpu_count(), "threads": threads,
        "torch": torch.__version__, "cuda": None,
    }
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        info["onnxruntime"] = None
    if torch.cuda.is_available():
        info["cuda"] = torch.cuda.get_device_name(0)
    return info
