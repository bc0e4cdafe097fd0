"""Self-attention relations and their KL divergence (MiniLM, MiniLMv2).

The input of one side (teacher or student) is the ``qkv`` feature of one layer: the query,
key and value projections of its self-attention, heads concatenated, as one tensor
``[B, L, 3·D]`` (``[Q | K | V]`` on the last axis; see :mod:`bertdistill.distill.qkv`).

A relation ``xy`` (``qq``, ``kk``, ``vv`` or ``qk``) of a side with width D and A_r relation
heads splits X and Y into A_r heads of width d_r = D / A_r (the concatenated heads re-split,
so the two sides may have different head counts and widths), and for each head a and query
token i takes the distribution over key tokens j

    R_a[i, :] = softmax_j( X_a[i] · Y_a[j] / √d_r )    (padding keys j left out)

``qk`` is the attention distribution itself when A_r is the model's own head count (MiniLM);
``qq``, ``kk``, ``vv`` are MiniLMv2's query-query, key-key and value-value relations.

:func:`relation_kl` compares teacher and student as the papers do: KL(teacher ‖ student) for
every relation head and real query token, averaged over relation heads and the example's real
tokens, 1/(A_r·|x|) Σ_a Σ_i KL(R^T_a[i] ‖ R^S_a[i]), then averaged over the examples of the
batch. :func:`minilm_loss` sums the weighted relations.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

RELATIONS = ("qq", "kk", "vv", "qk")
_PART = {"q": 0, "k": 1, "v": 2}


def split_qkv(qkv: Tensor, what: str = "qkv") -> tuple[Tensor, Tensor, Tensor]:
    """``[B, L, 3·D]`` -> (Q, K, V), each ``[B, L, D]``."""
    if qkv.dim() != 3 or qkv.shape[-1] % 3:
        raise ValueError(f"{what}: expected the [B, L, 3*D] query|key|value projections, got shape "
                         f"{tuple(qkv.shape)}")
    return tuple(qkv.chunk(3, dim=-1))  # type: ignore[return-value]


def _heads(x: Tensor, heads: int, what: str) -> Tensor:
    """``[B, L, D]`` -> ``[B, heads, L, D / heads]``."""
    batch, length, width = x.shape
    if width % heads:
        raise ValueError(f"{what}: width {width} is not divisible by {heads} relation heads")
    return x.reshape(batch, length, heads, width // heads).transpose(1, 2)


def relation_log_probs(x: Tensor, y: Tensor, heads: int, mask: Tensor | None = None,
                       what: str = "relation") -> Tensor:
    """log softmax_j(X_a[i] · Y_a[j] / √d_r) for every relation head a: ``[B, heads, L, L]``,
    in float32; key columns with ``mask`` 0 get probability 0."""
    xh, yh = _heads(x.float(), heads, what), _heads(y.float(), heads, what)
    scores = torch.matmul(xh, yh.transpose(-1, -2)) / math.sqrt(xh.shape[-1])
    if mask is not None:
        keys = (mask != 0)[:, None, None, :]
        scores = scores.masked_fill(~keys, torch.finfo(scores.dtype).min)
    return F.log_softmax(scores, dim=-1)


def _real(mask: Tensor | None, batch: int, length: int, device) -> Tensor:
    if mask is None:
        return torch.ones(batch, length, dtype=torch.bool, device=device)
    if mask.shape != (batch, length):
        raise ValueError(f"attention_mask shape {tuple(mask.shape)} does not match the features' "
                         f"[batch, length] ({batch}, {length})")
    return mask != 0


def relation_kl(student: tuple[Tensor, Tensor], teacher: tuple[Tensor, Tensor], mask: Tensor | None = None, *,
                student_heads: int, teacher_heads: int, what: str = "relation") -> Tensor:
    """KL(teacher ‖ student) of one relation, averaged as MiniLM / MiniLMv2 (module docstring).

    ``student`` / ``teacher`` are the (X, Y) pairs ``[B, L, D_s]`` / ``[B, L, D_t]``; each side
    is split into its own number of relation heads, which must be equal. Padded key columns
    are out of both distributions, padded query rows out of the average; an example without a
    real token is left out of the batch mean.
    """
    if student_heads != teacher_heads:
        raise ValueError(f"{what}: the student has {student_heads} relation heads, the teacher "
                         f"{teacher_heads}; relations are compared head by head")
    s_x, _ = student
    t_x, _ = teacher
    if s_x.shape[:2] != t_x.shape[:2]:
        raise ValueError(f"{what}: student tokens {tuple(s_x.shape[:2])} != teacher tokens {tuple(t_x.shape[:2])}")
    batch, length = s_x.shape[:2]
    real = _real(mask, batch, length, s_x.device)
    log_s = relation_log_probs(*student, student_heads, mask, what)
    log_t = relation_log_probs(*teacher, teacher_heads, mask, what)
    keys = real[:, None, None, :]
    per_key = torch.where(keys, log_t.exp() * (log_t - log_s), torch.zeros_like(log_t))
    per_row = per_key.sum(-1)  # [B, heads, L]
    rows = real[:, None, :].to(per_row.dtype)
    per_example = (per_row * rows).sum((1, 2)) / (rows.sum(-1).squeeze(1) * student_heads).clamp_min(1.0)
    has_tokens = real.any(-1).to(per_example.dtype)
    return (per_example * has_tokens).sum() / has_tokens.sum().clamp_min(1.0)


def minilm_loss(student: Tensor, teacher: Tensor, mask: Tensor | None = None, *,
                relations: Mapping[str, float], student_heads: int, teacher_heads: int) -> Tensor:
    """Σ_r w_r · :func:`relation_kl` over the weighted ``relations`` (``{"qq": 1, ...}``) of the
    ``[B, L, 3·D]`` Q|K|V features of student and teacher, with A_r relation heads per side."""
    s_parts, t_parts = split_qkv(student, "minilm student"), split_qkv(teacher, "minilm teacher")
    total = student.new_zeros((), dtype=torch.float32)
    for name, weight in relations.items():
        if not weight:
            continue
        x, y = _PART[name[0]], _PART[name[1]]
        value = relation_kl((s_parts[x], s_parts[y]), (t_parts[x], t_parts[y]), mask,
                            student_heads=student_heads, teacher_heads=teacher_heads, what=f"minilm {name}")
        total = total + float(weight) * value
    return total
