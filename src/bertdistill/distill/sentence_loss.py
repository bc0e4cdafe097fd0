"""The ``sentence_embedding`` loss: a student's pooled sentence vector matches the teacher's.

Embedding distillation on raw text, no labels (Reimers & Gurevych 2020 train a student this
way): both models' last hidden states ``[B, L, D]`` are pooled over the real tokens with the
teacher's pooling (mean, [CLS] or max), normalised to unit length when the teacher normalises,
and compared by MSE over the batch and the vector's dimensions (sentence-transformers'
``MSELoss``), optionally plus ``cosine`` · mean(1 - cos). ``general-distill`` reads ``pooling``
and ``normalize`` from the teacher's sentence-transformers folder (``pooling: teacher``,
``normalize: teacher`` in the recipe). A narrower student's token vectors are projected to the
teacher's width before pooling; mean and [CLS] pooling commute with that affine map, so the
projection is saved after pooling as a ``Dense`` module and computes the same vector. Max
pooling does not commute with it, so a narrower student with max pooling is refused.
"""

from __future__ import annotations

import torch.nn.functional as F

from bertdistill.distill.losses import DistillLoss, register_loss
from bertdistill.models.sentence_embedding import POOLING_MODES, sentence_embeddings

FROM_TEACHER = "teacher"


def _weight(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"sentence_embedding: {name} must be a number >= 0, got {value!r}")
    return float(value)


def sentence_embedding_loss(student, teacher, mask=None, *, pooling: str = "mean", normalize: bool = False,
                            mse: float = 1.0, cosine: float = 0.0):
    """``mse`` · MSE(s, t) + ``cosine`` · mean(1 - cos(s, t)) of the pooled sentence vectors."""
    if student.dim() != 3 or teacher.dim() != 3 or student.shape != teacher.shape:
        raise ValueError(f"sentence_embedding: expected [B, L, D] hidden states of one shape, got student "
                         f"{tuple(student.shape)} and teacher {tuple(teacher.shape)}")
    s = sentence_embeddings(student, mask, pooling, normalize)
    t = sentence_embeddings(teacher, mask, pooling, normalize)
    total = s.new_zeros(()) + 0.0 * s.sum()  # keeps the graph when both weights are 0
    if mse:
        total = total + mse * F.mse_loss(s, t)
    if cosine:
        total = total + cosine * (1.0 - F.cosine_similarity(s, t, dim=-1, eps=1e-8)).mean()
    return total


@register_loss("sentence_embedding")
class SentenceEmbeddingLoss(DistillLoss):
    """Pooled sentence vectors of student and teacher compared (see the module docstring).

    ``pooling``: mean | cls | max, or ``teacher`` (the default: read from the teacher's folder by
    the pipeline); ``normalize``: true | false | ``teacher`` (likewise); ``mse`` and ``cosine``: the weights of
    the two comparisons (default 1 and 0).
    """

    features = ("hidden",)
    projectable = True
    params = ("pooling", "normalize", "mse", "cosine")

    def __init__(self, pooling: str = FROM_TEACHER, normalize: bool | str = FROM_TEACHER, mse: float = 1.0, cosine: float = 0.0) -> None:
        super().__init__()
        if pooling not in (*POOLING_MODES, FROM_TEACHER):
            raise ValueError(f"sentence_embedding: pooling must be one of {', '.join(POOLING_MODES)} or "
                             f"{FROM_TEACHER}, got {pooling!r}")
        if not isinstance(normalize, bool) and normalize != FROM_TEACHER:
            raise ValueError(f"sentence_embedding: normalize must be true, false or {FROM_TEACHER}, "
                             f"got {normalize!r}")
        self.pooling, self.normalize = pooling, normalize
        self.mse, self.cosine = _weight("mse", mse), _weight("cosine", cosine)
        if not (self.mse or self.cosine):
            raise ValueError("sentence_embedding: mse and cosine are both 0")

    @classmethod
    def model_params(cls, params, *, student_width, teacher_width, student_heads, teacher_heads):
        if params.get("pooling") == "max" and student_width != teacher_width:
            raise ValueError(f"max pooling does not commute with the projection of the student's width "
                             f"{student_width} to the teacher's {teacher_width}, so the saved model could not "
                             "compute what was trained; use a student of the teacher's width")
        return params

    def forward(self, student, teacher, mask=None, labels=None):
        if FROM_TEACHER in (self.pooling, self.normalize):
            raise ValueError("sentence_embedding: pooling / normalize 'teacher' must be read from the teacher's "
                             "sentence-transformers folder first (general-distill does); elsewhere set them: "
                             f"pooling one of {', '.join(POOLING_MODES)}, normalize true or false")
        return sentence_embedding_loss(student, teacher, mask, pooling=self.pooling, normalize=self.normalize,
                                       mse=self.mse, cosine=self.cosine)
