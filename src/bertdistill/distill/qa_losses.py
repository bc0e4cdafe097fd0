"""Losses of extractive question answering, on a QA model's span logits.

A QA model's ``logits`` feature is ``[B, L, 2]``: the start (``[..., 0]``) and end
(``[..., 1]``) logits of every token of a window, its ``start_logits`` and ``end_logits``
stacked (:func:`bertdistill.distill.features.extract`). Each of the two is a distribution
over the window's positions, not over classes, so the class-distribution losses (``kd_kl``,
``hard``) do not apply; these two do:

* ``qa_kd``: DistilBERT's SQuAD distillation term, T² · KL(teacher ‖ student) of the start
  distributions and of the end distributions at temperature T, over the positions a
  prediction may take (see :func:`span_kd`);
* ``qa_hard``: the span loss against the gold positions, the mean of the start and end
  cross-entropies (what ``AutoModelForQuestionAnswering`` computes itself when fine-tuned).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from bertdistill.distill.losses import DistillLoss, register_loss

#: the batch entry (``[B, L]``, 1 = a position an answer may start or end at) ``qa_kd`` reads
SPAN_MASK = "span_mask"
#: the losses that read span logits; every logits term of a QA distillation is one of them
QA_LOGIT_LOSSES = ("qa_kd", "qa_hard")


def _check_span_logits(logits: Tensor, what: str) -> None:
    if logits.dim() != 3 or logits.shape[-1] != 2:
        raise ValueError(f"{what}: expected span logits [B, L, 2] (start, end), got shape {tuple(logits.shape)}")


def span_kd(student: Tensor, teacher: Tensor, span_mask: Tensor | None = None, *,
            temperature: float = 1.0) -> Tensor:
    """T² · KL(softmax(t/T) ‖ softmax(s/T)) over a window's positions, for the start and the
    end logits, averaged over windows and over start/end.

    ``span_mask`` ``[B, L]`` (1 = kept) leaves positions out of *both* softmaxes: the question,
    [SEP] and padding tokens, where no answer can be, are masked (as TextBrewer's SQuAD example
    does), while [CLS] (index 0) is kept. Unmasked, the student would be taught the teacher's
    arbitrary scores for question tokens and padding, which no answer ever reads; and the
    renormalised context distribution is exactly what post-processing ranks spans by. [CLS]
    stays because it is a real target: a window that does not hold the answer is labelled
    there, the teacher moves its mass there for such windows, and the student must learn the
    same "not in this window" signal to rank the windows of a long context as the teacher does.
    A window with no kept position counts for nothing (its KL is not defined). ``None``: every
    position is kept.
    """
    _check_span_logits(student, "qa_kd")
    if student.shape != teacher.shape:
        raise ValueError(f"qa_kd: student shape {tuple(student.shape)} != teacher shape {tuple(teacher.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if span_mask is None:
        keep = torch.ones(student.shape[:2], dtype=torch.bool, device=student.device)
    else:
        if span_mask.shape != student.shape[:2]:
            raise ValueError(f"qa_kd: span mask shape {tuple(span_mask.shape)} does not match the windows "
                             f"{tuple(student.shape[:2])}")
        keep = span_mask != 0
    keep = keep.unsqueeze(-1)  # [B, L, 1]: the same positions for start and end
    floor = torch.finfo(torch.float32).min  # a masked position gets probability 0 exactly, without inf
    s = (student.float() / temperature).masked_fill(~keep, floor)
    t = (teacher.float() / temperature).masked_fill(~keep, floor)
    log_p_s, log_p_t = F.log_softmax(s, dim=1), F.log_softmax(t, dim=1)
    p_t = log_p_t.exp()
    per_position = torch.where(keep & (p_t > 0), p_t * (log_p_t - log_p_s), torch.zeros_like(p_t))
    per_window = per_position.sum(1)  # [B, 2]: the KL of the start and of the end distribution
    counted = keep.any(1).expand_as(per_window).to(torch.float32)
    value = (per_window * counted).sum() / counted.sum().clamp_min(1.0)
    return value * (temperature * temperature)


def span_ce(student: Tensor, labels: Tensor) -> Tensor:
    """Mean of the start and end cross-entropies against gold positions ``labels`` ``[B, 2]``
    (start, end), each averaged over windows: ``AutoModelForQuestionAnswering``'s own loss."""
    _check_span_logits(student, "qa_hard")
    if labels is None:
        raise ValueError("qa_hard: the batch has no start/end positions ('labels' [B, 2])")
    if labels.shape != (student.shape[0], 2):
        raise ValueError(f"qa_hard: labels shape {tuple(labels.shape)} is not [B, 2] = {(student.shape[0], 2)}")
    logits = student.float()
    labels = labels.long()
    if ((labels < 0) | (labels >= logits.shape[1])).any():
        raise ValueError(f"qa_hard: a start/end position lies outside the window's {logits.shape[1]} positions")
    start = F.cross_entropy(logits[..., 0], labels[:, 0])
    end = F.cross_entropy(logits[..., 1], labels[:, 1])
    return (start + end) / 2


@register_loss("qa_kd")
class QAKDLoss(DistillLoss):
    """DistilBERT's SQuAD KD: T² · KL on the start and on the end logits over the context
    positions and [CLS] (:func:`span_kd`), mean over windows and start/end."""

    uses_temperature = True
    soft_targets = True
    mask_key = SPAN_MASK

    def __init__(self, temperature: float = 1.0) -> None:
        super().__init__()
        self.temperature = float(temperature)

    def forward(self, student, teacher, mask=None, labels=None):
        if mask is None:
            raise ValueError(f"qa_kd: the batch has no {SPAN_MASK!r} (the positions of the context and [CLS]); "
                             "it is made by question-answering distillation (--task squad)")
        return span_kd(student, teacher, mask, temperature=self.temperature)


@register_loss("qa_hard")
class QAHardLoss(DistillLoss):
    """The span loss with the gold start/end positions: mean of the two cross-entropies."""

    needs_teacher = False

    def forward(self, student, teacher=None, mask=None, labels=None):
        return span_ce(student, labels)
