"""Re-check of the CPU matmul peaks behind ``peak_flops.py`` (issue 11: is a 4.3x bf16/fp32 ratio real?).

For fp32 and bf16, 1 and 2 threads, and several square sizes, times back-to-back
``torch.matmul`` products (best block of ``--seconds``), checks that the bf16 product is a real
product (its relative error against the fp32 product of the same bf16-rounded inputs), and
prints the theoretical peak of the CPU model it finds in /proc/cpuinfo when it knows it.

    python benchmarks/peak_recheck.py --out benchmarks/results/perf
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from bertdistill.bench.flops import matmul_peak  # noqa: E402


def cpu_info() -> dict:
    info = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "cpu family", "model", "cpu MHz") and key not in info:
                info[key] = value.strip()
            if key == "flags" and "flags" not in info:
                info["bf16_flags"] = sorted(f for f in value.split() if "bf16" in f or "amx" in f)
    except OSError:
        pass
    return info


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--out", default="benchmarks/results/perf")
    a = ap.parse_args()
    rows = []
    for threads in a.threads:
        for size in a.sizes:
            for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
                flops = matmul_peak(dtype, size=size, seconds=a.seconds, threads=threads)
                rows.append({"threads": threads, "size": size, "dtype": name, "gflops": round(flops / 1e9, 1)})
                print(json.dumps(rows[-1]), flush=True)
    # is the bf16 product a real product? compare with fp32 on the same (bf16-rounded) inputs
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(512, 512, generator=gen).bfloat16()
    y = torch.randn(512, 512, generator=gen).bfloat16()
    exact = x.float() @ y.float()
    rel = float((torch.matmul(x, y).float() - exact).norm() / exact.norm())
    info = cpu_info()
    out = {"cpu": info, "platform": platform.platform(), "torch": torch.__version__,
           "mkldnn_bf16": torch.backends.mkldnn.is_available(), "bf16_relative_error": rel, "rows": rows}
    for threads in a.threads:
        best = {d: max(r["gflops"] for r in rows if r["threads"] == threads and r["dtype"] == d) for d in ("fp32", "bf16")}
        out[f"best_{threads}_threads"] = {**best, "bf16_over_fp32": round(best["bf16"] / best["fp32"], 2)}
    Path(a.out).mkdir(parents=True, exist_ok=True)
    (Path(a.out) / "peak_recheck.json").write_text(json.dumps(out, indent=2))
    print(json.dumps({k: v for k, v in out.items() if k != "rows"}, indent=2))


if __name__ == "__main__":
    main()
