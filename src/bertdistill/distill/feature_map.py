"""MobileBERT's feature-map transfer loss (Sun et al., 2020), registered as ``feature_map``.

Both layer outputs [B, L, D] are first normalised per token by a LayerNorm without
parameters (mean 0, variance 1 over the width, ε = 1e-5: the unit-γ, zero-β, untrained
LayerNorm of the reference implementation), then compared by MSE over real tokens:

    normalised  = Σ_{real tokens} Σ_d (LN(s) − LN(t))² / (real tokens · D)

Optionally the statistics that normalisation removes are matched too (MobileBERT's
"mean and variance" terms, off by default):

    + beta  · mean over real tokens of (μ_s − μ_t)²
    + gamma · mean over real tokens of |σ²_s − σ²_t|

with μ, σ² the per-token mean and (biased) variance over the width. The reference
implementation weighs the three parts 100 : 5000 : 5; a term with weight 100 and
``params: {beta: 50, gamma: 0.05}`` reproduces that. Student and teacher must have the same
width (a MobileBERT student's inter-block width is the teacher's hidden size), or a
projection must map the student's to the teacher's.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from bertdistill.distill.losses import DistillLoss, register_loss

LAYER_NORM_EPS = 1e-5


def _token_mean(values: Tensor, mask: Tensor | None) -> Tensor:
    """Mean of per-token ``values`` [B, L] over real tokens (all tokens without a mask)."""
    if mask is None:
        return values.mean()
    if mask.shape != values.shape:
        raise ValueError(f"attention_mask shape {tuple(mask.shape)} does not match the token axis "
                         f"{tuple(values.shape)}")
    weights = (mask != 0).to(values.dtype)
    return (values * weights).sum() / weights.sum().clamp_min(1.0)


def feature_map_loss(student: Tensor, teacher: Tensor, mask: Tensor | None = None, *,
                     beta: float = 0.0, gamma: float = 0.0) -> Tensor:
    """Normalised feature-map MSE plus the optional mean / variance terms (module docstring)."""
    if student.shape != teacher.shape:
        raise ValueError(f"feature_map: student shape {tuple(student.shape)} != teacher shape "
                         f"{tuple(teacher.shape)}")
    s, t = student.float(), teacher.float()
    if s.dim() == 2:  # [B, D] vectors: every row is one token
        s, t = s[:, None], t[:, None]
        mask = None
    if s.dim() != 3:
        raise ValueError(f"feature_map: expected [B, L, D] or [B, D], got {tuple(student.shape)}")
    width = s.shape[-1]
    normed = (F.layer_norm(s, (width,), eps=LAYER_NORM_EPS)
              - F.layer_norm(t, (width,), eps=LAYER_NORM_EPS)) ** 2
    loss = _token_mean(normed.mean(-1), mask)
    if beta:
        loss = loss + beta * _token_mean((s.mean(-1) - t.mean(-1)) ** 2, mask)
    if gamma:
        var_s = s.var(-1, unbiased=False)
        var_t = t.var(-1, unbiased=False)
        loss = loss + gamma * _token_mean((var_s - var_t).abs(), mask)
    return loss


@register_loss("feature_map")
class FeatureMapLoss(DistillLoss):
    """MobileBERT's feature-map transfer: MSE of parameter-free-LayerNorm'd layer outputs,
    optional mean (``beta``) and variance (``gamma``) matching."""

    features = ("hidden", "cls", "embeddings")
    projectable = True
    params = ("beta", "gamma")

    def __init__(self, beta: float = 0.0, gamma: float = 0.0) -> None:
        super().__init__()
        for name, value in (("beta", beta), ("gamma", gamma)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"feature_map: {name} must be a number >= 0, got {value!r}")
        self.beta, self.gamma = float(beta), float(gamma)

    def forward(self, student, teacher, mask=None, labels=None):
        return feature_map_loss(student, teacher, mask, beta=self.beta, gamma=self.gamma)


__all__ = ["FeatureMapLoss", "LAYER_NORM_EPS", "feature_map_loss"]
