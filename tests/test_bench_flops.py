"""FLOP counting and the matmul peak (fast: tiny shapes, a fraction of a second each)."""

import pytest
import torch

from bertdistill.bench.flops import format_flops, matmul_flops, matmul_peak, step_flops, utilisation


def test_linear_forward_backward_matches_hand_count():
    batch, d_in, d_out = 8, 16, 4
    layer = torch.nn.Linear(d_in, d_out)
    x = torch.randn(batch, d_in, requires_grad=True)

    forward = step_flops(lambda: layer(x))
    assert forward == 2 * batch * d_in * d_out

    def forward_backward():
        layer(x).sum().backward()

    # backward: grad of the input (B×out · out×in) and of the weight (out×B · B×in),
    # each as many FLOPs as the forward matmul
    assert step_flops(forward_backward) == 3 * 2 * batch * d_in * d_out


def test_backward_without_input_grad_counts_only_the_weight_grad():
    batch, d_in, d_out = 4, 8, 8
    layer = torch.nn.Linear(d_in, d_out, bias=False)
    x = torch.randn(batch, d_in)
    assert step_flops(lambda: layer(x).sum().backward()) == 2 * 2 * batch * d_in * d_out


def test_matmul_peak_is_positive_for_a_small_size():
    before = torch.get_num_threads()
    peak = matmul_peak(torch.float32, size=64, seconds=0.2, threads=1)
    assert peak > 0
    assert torch.get_num_threads() == before  # the thread count is restored


def test_matmul_peak_rejects_bad_arguments():
    with pytest.raises(ValueError):
        matmul_peak(size=0)
    with pytest.raises(ValueError):
        matmul_peak(size=8, seconds=0)


def test_utilisation_and_helpers():
    assert matmul_flops(10) == 2000
    assert utilisation(1e9, 0.5, 4e9) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        utilisation(1, 0, 1)
    with pytest.raises(ValueError):
        utilisation(1, 1, 0)
    assert format_flops(2.5e12) == "2.50 T"
    assert format_flops(12) == "12 "


def test_cpu_sdpa_attention_is_counted():
    # torch's counter knows only the CUDA attention kernels; ours adds the CPU flash one
    b, h, n, d = 2, 4, 16, 8
    q = torch.randn(b, h, n, d)
    mask = torch.ones(b, 1, n, n, dtype=torch.bool)
    flops = step_flops(lambda: torch.nn.functional.scaled_dot_product_attention(q, q, q, attn_mask=mask))
    assert flops == 2 * (2 * b * h * n * n * d)  # scores q·kᵀ and weights·v
