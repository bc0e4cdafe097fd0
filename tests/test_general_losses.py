"""Golden tests for the masked-LM losses of general distillation (mlm_ce, mlm_kd).

Expected values are written out with ``math`` from logits chosen so that the softmax is exact
(softmax([ln 3, 0]) = [3/4, 1/4]); none calls the torch function the loss uses.
"""

import math

import pytest
import torch

from bertdistill.distill.losses import LOSSES, build_loss

LN3 = math.log(3.0)
KL_T_QUARTERS_S_HALVES = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
KL_T_HALVES_S_QUARTERS = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)


def T(x):
    return torch.tensor(x, dtype=torch.float32)


def test_registered_with_their_properties():
    assert not LOSSES["mlm_ce"].needs_teacher
    assert LOSSES["mlm_kd"].uses_temperature and LOSSES["mlm_kd"].params == ("positions",)


def test_mlm_ce_is_mean_cross_entropy_over_masked_real_positions():
    # position 0 unmasked (-100), 1: [ln3, 0] label 0 -> -ln(3/4), 2: [0, 0] label 1 -> ln 2,
    # 3: padding (mask 0) with a label that must not count.
    logits = T([[[9.0, -9.0], [LN3, 0.0], [0.0, 0.0], [-5.0, 5.0]]])
    labels = torch.tensor([[-100, 0, 1, 0]])
    mask = torch.tensor([[1, 1, 1, 0]])
    value = build_loss("mlm_ce")(logits, None, mask, labels)
    expected = (math.log(4 / 3) + math.log(2.0)) / 2
    assert abs(float(value) - expected) < 1e-6


def test_mlm_ce_without_masked_position_is_zero_not_nan():
    logits = T([[[1.0, 2.0]]]).requires_grad_()
    value = build_loss("mlm_ce")(logits, None, torch.tensor([[1]]), torch.tensor([[-100]]))
    assert float(value.detach()) == 0.0
    value.backward()
    assert torch.isfinite(logits.grad).all()


def _kd_inputs():
    # T=2: logits are 2·ln3 so that logits/T = ln3 and the softmax is [3/4, 1/4].
    teacher = T([[[2 * LN3, 0.0], [0.0, 0.0], [7.0, 1.0]]])
    student = T([[[0.0, 0.0], [2 * LN3, 0.0], [-3.0, 4.0]]])
    mask = torch.tensor([[1, 1, 0]])  # position 2 is padding
    labels = torch.tensor([[-100, 4, -100]])  # only position 1 was masked
    return student, teacher, mask, labels


def test_mlm_kd_over_all_real_positions_times_t_squared():
    student, teacher, mask, labels = _kd_inputs()
    value = build_loss("mlm_kd", 2.0)(student, teacher, mask, labels)
    expected = 4.0 * (KL_T_QUARTERS_S_HALVES + KL_T_HALVES_S_QUARTERS) / 2
    assert abs(float(value) - expected) < 1e-6


def test_mlm_kd_masked_positions_only():
    student, teacher, mask, labels = _kd_inputs()
    value = build_loss("mlm_kd", 2.0, positions="masked")(student, teacher, mask, labels)
    assert abs(float(value) - 4.0 * KL_T_HALVES_S_QUARTERS) < 1e-6


def test_mlm_losses_refuse_bad_input():
    with pytest.raises(ValueError, match="positions must be 'real' or 'masked'"):
        build_loss("mlm_kd", 2.0, positions="labelled")
    with pytest.raises(ValueError, match=r"mlm_kd: expected masked-LM logits \[B, L, V\]"):
        build_loss("mlm_kd")(T([[1.0, 2.0]]), T([[1.0, 2.0]]))
    with pytest.raises(ValueError, match="needs the batch's masked-LM labels"):
        build_loss("mlm_kd", positions="masked")(T([[[1.0, 2.0]]]), T([[[1.0, 2.0]]]), None, None)
    with pytest.raises(ValueError, match="mlm_ce: the batch has no masked-LM 'labels'"):
        build_loss("mlm_ce")(T([[[1.0, 2.0]]]), None, None, None)
