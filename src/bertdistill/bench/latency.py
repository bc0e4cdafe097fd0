"""Size and latency of a model: parameters, bytes on disk, batch-size-1 CPU latency."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..models.inputs import model_inputs


@dataclass
class LatencyResult:
    median_ms: float
    p90_ms: float
    runs: int
    threads: int

    def as_dict(self) -> dict:
        return {"median_ms": self.median_ms, "p90_ms": self.p90_ms, "runs": self.runs, "threads": self.threads}


def parameter_count(model: torch.nn.Module) -> int:
    """Distinct parameters (tied weights counted once)."""
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total


def folder_bytes(path: str | Path) -> int:
    """Bytes of the weight files in a checkpoint folder (safetensors / onnx / bin)."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.suffix in (".safetensors", ".onnx", ".bin", ".pt"))


def measure_latency(model, tokenizer, texts: list[str], *, runs: int = 100, warmup: int = 10,
                    max_length: int = 128, threads: int | None = None) -> LatencyResult:
    """Median wall time of one forward at batch size 1, cycling through ``texts``."""
    if threads:
        torch.set_num_threads(threads)
    model.eval()
    encoded = [tokenizer(t, truncation=True, max_length=max_length, return_tensors="pt") for t in texts]
    timings = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            inputs = model_inputs(model, dict(encoded[i % len(encoded)]))
            start = time.perf_counter()
            model(**inputs)
            if i >= warmup:
                timings.append((time.perf_counter() - start) * 1000)
    timings.sort()
    return LatencyResult(statistics.median(timings), timings[int(0.9 * (len(timings) - 1))], runs,
                         torch.get_num_threads())
