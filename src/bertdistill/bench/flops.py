"""FLOP counts and FLOP/s: how close a training step gets to what the CPU can do.

Three numbers, kept apart so each can be checked on its own:

* ``matmul_peak``: the measured FLOP/s of one large ``torch.matmul`` (2·n³ FLOPs per n×n
  product), the practical ceiling of this machine for a dtype (fp32, or bf16 where the CPU
  has bf16 instructions);
* ``step_flops``: the FLOPs one call does (a forward + backward of a distillation step),
  counted by ``torch.utils.flop_counter.FlopCounterMode`` from the shapes of the matmuls,
  convolutions and attention kernels it runs (element-wise work is not counted, as usual);
* ``utilisation``: step FLOPs / step time / peak.

Example::

    peak = matmul_peak(torch.float32)
    flops = step_flops(lambda: loss_fn(batch).backward())
    print(f"{utilisation(flops, seconds_per_step, peak):.1%} of the fp32 matmul peak")
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

import torch
from torch.utils import flop_counter
from torch.utils.flop_counter import FlopCounterMode


@contextlib.contextmanager
def _threads(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` intra-op threads, restoring the previous count afterwards."""
    if not threads:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def matmul_flops(size: int) -> int:
    """FLOPs of one ``size``×``size`` by ``size``×``size`` product: n³ multiply-adds = 2·n³."""
    return 2 * size**3


def matmul_peak(dtype: torch.dtype = torch.float32, size: int = 2048, seconds: float = 3.0,
                threads: int | None = None) -> float:
    """Measured FLOP/s of ``torch.matmul`` on two ``size``×``size`` matrices of ``dtype``.

    After a warm-up (which also sizes the timed blocks to about a tenth of ``seconds``),
    blocks of back-to-back products are timed until ``seconds`` have passed (at least three
    blocks); the best block's rate is returned, since on a shared machine interference only
    ever slows a block down. ``threads`` sets the intra-op thread count for the measurement
    (default: torch's current setting).
    """
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    if seconds <= 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    with _threads(threads), torch.inference_mode():
        gen = torch.Generator().manual_seed(0)
        a = torch.randn(size, size, generator=gen).to(dtype)
        b = torch.randn(size, size, generator=gen).to(dtype)
        out = torch.empty(size, size, dtype=dtype)
        # Warm-up: first calls pick kernels / allocate; also estimates the time per product.
        torch.matmul(a, b, out=out)
        start = time.perf_counter()
        torch.matmul(a, b, out=out)
        one = max(time.perf_counter() - start, 1e-9)
        per_block = max(1, int(seconds / 10 / one))
        best = 0.0
        blocks = 0
        deadline = time.perf_counter() + seconds
        while blocks < 3 or time.perf_counter() < deadline:
            start = time.perf_counter()
            for _ in range(per_block):
                torch.matmul(a, b, out=out)
            elapsed = max(time.perf_counter() - start, 1e-9)
            best = max(best, per_block * matmul_flops(size) / elapsed)
            blocks += 1
    return best


def _cpu_attention_formulas() -> dict:
    """FLOP formulas for the CPU flash-attention kernels that ``F.scaled_dot_product_attention``
    runs on CPU: torch's counter registers only the CUDA ones (efficient / flash / cudnn), so
    without these an ``sdpa`` model's attention would count as 0 FLOPs. Same formulas
    (two batched matmuls forward, four backward), same argument order."""
    aten = torch.ops.aten
    formulas = {}
    for name, formula in (("_scaled_dot_product_flash_attention_for_cpu", flop_counter.sdpa_flop),
                          ("_scaled_dot_product_flash_attention_for_cpu_backward",
                           flop_counter.sdpa_backward_flop)):
        op = getattr(aten, name, None)
        if op is not None and op not in flop_counter.flop_registry:
            formulas[op] = getattr(formula, "__wrapped__", formula)
    return formulas


def step_flops(fn: Callable[[], object]) -> int:
    """FLOPs counted while ``fn()`` runs (forward and, if ``fn`` calls it, backward).

    Uses ``FlopCounterMode``: matmuls (mm, addmm, bmm, ...), convolutions and
    scaled-dot-product attention (including the CPU flash-attention kernels, see
    ``_cpu_attention_formulas``) are counted from their shapes, with backward kernels
    included when the backward pass runs inside ``fn``. Element-wise operations (softmax,
    GELU, layer norm, the optimizer update) are not counted.
    """
    counter = FlopCounterMode(display=False, custom_mapping=_cpu_attention_formulas())
    with counter:
        fn()
    return int(counter.get_total_flops())


def utilisation(step_flops: int | float, step_seconds: float, peak: float) -> float:
    """Share of ``peak`` FLOP/s reached by ``step_flops`` FLOPs in ``step_seconds``."""
    if step_seconds <= 0:
        raise ValueError(f"step_seconds must be positive, got {step_seconds}")
    if peak <= 0:
        raise ValueError(f"peak must be positive, got {peak}")
    return float(step_flops) / step_seconds / peak


def format_flops(value: float) -> str:
    """A FLOP or FLOP/s count with an SI prefix: 1.23 G, 456.7 M."""
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {unit}"
    return f"{value:.0f} "


__all__ = ["format_flops", "matmul_flops", "matmul_peak", "step_flops", "utilisation"]
