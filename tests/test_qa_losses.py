"""The QA distillation losses against values computed by hand, and the distiller's QA checks."""

from __future__ import annotations

import math

import pytest
import torch

from bertdistill.distill import Distiller, Term
from bertdistill.distill.qa_losses import span_ce, span_kd
from tiny import make_tiny_bert, make_tiny_tokenizer


def _kl(t: list[float], s: list[float], temperature: float) -> float:
    """KL(softmax(t/T) || softmax(s/T)) written out."""
    zt = sum(math.exp(v / temperature) for v in t)
    zs = sum(math.exp(v / temperature) for v in s)
    total = 0.0
    for a, b in zip(t, s):
        pt, ps = math.exp(a / temperature) / zt, math.exp(b / temperature) / zs
        total += pt * math.log(pt / ps)
    return total


def test_span_kd_masks_question_and_padding_but_keeps_cls():
    # one window of 5 positions: [CLS], a question token (masked), two context tokens, padding (masked)
    t_start, t_end = [1.0, 9.0, 2.0, 0.5, 7.0], [0.0, -3.0, 1.0, 3.0, 5.0]
    s_start, s_end = [0.5, -2.0, 1.5, 1.0, 0.0], [1.0, 4.0, -1.0, 2.0, 0.0]
    teacher = torch.tensor([list(zip(t_start, t_end))])
    student = torch.tensor([list(zip(s_start, s_end))], requires_grad=True)
    mask = torch.tensor([[1, 0, 1, 1, 0]])
    keep = [0, 2, 3]
    expected = 4 * (_kl([t_start[i] for i in keep], [s_start[i] for i in keep], 2.0)
                    + _kl([t_end[i] for i in keep], [s_end[i] for i in keep], 2.0)) / 2
    value = span_kd(student, teacher, mask, temperature=2.0)
    assert value.item() == pytest.approx(expected, rel=1e-5)
    unmasked = 4 * (_kl(t_start, s_start, 2.0) + _kl(t_end, s_end, 2.0)) / 2
    assert span_kd(student, teacher, None, temperature=2.0).item() == pytest.approx(unmasked, rel=1e-5)
    assert abs(unmasked - expected) > 0.05  # the masked positions really change the value
    value.backward()
    assert torch.isfinite(student.grad).all()
    assert student.grad[0, 1].abs().sum() == 0 and student.grad[0, 4].abs().sum() == 0
    assert student.grad[0, 0].abs().sum() > 0  # [CLS] is taught


def test_span_kd_averages_windows_and_skips_empty_ones():
    torch.manual_seed(0)
    s, t = torch.randn(2, 4, 2), torch.randn(2, 4, 2)
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 1, 1]])
    both = span_kd(s, t, mask, temperature=1.0)
    one = span_kd(s[:1], t[:1], mask[:1]), span_kd(s[1:], t[1:], mask[1:])
    assert both.item() == pytest.approx((one[0].item() + one[1].item()) / 2, rel=1e-6)
    empty = torch.tensor([[1, 1, 1, 0], [0, 0, 0, 0]])
    assert span_kd(s, t, empty).item() == pytest.approx(one[0].item(), rel=1e-6)
    assert span_kd(t, t, mask).item() == pytest.approx(0.0, abs=1e-6)


def test_span_ce_is_the_mean_of_start_and_end_cross_entropy():
    start, end = [2.0, 0.0, 1.0], [0.0, 3.0, -1.0]
    logits = torch.tensor([list(zip(start, end))])
    value = span_ce(logits, torch.tensor([[2, 1]]))
    ce_start = -math.log(math.exp(1.0) / sum(math.exp(v) for v in start))
    ce_end = -math.log(math.exp(3.0) / sum(math.exp(v) for v in end))
    assert value.item() == pytest.approx((ce_start + ce_end) / 2, rel=1e-6)
    with pytest.raises(ValueError, match="outside"):
        span_ce(logits, torch.tensor([[3, 0]]))


def test_distiller_passes_the_span_mask_and_refuses_class_losses_on_qa(tmp_path):
    tok = make_tiny_tokenizer(tmp_path)
    config = make_tiny_bert(tok).config
    terms = [Term("qa_kd", 0.5, temperature=2.0), Term("qa_hard", 0.5)]
    distiller = Distiller(terms, student_config=config, teacher_config=config, task_kind="qa")
    s, t = torch.randn(1, 5, 2), torch.randn(1, 5, 2)
    batch = {"attention_mask": torch.ones(1, 5, dtype=torch.long), "span_mask": torch.tensor([[1, 0, 1, 1, 0]]),
             "labels": torch.tensor([[2, 3]])}
    total, parts = distiller({"logits": s}, {"logits": t}, batch)
    assert parts["qa_kd"] == pytest.approx(span_kd(s, t, batch["span_mask"], temperature=2.0).item(), rel=1e-6)
    assert parts["qa_hard"] == pytest.approx(span_ce(s, batch["labels"]).item(), rel=1e-6)
    assert total.item() == pytest.approx(0.5 * parts["qa_kd"] + 0.5 * parts["qa_hard"], rel=1e-6)
    with pytest.raises(ValueError, match="use qa_kd and qa_hard"):
        Distiller([Term("kd_kl")], student_config=config, teacher_config=config, task_kind="qa")
    with pytest.raises(ValueError, match="start/end logits of question answering"):
        Distiller([Term("qa_kd")], student_config=config, teacher_config=config, task_kind="classification")
    # the intermediate terms are usable on QA
    Distiller([Term("qa_kd"), Term("hidden_mse", student="hidden", teacher="hidden", layers="last")],
              student_config=config, teacher_config=config, task_kind="qa")
