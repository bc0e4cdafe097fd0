"""Golden tests: every loss against a value worked out by hand in the test.

The expected values use ``math`` on explicit numbers (logits chosen so the softmax is exact,
e.g. softmax([ln 3, 0]) = [3/4, 1/4]); none calls the torch function the loss uses.
"""

import math

import pytest
import torch

from bertdistill.distill.losses import (LOSSES, DistillLoss, build_loss, cosine_loss, hard_loss,
                                        register_loss)

LN2, LN3 = math.log(2.0), math.log(3.0)


def T(x):
    return torch.tensor(x, dtype=torch.float32)


def close(value, expected, tol=1e-5):
    assert value.dim() == 0
    assert abs(float(value) - expected) < tol, (float(value), expected)


# KL([1/2, 1/2] ‖ [3/4, 1/4]) and KL([3/4, 1/4] ‖ [1/2, 1/2]) written out
KL_T_QUARTERS_S_HALVES = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
KL_T_HALVES_S_QUARTERS = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)


def test_registry_has_the_catalogue():
    assert {"kd_kl", "soft_ce", "logits_mse", "hard", "token_kd", "cosine", "hidden_mse",
            "pkd_cls", "attention_mse", "attention_kl", "embedding_mse"} <= set(LOSSES)
    for name, cls in LOSSES.items():
        assert issubclass(cls, DistillLoss) and cls.name == name


def test_register_loss_rejects_duplicates_and_non_losses():
    with pytest.raises(ValueError, match="already registered"):
        register_loss("kd_kl")(type("Again", (DistillLoss,), {}))
    with pytest.raises(TypeError):
        register_loss("not_a_loss_xyz")(object)
    assert "not_a_loss_xyz" not in LOSSES


def test_build_loss_checks_params():
    with pytest.raises(ValueError, match="unknown loss 'nope'.*kd_kl"):
        build_loss("nope")
    with pytest.raises(ValueError, match="unknown parameter.*positions"):
        build_loss("kd_kl", 2.0, positions="real")
    assert build_loss("kd_kl", 3.0).temperature == 3.0


# ----------------------------------------------------------------------------- kd_kl


def test_kd_kl_batchmean_t1():
    # row 0: teacher [ln3, 0] -> [3/4, 1/4], student [0, 0] -> [1/2, 1/2]
    # row 1: teacher [0, 0] -> [1/2, 1/2], student [ln3, 0] -> [3/4, 1/4]
    s = T([[0.0, 0.0], [LN3, 0.0]])
    t = T([[LN3, 0.0], [0.0, 0.0]])
    expected = (KL_T_QUARTERS_S_HALVES + KL_T_HALVES_S_QUARTERS) / 2
    close(LOSSES["kd_kl"](temperature=1.0)(s, t), expected)


def test_kd_kl_temperature_softens_and_scales_by_t_squared():
    # T=2: student [2 ln3, 0]/2 = [ln3, 0] -> [3/4, 1/4]; teacher [0, 0] -> [1/2, 1/2]
    s = T([[2 * LN3, 0.0]])
    t = T([[0.0, 0.0]])
    close(LOSSES["kd_kl"](temperature=2.0)(s, t), 4.0 * KL_T_HALVES_S_QUARTERS)


def test_kd_kl_mean_reduction_averages_over_classes_too():
    # as test_kd_kl_batchmean_t1 at T=2 (logits doubled), divided by C = 2 classes
    s = T([[0.0, 0.0], [2 * LN3, 0.0]])
    t = T([[2 * LN3, 0.0], [0.0, 0.0]])
    expected = 4.0 * (KL_T_QUARTERS_S_HALVES + KL_T_HALVES_S_QUARTERS) / 2 / 2
    close(LOSSES["kd_kl"](temperature=2.0, reduction="mean")(s, t), expected)
    # three classes: [ln2, 0, 0] -> [1/2, 1/4, 1/4] (teacher) vs uniform (student), / 3
    kl = 0.5 * math.log(0.5 * 3) + 2 * 0.25 * math.log(0.25 * 3)
    close(build_loss("kd_kl", 1.0, reduction="mean")(T([[0.0, 0.0, 0.0]]), T([[LN2, 0.0, 0.0]])),
          kl / 3)
    with pytest.raises(ValueError, match="kd_kl: reduction must be 'batchmean' or 'mean'.*'sum'"):
        build_loss("kd_kl", 1.0, reduction="sum")


def test_kd_kl_gradient_is_p_s_minus_p_t():
    s = T([[0.0, 0.0]]).requires_grad_()
    LOSSES["kd_kl"]()(s, T([[LN3, 0.0]])).backward()
    # d/ds KL = p_s - p_t = [1/2 - 3/4, 1/2 - 1/4]
    assert torch.allclose(s.grad, T([[-0.25, 0.25]]), atol=1e-6)


def test_kd_kl_token_logits_count_real_tokens_only():
    # [B=1, L=3, C=2]; token 1 agrees exactly (KL 0); token 2 is padding with wild logits
    s = T([[[0.0, 0.0], [1.0, 2.0], [50.0, -50.0]]])
    t = T([[[LN3, 0.0], [1.0, 2.0], [-50.0, 50.0]]])
    mask = torch.tensor([[1, 1, 0]])
    close(LOSSES["kd_kl"]()(s, t, mask), (KL_T_QUARTERS_S_HALVES + 0.0) / 2)


def test_kd_kl_shape_mismatch():
    with pytest.raises(ValueError, match="kd_kl"):
        LOSSES["kd_kl"]()(T([[0.0, 0.0]]), T([[0.0, 0.0, 0.0]]))


# ----------------------------------------------------------------------------- soft_ce


def test_soft_ce_t1():
    # teacher [3/4, 1/4], student [1/2, 1/2]: -(3/4 ln 1/2 + 1/4 ln 1/2) = ln 2
    close(LOSSES["soft_ce"]()(T([[0.0, 0.0]]), T([[LN3, 0.0]])), LN2)


def test_soft_ce_t2_and_mean_over_examples():
    # T=2. row 0: student [ln3, 0] -> [3/4, 1/4], teacher [1/2, 1/2]:
    #   -(1/2 ln 3/4 + 1/2 ln 1/4)
    # row 1: student [0, 0] -> [1/2, 1/2], teacher [2 ln3, 0]/2 -> [3/4, 1/4]: ln 2
    s = T([[2 * LN3, 0.0], [0.0, 0.0]])
    t = T([[0.0, 0.0], [2 * LN3, 0.0]])
    row0 = -(0.5 * math.log(0.75) + 0.5 * math.log(0.25))
    row1 = LN2
    close(LOSSES["soft_ce"](temperature=2.0)(s, t), 4.0 * (row0 + row1) / 2)


def test_soft_ce_token_mask():
    s = T([[[0.0, 0.0], [9.0, 0.0]]])
    t = T([[[LN3, 0.0], [0.0, 9.0]]])
    close(LOSSES["soft_ce"]()(s, t, torch.tensor([[1, 0]])), LN2)


# ----------------------------------------------------------------------------- logits_mse


def test_logits_mse_mean_over_elements():
    # squared errors 1, 0, 4, 9 -> 14 / 4
    close(LOSSES["logits_mse"]()(T([[1.0, 2.0], [3.0, 4.0]]), T([[0.0, 2.0], [1.0, 1.0]])), 3.5)


def test_logits_mse_token_mask():
    # real token: errors 1, 4 over 2 classes; the padded token (errors 25, 25) is left out
    s = T([[[1.0, 2.0], [5.0, 5.0]]])
    t = T([[[0.0, 0.0], [0.0, 0.0]]])
    close(LOSSES["logits_mse"]()(s, t, torch.tensor([[1, 0]])), (1 + 4) / 2)


# ----------------------------------------------------------------------------- hard


def test_hard_cross_entropy():
    # ex 0: softmax([0, 0, ln2]) = [1/4, 1/4, 1/2], label 2 -> -ln(1/2) = ln 2
    # ex 1: softmax([0, 0, 0]) = 1/3 each, label 0 -> ln 3
    s = T([[0.0, 0.0, LN2], [0.0, 0.0, 0.0]])
    close(LOSSES["hard"]()(s, None, None, torch.tensor([2, 0])), (LN2 + LN3) / 2)


def test_hard_token_classification_ignores_minus_100_and_padding():
    # rows: [ln3, 0] label 0 -> -ln(3/4); row 1 label -100; [0, 0] label 1 -> ln 2
    s = T([[[LN3, 0.0], [7.0, -7.0], [0.0, 0.0]]])
    loss = LOSSES["hard"]()
    close(loss(s, None, torch.tensor([[1, 1, 1]]), torch.tensor([[0, -100, 1]])),
          (-math.log(0.75) + LN2) / 2)
    # the same labels but the third token is padding: only row 0 counts
    close(loss(s, None, torch.tensor([[1, 1, 0]]), torch.tensor([[0, -100, 1]])), -math.log(0.75))


def test_hard_with_no_label_is_zero_with_a_gradient():
    s = T([[[1.0, 2.0]]]).requires_grad_()
    value = LOSSES["hard"]()(s, None, None, torch.tensor([[-100]]))
    assert float(value.detach()) == 0.0
    value.backward()
    assert s.grad is not None and float(s.grad.abs().sum()) == 0.0


def test_hard_regression_is_mse():
    # predictions 1.5, 0 vs scores 1, 2: (0.25 + 4) / 2
    s = T([[1.5], [0.0]])
    close(LOSSES["hard"](regression=True)(s, None, None, T([1.0, 2.0])), 2.125)
    close(hard_loss(s, T([1.0, 2.0])), 2.125)  # float labels imply regression


def test_hard_without_labels_raises():
    with pytest.raises(ValueError, match="labels"):
        LOSSES["hard"]()(T([[0.0, 1.0]]), None)


# ----------------------------------------------------------------------------- token_kd


def test_token_kd_positions_real_and_labelled():
    # row 0: KL([3/4,1/4] ‖ [1/2,1/2]); row 1: KL([1/2,1/2] ‖ [3/4,1/4]) but its label is -100;
    # row 2 is padding
    s = T([[[0.0, 0.0], [LN3, 0.0], [30.0, 0.0]]])
    t = T([[[LN3, 0.0], [0.0, 0.0], [0.0, 30.0]]])
    mask = torch.tensor([[1, 1, 0]])
    labels = torch.tensor([[1, -100, -100]])
    real = LOSSES["token_kd"](positions="real")(s, t, mask, labels)
    labelled = LOSSES["token_kd"](positions="labelled")(s, t, mask, labels)
    close(real, (KL_T_QUARTERS_S_HALVES + KL_T_HALVES_S_QUARTERS) / 2)
    close(labelled, KL_T_QUARTERS_S_HALVES)


def test_token_kd_temperature_and_errors():
    s = T([[[2 * LN3, 0.0]]])
    t = T([[[0.0, 0.0]]])
    close(LOSSES["token_kd"](temperature=2.0)(s, t, torch.tensor([[1]])),
          4.0 * KL_T_HALVES_S_QUARTERS)
    with pytest.raises(ValueError, match="positions"):
        LOSSES["token_kd"](positions="first")
    with pytest.raises(ValueError, match="labels"):
        LOSSES["token_kd"](positions="labelled")(s, t, None, None)
    with pytest.raises(ValueError, match="token logits"):
        LOSSES["token_kd"]()(T([[0.0, 1.0]]), T([[0.0, 1.0]]))


# ----------------------------------------------------------------------------- cosine


def test_cosine_over_real_tokens():
    # token 0: [1,0]·[0,1] = 0 -> 1 - 0 = 1; token 1: [3,4]·[4,3] = 24, norms 5·5 -> 1 - 24/25
    # token 2 is padding (opposite vectors would add 2)
    s = T([[[1.0, 0.0], [3.0, 4.0], [-1.0, 0.0]]])
    t = T([[[0.0, 1.0], [4.0, 3.0], [1.0, 0.0]]])
    close(LOSSES["cosine"]()(s, t, torch.tensor([[1, 1, 0]])), (1.0 + 1.0 / 25.0) / 2)
    # without a mask the padded token counts: (1 + 1/25 + 2) / 3
    close(cosine_loss(s, t), (1.0 + 1.0 / 25.0 + 2.0) / 3)


def test_cosine_on_vectors():
    # [CLS]-like [B, D] input: [2, 0] vs [5, 0] -> cos 1 -> 0; [0, 1] vs [0, -3] -> cos -1 -> 2
    close(LOSSES["cosine"]()(T([[2.0, 0.0], [0.0, 1.0]]), T([[5.0, 0.0], [0.0, -3.0]])), 1.0)


# ----------------------------------------------------------------------------- hidden / embedding mse


def test_hidden_mse_over_real_tokens():
    # real tokens: errors (1, 4) and (0, 4) -> 9 / (2 tokens × width 2); padding left out
    s = T([[[1.0, 2.0], [3.0, 3.0], [7.0, 7.0]]])
    t = T([[[0.0, 0.0], [3.0, 1.0], [0.0, 0.0]]])
    mask = torch.tensor([[1, 1, 0]])
    close(LOSSES["hidden_mse"]()(s, t, mask), 2.25)
    close(LOSSES["embedding_mse"]()(s, t, mask), 2.25)


def test_hidden_mse_counts_real_tokens_across_the_batch():
    # ex 0 has 1 real token (error 2² + 0²), ex 1 has 2 (errors 1, 1, 1, 1): 8 / (3 × 2)
    s = T([[[2.0, 0.0], [9.0, 9.0]], [[1.0, 1.0], [1.0, 1.0]]])
    t = torch.zeros(2, 2, 2)
    close(LOSSES["hidden_mse"]()(s, t, torch.tensor([[1, 0], [1, 1]])), 8 / 6)


# ----------------------------------------------------------------------------- pkd_cls


def test_pkd_cls_normalised_vectors():
    # ex 0: [3,4]/5 = [.6,.8] vs [1,0]: (.6-1)² + (.8-0)² = .16 + .64 = .8
    # ex 1: [0,2] and [0,5] normalise to the same vector: 0
    s = T([[3.0, 4.0], [0.0, 2.0]])
    t = T([[1.0, 0.0], [0.0, 5.0]])
    close(LOSSES["pkd_cls"]()(s, t), 0.4)
    # hidden states [B, L, D]: position 0 is the [CLS] vector, the rest is ignored
    hs = torch.stack([s, T([[9.0, 1.0], [1.0, 9.0]])], dim=1)
    ht = torch.stack([t, T([[-9.0, 1.0], [1.0, -9.0]])], dim=1)
    close(LOSSES["pkd_cls"]()(hs, ht), 0.4)


def test_pkd_cls_mean_reduction_averages_over_hidden_units():
    # the vectors of test_pkd_cls_normalised_vectors: Σ_d is .8 and 0, now / (2 examples × 2 units)
    s = T([[3.0, 4.0], [0.0, 2.0]])
    t = T([[1.0, 0.0], [0.0, 5.0]])
    loss = LOSSES["pkd_cls"](reduction="mean")
    close(loss(s, t), 0.2)
    assert loss.pair_reduction == "mean" and LOSSES["pkd_cls"]().pair_reduction == "sum"
    # width 3: [1,2,2]/3 vs [0,0,1]: (1/9 + 4/9 + 1/9) / 3 units
    close(loss(T([[1.0, 2.0, 2.0]]), T([[0.0, 0.0, 7.0]])), (6 / 9) / 3)
    with pytest.raises(ValueError, match="pkd_cls: reduction must be 'sum' or 'mean'"):
        build_loss("pkd_cls", reduction="batchmean")


# ----------------------------------------------------------------------------- attention


ATT_S = [[0.5, 0.5, 0.0], [0.2, 0.8, 0.0], [0.3, 0.3, 0.4]]
ATT_T = [[1.0, 0.0, 0.0], [0.4, 0.6, 0.0], [0.0, 0.0, 1.0]]


def test_attention_mse_real_query_key_pairs():
    # mask [1, 1, 0]: pairs (i, j) in {0,1}²: .25 + .25 + .04 + .04 = .58 over 4 pairs
    mask = torch.tensor([[1, 1, 0]])
    close(LOSSES["attention_mse"]()(T([[ATT_S]]), T([[ATT_T]]), mask), 0.58 / 4)
    # two heads, the second identical in both: .58 / (2 heads × 4 pairs)
    s2 = T([[ATT_S, ATT_T]])
    t2 = T([[ATT_T, ATT_T]])
    close(LOSSES["attention_mse"]()(s2, t2, mask), 0.58 / 8)


def test_attention_mse_head_counts():
    mask = torch.tensor([[1, 1, 0]])
    s2 = T([[ATT_S, ATT_T]])  # mean over heads: [[.75,.25,0],[.3,.7,0],...]
    t1 = T([[ATT_T]])
    with pytest.raises(ValueError, match="head_reduce"):
        LOSSES["attention_mse"]()(s2, t1, mask)
    # (.75-1)² + (.25-0)² + (.3-.4)² + (.7-.6)² = .0625 + .0625 + .01 + .01 = .145, over 4 pairs
    close(LOSSES["attention_mse"](head_reduce="mean")(s2, t1, mask), 0.145 / 4)


def test_attention_kl_real_rows():
    # mask [1, 1, 0]; rows 0 and 1 are real, keys 0 and 1 are real
    t = T([[[[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.1, 0.1, 0.8]]]])
    s = T([[[[0.25, 0.75, 0.0], [0.5, 0.5, 0.0], [0.9, 0.1, 0.0]]]])
    row0 = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    row1 = 1.0 * math.log(1.0 / 0.5)  # the zero teacher entry contributes 0
    close(LOSSES["attention_kl"]()(s, t, torch.tensor([[1, 1, 0]])), (row0 + row1) / 2)


def test_attention_kl_mean_over_heads_and_examples():
    # ex 0 (1 real token): every row is [1] -> KL 0 for both heads.
    # ex 1 (2 real tokens), head 0 rows as above, head 1 identical to the teacher (0).
    t = T([[[[1.0, 0.0], [1.0, 0.0]], [[1.0, 0.0], [1.0, 0.0]]],
           [[[0.5, 0.5], [1.0, 0.0]], [[0.5, 0.5], [1.0, 0.0]]]])
    s = T([[[[1.0, 0.0], [0.5, 0.5]], [[1.0, 0.0], [0.5, 0.5]]],
           [[[0.25, 0.75], [0.5, 0.5]], [[0.5, 0.5], [1.0, 0.0]]]])
    mask = torch.tensor([[1, 0], [1, 1]])
    row0 = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    row1 = math.log(2.0)
    # real rows: ex 0: 1 row × 2 heads (0 each); ex 1: 2 rows × 2 heads
    close(LOSSES["attention_kl"]()(s, t, mask), (row0 + row1) / 6)
