"""Comparison functions: each loss is a plain function wrapped in a small ``nn.Module``.

Every loss module is called as ``loss(student, teacher, mask=None, labels=None)``:

* ``student`` / ``teacher`` are the two features being compared (the teacher's is ``None``
  for ``hard``), already read from the model outputs and, where a term asks for it,
  projected to the teacher's width;
* ``mask`` is the batch's ``attention_mask`` ``[B, L]`` (1 = real token, 0 = padding); it
  is used by every loss whose inputs have a token axis and ignored otherwise;
* ``labels`` are the batch's labels (``[B]`` ids, ``[B]`` floats or ``[B, L]`` ids with -100
  on positions that carry no label).

Losses are computed in float32 whatever the inputs' dtype. A loss over an empty selection
(e.g. a batch with no labelled token) is 0 with a gradient path, never NaN.

Registry: ``LOSSES[name]`` is the module class; ``register_loss(name)`` adds one. Each class
declares what the distiller needs to know to validate a term before training:
``features`` (allowed feature types, the first is the default), ``needs_teacher``,
``uses_temperature``, ``soft_targets`` (compares class distributions, so meaningless for
regression), ``projectable`` (a learned projection may map the student feature to the
teacher's width) and ``params`` (the keyword parameters a term may set); its classmethod
``model_params`` completes and checks a term's params against the two models (``minilm``
takes its relation head count from the teacher there). An instance's
``pair_reduction`` says how the distiller combines the values of a term's layer pairs:
``"sum"`` (the default) or ``"mean"``. Its ``mask_key`` names the batch entry passed as
``mask`` (``attention_mask`` unless the loss says otherwise).

The span losses of question answering (``qa_kd``, ``qa_hard``) live in
:mod:`bertdistill.distill.qa_losses`.
"""

from __future__ import annotations

from typing import Callable, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bertdistill.distill.relations import RELATIONS, minilm_loss

IGNORE_INDEX = -100

LOSSES: dict[str, type["DistillLoss"]] = {}


def register_loss(name: str) -> Callable[[type["DistillLoss"]], type["DistillLoss"]]:
    """Class decorator: register a ``DistillLoss`` subclass under ``name``."""

    def decorate(cls: type[DistillLoss]) -> type[DistillLoss]:
        if name in LOSSES:
            raise ValueError(f"loss {name!r} is already registered")
        if not (isinstance(cls, type) and issubclass(cls, DistillLoss)):
            raise TypeError(f"loss {name!r}: {cls!r} is not a DistillLoss subclass")
        cls.name = name
        LOSSES[name] = cls
        return cls

    return decorate


# --------------------------------------------------------------------------- helpers


KL_REDUCTIONS = ("batchmean", "mean")
PKD_REDUCTIONS = ("sum", "mean")


def _check_reduction(reduction: str, allowed: tuple[str, ...], what: str) -> None:
    if reduction not in allowed:
        raise ValueError(f"{what}: reduction must be {' or '.join(map(repr, allowed))}, got {reduction!r}")


def _check_same_shape(student: Tensor, teacher: Tensor, what: str) -> None:
    if student.shape != teacher.shape:
        raise ValueError(
            f"{what}: student shape {tuple(student.shape)} != teacher shape {tuple(teacher.shape)}"
        )


def _token_weights(values: Tensor, mask: Tensor | None) -> Tensor | None:
    """A float [B, L] weight (1 = count this position) for per-token ``values`` [B, L]."""
    if mask is None:
        return None
    if mask.shape != values.shape:
        raise ValueError(
            f"attention_mask shape {tuple(mask.shape)} does not match the token axis "
            f"{tuple(values.shape)}"
        )
    return (mask != 0).to(values.dtype)


def _masked_mean(values: Tensor, weights: Tensor | None) -> Tensor:
    """Mean of ``values`` over positions with weight 1 (all positions when ``weights`` is None)."""
    if weights is None:
        return values.mean()
    picked = torch.where(weights > 0, values, torch.zeros_like(values))
    return picked.sum() / weights.sum().clamp_min(1.0)


def _soft_distributions(student: Tensor, teacher: Tensor, temperature: float) -> tuple[Tensor, Tensor, Tensor]:
    """(log p_s, log p_t, p_t) of the temperature-softened class distributions, in float32."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    log_p_s = F.log_softmax(student.float() / temperature, dim=-1)
    log_p_t = F.log_softmax(teacher.float() / temperature, dim=-1)
    return log_p_s, log_p_t, log_p_t.exp()


def _row_weights(logits: Tensor, mask: Tensor | None, labels: Tensor | None = None,
                 labelled_only: bool = False) -> Tensor | None:
    """Which rows of ``logits`` count: None for [B, C]; real (and labelled) tokens for [B, L, C]."""
    if logits.dim() == 2:
        return None
    if logits.dim() != 3:
        raise ValueError(f"logits must be [B, C] or [B, L, C], got shape {tuple(logits.shape)}")
    keep = torch.ones(logits.shape[:2], dtype=torch.bool, device=logits.device)
    if mask is not None:
        if mask.shape != logits.shape[:2]:
            raise ValueError(
                f"attention_mask shape {tuple(mask.shape)} does not match logits {tuple(logits.shape)}"
            )
        keep = keep & (mask != 0)
    if labelled_only:
        if labels is None:
            raise ValueError("positions='labelled' needs the batch's labels")
        if labels.shape != logits.shape[:2]:
            raise ValueError(
                f"labels shape {tuple(labels.shape)} does not match logits {tuple(logits.shape)}"
            )
        keep = keep & (labels != IGNORE_INDEX)
    return keep.to(torch.float32)


# --------------------------------------------------------------------------- functions


def kd_kl(student: Tensor, teacher: Tensor, mask: Tensor | None = None, *,
          temperature: float = 1.0, labels: Tensor | None = None,
          labelled_only: bool = False, reduction: str = "batchmean") -> Tensor:
    """Hinton KD: T² · KL(softmax(t/T) ‖ softmax(s/T)).

    ``reduction='batchmean'``: summed over classes, mean over rows. ``reduction='mean'``:
    mean over rows *and* classes, i.e. the batchmean value divided by the class count C
    (what ``nn.KLDivLoss()`` with its default reduction computes on [B, C] inputs).
    Rows are examples for [B, C] logits; for [B, L, C] logits they are the real tokens
    (``mask`` = 1), and with ``labelled_only`` only tokens whose label is not -100.
    """
    _check_same_shape(student, teacher, "kd_kl")
    _check_reduction(reduction, KL_REDUCTIONS, "kd_kl")
    log_p_s, log_p_t, p_t = _soft_distributions(student, teacher, temperature)
    per_row = torch.where(p_t > 0, p_t * (log_p_t - log_p_s), torch.zeros_like(p_t)).sum(-1)
    weights = _row_weights(student, mask, labels, labelled_only)
    value = _masked_mean(per_row, weights) * (temperature * temperature)
    if reduction == "mean":
        value = value / student.shape[-1]
    return value


def soft_ce(student: Tensor, teacher: Tensor, mask: Tensor | None = None, *,
            temperature: float = 1.0) -> Tensor:
    """Soft cross-entropy: T² · (−Σ_c softmax(t/T)_c · log_softmax(s/T)_c), mean over rows.

    Rows as in :func:`kd_kl` (examples, or real tokens for [B, L, C] logits).
    """
    _check_same_shape(student, teacher, "soft_ce")
    log_p_s, _, p_t = _soft_distributions(student, teacher, temperature)
    per_row = -(p_t * log_p_s).sum(-1)
    return _masked_mean(per_row, _row_weights(student, mask)) * (temperature * temperature)


def logits_mse(student: Tensor, teacher: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean squared error of raw logits (Tang et al., Distilled BiLSTM), mean over elements.

    For [B, L, C] logits only real tokens count: sum of squared errors / (real tokens × C).
    """
    _check_same_shape(student, teacher, "logits_mse")
    sq = (student.float() - teacher.float()) ** 2
    weights = _row_weights(student, mask)
    if weights is None:
        return sq.mean()
    return _masked_mean(sq.sum(-1), weights) / sq.shape[-1]


def hard_loss(student: Tensor, labels: Tensor, mask: Tensor | None = None, *,
              regression: bool = False) -> Tensor:
    """The ordinary task loss against gold labels.

    Classification ([B, C] logits, [B] ids) and token classification ([B, L, C] logits,
    [B, L] ids): cross-entropy, mean over labels that are not -100 (padding tokens are also
    excluded through ``mask``). Regression (``regression=True`` or float labels): MSE of the
    single output against the score.
    """
    if labels is None:
        raise ValueError("hard: the batch has no 'labels'")
    if regression or labels.is_floating_point():
        pred = student.float()
        if pred.dim() == labels.dim() + 1 and pred.shape[-1] == 1:
            pred = pred.squeeze(-1)
        if pred.shape != labels.shape:
            raise ValueError(
                f"hard (regression): prediction shape {tuple(pred.shape)} does not match "
                f"labels {tuple(labels.shape)}"
            )
        return ((pred - labels.float()) ** 2).mean()
    logits = student.float()
    if logits.shape[:-1] != labels.shape:
        raise ValueError(
            f"hard: logits shape {tuple(logits.shape)} does not match labels {tuple(labels.shape)}"
        )
    labels = labels.long()
    if logits.dim() == 3 and mask is not None:
        labels = labels.masked_fill(mask == 0, IGNORE_INDEX)
    flat_logits = logits.reshape(-1, logits.shape[-1])
    flat_labels = labels.reshape(-1)
    total = F.cross_entropy(flat_logits, flat_labels, ignore_index=IGNORE_INDEX, reduction="sum")
    count = (flat_labels != IGNORE_INDEX).sum().clamp_min(1)
    return total / count


def cosine_loss(student: Tensor, teacher: Tensor, mask: Tensor | None = None, *,
                eps: float = 1e-8) -> Tensor:
    """DistilBERT's cosine embedding loss: mean over real tokens of 1 − cos(s_i, t_i).

    [B, L, D] hidden states: padding tokens excluded; [B, D] vectors: mean over examples.
    """
    _check_same_shape(student, teacher, "cosine")
    s, t = student.float(), teacher.float()
    norms = s.norm(dim=-1).clamp_min(eps) * t.norm(dim=-1).clamp_min(eps)
    per = 1.0 - (s * t).sum(-1) / norms
    weights = _token_weights(per, mask) if per.dim() == 2 else None
    return _masked_mean(per, weights)


def hidden_mse(student: Tensor, teacher: Tensor, mask: Tensor | None = None) -> Tensor:
    """MSE of hidden states over real tokens: Σ squared errors / (real tokens × hidden width).

    [B, D] vectors (e.g. [CLS]): mean over all elements.
    """
    _check_same_shape(student, teacher, "hidden_mse")
    sq = (student.float() - teacher.float()) ** 2
    if sq.dim() == 2:
        return sq.mean()
    if sq.dim() != 3:
        raise ValueError(f"hidden_mse: expected [B, L, D] or [B, D], got {tuple(sq.shape)}")
    per_token = sq.sum(-1)
    return _masked_mean(per_token, _token_weights(per_token, mask)) / sq.shape[-1]


def pkd_cls(student: Tensor, teacher: Tensor, *, eps: float = 1e-12, reduction: str = "sum") -> Tensor:
    """BERT-PKD on the L2-normalised [CLS] vectors s/‖s‖, t/‖t‖ of one layer pair.

    ``reduction='sum'``: mean over examples of Σ_d (s/‖s‖ − t/‖t‖)². ``reduction='mean'``:
    mean over examples and hidden units, i.e. the 'sum' value divided by the width D
    (``F.mse_loss`` of the normalised vectors). Takes [B, D] [CLS] vectors, or [B, L, D]
    hidden states (position 0 is used).
    """
    _check_same_shape(student, teacher, "pkd_cls")
    _check_reduction(reduction, PKD_REDUCTIONS, "pkd_cls")
    s, t = student.float(), teacher.float()
    if s.dim() == 3:
        s, t = s[:, 0], t[:, 0]
    if s.dim() != 2:
        raise ValueError(f"pkd_cls: expected [B, D] or [B, L, D], got {tuple(student.shape)}")
    s = s / s.norm(dim=-1, keepdim=True).clamp_min(eps)
    t = t / t.norm(dim=-1, keepdim=True).clamp_min(eps)
    sq = (s - t) ** 2
    return sq.mean() if reduction == "mean" else sq.sum(-1).mean()


def _attention_pair(student: Tensor, teacher: Tensor, head_reduce: str, what: str) -> tuple[Tensor, Tensor]:
    if student.dim() != 4 or teacher.dim() != 4:
        raise ValueError(f"{what}: attention maps must be [B, H, L, L], got "
                         f"{tuple(student.shape)} and {tuple(teacher.shape)}")
    if head_reduce not in ("none", "mean"):
        raise ValueError(f"{what}: head_reduce must be 'none' or 'mean', got {head_reduce!r}")
    s, t = student.float(), teacher.float()
    if head_reduce == "mean":
        s, t = s.mean(1, keepdim=True), t.mean(1, keepdim=True)
    elif s.shape[1] != t.shape[1]:
        raise ValueError(f"{what}: student has {s.shape[1]} heads, teacher {t.shape[1]}; "
                         "set head_reduce: mean to compare head-averaged maps")
    _check_same_shape(s, t, what)
    return s, t


def _key_query_masks(attn: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
    """Float masks of real query rows [B, 1, L, 1] and real key columns [B, 1, 1, L]."""
    batch, _, length, _ = attn.shape
    if mask is None:
        real = torch.ones(batch, length, device=attn.device)
    else:
        if mask.shape != (batch, length):
            raise ValueError(f"attention_mask shape {tuple(mask.shape)} does not match "
                             f"attention maps {tuple(attn.shape)}")
        real = (mask != 0).to(torch.float32)
    return real[:, None, :, None], real[:, None, None, :]


def attention_mse(student: Tensor, teacher: Tensor, mask: Tensor | None = None, *,
                  head_reduce: str = "none") -> Tensor:
    """TinyBERT: MSE of attention maps [B, H, L, L] over real (query, key) pairs only.

    = Σ_{b,h,i,j real} (s − t)² / (H · Σ_b n_b²), n_b = real tokens of example b: the mean
    over heads of each head's MSE, padded positions (a padded query row or a padded key
    column) left out of both the sum and the count. TinyBERT compares the pre-softmax
    scores (feature ``attention_scores``, the default); on probabilities (``attention``)
    it is the MSE of the distributions. With ``head_reduce='mean'`` both maps are first
    averaged over heads (for differing head counts).
    """
    s, t = _attention_pair(student, teacher, head_reduce, "attention_mse")
    rows, cols = _key_query_masks(s, mask)
    pair = rows * cols
    sq = torch.where(pair > 0, (s - t) ** 2, torch.zeros_like(s))
    return sq.sum() / (pair.sum() * s.shape[1]).clamp_min(1.0)


def attention_kl(student: Tensor, teacher: Tensor, mask: Tensor | None = None, *,
                 head_reduce: str = "none", eps: float = 1e-12) -> Tensor:
    """MiniLM-style KL(teacher row ‖ student row) of attention distributions.

    For every head and real query row, Σ_{real keys j} t_j (log t_j − log s_j); mean over
    (example, head, real query row).
    """
    s, t = _attention_pair(student, teacher, head_reduce, "attention_kl")
    rows, cols = _key_query_masks(s, mask)
    log_s = torch.log(s.clamp_min(eps))
    per_key = torch.where((t > 0) & (cols > 0), t * (torch.log(t.clamp_min(eps)) - log_s),
                          torch.zeros_like(t))
    per_row = per_key.sum(-1, keepdim=True)  # [B, H, L, 1]
    weights = rows.expand_as(per_row)
    return _masked_mean(per_row, weights)


# --------------------------------------------------------------------------- modules


class DistillLoss(nn.Module):
    """Base class of the registered loss modules (see the module docstring)."""

    name: ClassVar[str] = ""
    features: ClassVar[tuple[str, ...]] = ("logits",)
    needs_teacher: ClassVar[bool] = True
    uses_temperature: ClassVar[bool] = False
    soft_targets: ClassVar[bool] = False
    projectable: ClassVar[bool] = False
    params: ClassVar[tuple[str, ...]] = ()
    #: how the distiller combines a term's layer pairs: "sum" or "mean" (over the pairs)
    pair_reduction: str = "sum"
    #: the batch entry the distiller passes as ``mask`` (``qa_kd``: the span positions)
    mask_key: ClassVar[str] = "attention_mask"

    def forward(self, student: Tensor, teacher: Tensor | None, mask: Tensor | None = None,
                labels: Tensor | None = None) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def model_params(cls, params: dict, *, student_width: int, teacher_width: int, student_heads: int,
                     teacher_heads: int) -> dict:
        """A term's ``params`` completed and checked against the two models' widths and head
        counts (the distiller calls this before building the loss); ValueError when they cannot
        serve. The default takes the params as they are."""
        return params

    def extra_repr(self) -> str:
        shown = {k: getattr(self, k) for k in ("temperature", *self.params) if hasattr(self, k)}
        return ", ".join(f"{k}={v!r}" for k, v in shown.items())


@register_loss("kd_kl")
class KDKLLoss(DistillLoss):
    """T² · KL(softmax(t/T) ‖ softmax(s/T)) (rows = examples or real tokens).

    ``reduction``: ``batchmean`` (default: summed over classes, mean over rows) or ``mean``
    (mean over rows and classes, as ``nn.KLDivLoss()``'s default: batchmean / C). The T²
    factor is part of the loss, so a term's weight means the same at every temperature.
    """

    uses_temperature = True
    soft_targets = True
    params = ("reduction",)

    def __init__(self, temperature: float = 1.0, reduction: str = "batchmean") -> None:
        super().__init__()
        _check_reduction(reduction, KL_REDUCTIONS, "kd_kl")
        self.temperature = float(temperature)
        self.reduction = reduction

    def forward(self, student, teacher, mask=None, labels=None):
        return kd_kl(student, teacher, mask, temperature=self.temperature, reduction=self.reduction)


@register_loss("soft_ce")
class SoftCELoss(DistillLoss):
    """T² · soft-target cross-entropy, mean over examples (or real tokens)."""

    uses_temperature = True
    soft_targets = True

    def __init__(self, temperature: float = 1.0) -> None:
        super().__init__()
        self.temperature = float(temperature)

    def forward(self, student, teacher, mask=None, labels=None):
        return soft_ce(student, teacher, mask, temperature=self.temperature)


@register_loss("logits_mse")
class LogitsMSELoss(DistillLoss):
    """MSE between student and teacher logits (mean over elements / real tokens)."""

    def forward(self, student, teacher, mask=None, labels=None):
        return logits_mse(student, teacher, mask)


@register_loss("hard")
class HardLoss(DistillLoss):
    """Cross-entropy with gold labels (ignore_index -100), or MSE for regression."""

    needs_teacher = False
    params = ("regression",)

    def __init__(self, regression: bool = False) -> None:
        super().__init__()
        self.regression = bool(regression)

    def forward(self, student, teacher=None, mask=None, labels=None):
        return hard_loss(student, labels, mask, regression=self.regression)


@register_loss("token_kd")
class TokenKDLoss(DistillLoss):
    """KD for token classification over real tokens (``positions: real``) or only over
    first word pieces, i.e. positions whose label is not -100 (``positions: labelled``)."""

    uses_temperature = True
    soft_targets = True
    params = ("positions",)

    def __init__(self, temperature: float = 1.0, positions: str = "real") -> None:
        super().__init__()
        if positions not in ("real", "labelled"):
            raise ValueError(f"token_kd: positions must be 'real' or 'labelled', got {positions!r}")
        self.temperature = float(temperature)
        self.positions = positions

    def forward(self, student, teacher, mask=None, labels=None):
        if student.dim() != 3:
            raise ValueError(f"token_kd: expected [B, L, C] token logits, got {tuple(student.shape)}")
        return kd_kl(student, teacher, mask, temperature=self.temperature, labels=labels,
                     labelled_only=self.positions == "labelled")


@register_loss("cosine")
class CosineLoss(DistillLoss):
    """DistilBERT cosine loss: mean over real tokens of 1 − cos(s_i, t_i)."""

    features = ("hidden", "cls", "embeddings")
    projectable = True

    def forward(self, student, teacher, mask=None, labels=None):
        return cosine_loss(student, teacher, mask)


@register_loss("hidden_mse")
class HiddenMSELoss(DistillLoss):
    """MSE of (projected) hidden states over real tokens."""

    features = ("hidden", "cls", "embeddings")
    projectable = True

    def forward(self, student, teacher, mask=None, labels=None):
        return hidden_mse(student, teacher, mask)


@register_loss("pkd_cls")
class PKDClsLoss(DistillLoss):
    """BERT-PKD patient loss on L2-normalised [CLS] vectors.

    ``reduction``: ``sum`` (default: Σ over hidden units, mean over examples, summed over
    the term's layer pairs) or ``mean`` (mean over layer pairs, examples and hidden units:
    ``F.mse_loss`` of the stacked normalised [pairs, B, D] vectors, as the authors' code).
    """

    features = ("cls", "hidden")
    projectable = True
    params = ("reduction",)

    def __init__(self, reduction: str = "sum") -> None:
        super().__init__()
        _check_reduction(reduction, PKD_REDUCTIONS, "pkd_cls")
        self.reduction = reduction
        self.pair_reduction = "mean" if reduction == "mean" else "sum"

    def forward(self, student, teacher, mask=None, labels=None):
        return pkd_cls(student, teacher, reduction=self.reduction)


@register_loss("attention_mse")
class AttentionMSELoss(DistillLoss):
    """TinyBERT attention MSE over real query/key positions (pre-softmax scores by default)."""

    features = ("attention_scores", "attention")
    params = ("head_reduce",)

    def __init__(self, head_reduce: str = "none") -> None:
        super().__init__()
        self.head_reduce = head_reduce

    def forward(self, student, teacher, mask=None, labels=None):
        return attention_mse(student, teacher, mask, head_reduce=self.head_reduce)


@register_loss("attention_kl")
class AttentionKLLoss(AttentionMSELoss):
    """MiniLM-style KL between teacher and student attention rows (real rows only)."""

    features = ("attention",)

    def forward(self, student, teacher, mask=None, labels=None):
        return attention_kl(student, teacher, mask, head_reduce=self.head_reduce)


@register_loss("embedding_mse")
class EmbeddingMSELoss(DistillLoss):
    """TinyBERT embedding-layer loss: MSE of (projected) embedding outputs over real tokens."""

    features = ("embeddings",)
    projectable = True

    def forward(self, student, teacher, mask=None, labels=None):
        return hidden_mse(student, teacher, mask)


@register_loss("minilm")
class MiniLMLoss(DistillLoss):
    """MiniLM / MiniLMv2 self-attention relation distillation on one layer pair's ``qkv``
    features (query, key and value projections, heads concatenated; see
    :mod:`bertdistill.distill.relations`).

    ``variant: v2`` (default, Wang et al. 2021): the query-query, key-key and value-value
    relations with ``relation_heads`` heads on both sides (default: the teacher's attention
    head count; it must divide both widths, so teacher and student head counts may differ).
    ``variant: v1`` (Wang et al. 2020): the attention distributions (``qk``) and the
    value-value relation, over the models' own attention heads (equal on both sides).
    ``relations`` weighs each relation (``{qq: 1, kk: 1, vv: 1}`` / ``{qk: 1, vv: 1}`` by
    default; a relation left out or at 0 is not computed).
    """

    features = ("qkv",)
    params = ("variant", "relation_heads", "relations")
    VARIANTS = {"v2": {"qq": 1.0, "kk": 1.0, "vv": 1.0}, "v1": {"qk": 1.0, "vv": 1.0}}

    def __init__(self, variant: str = "v2", relation_heads: int | None = None,
                 relations: dict | None = None) -> None:
        super().__init__()
        if variant not in self.VARIANTS:
            raise ValueError(f"minilm: variant must be 'v2' or 'v1', got {variant!r}")
        if relation_heads is not None and (isinstance(relation_heads, bool) or not isinstance(relation_heads, int)
                                           or relation_heads < 1):
            raise ValueError(f"minilm: relation_heads must be an integer >= 1, got {relation_heads!r}")
        if relations is None:
            relations = self.VARIANTS[variant]
        if not isinstance(relations, dict) or not relations:
            raise ValueError(f"minilm: relations must be a mapping of {', '.join(RELATIONS)} to weights, "
                             f"got {relations!r}")
        for name, weight in relations.items():
            if name not in RELATIONS:
                raise ValueError(f"minilm: unknown relation {name!r}; known: {', '.join(RELATIONS)}")
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
                raise ValueError(f"minilm: the weight of relation {name} must be a number >= 0, got {weight!r}")
        if not any(relations.values()):
            raise ValueError("minilm: every relation has weight 0")
        self.variant = variant
        self.relation_heads = relation_heads
        self.relations = {k: float(v) for k, v in relations.items()}

    @classmethod
    def model_params(cls, params, *, student_width, teacher_width, student_heads, teacher_heads):
        params = dict(params)
        heads = params.get("relation_heads")
        if params.get("variant", "v2") == "v1":
            if student_heads != teacher_heads:
                raise ValueError(f"minilm v1 compares the models' own attention heads, but the student has "
                                 f"{student_heads} and the teacher {teacher_heads}; use variant v2 (relation heads)")
            if heads is not None and heads != teacher_heads:
                raise ValueError(f"minilm v1: relation_heads {heads} is not the models' attention head count "
                                 f"{teacher_heads}; leave it out or use variant v2")
            params["relation_heads"] = teacher_heads
            return params
        heads = teacher_heads if heads is None else heads
        for side, width in (("student", student_width), ("teacher", teacher_width)):
            if isinstance(heads, int) and heads >= 1 and width % heads:
                raise ValueError(f"minilm: {heads} relation heads do not divide the {side} width {width}; "
                                 "set params: {relation_heads: N} to a divisor of both widths")
        params["relation_heads"] = heads
        return params

    def forward(self, student, teacher, mask=None, labels=None):
        if self.relation_heads is None:
            raise ValueError("minilm: relation_heads is not set (the distiller sets it from the models)")
        return minilm_loss(student, teacher, mask, relations=self.relations,
                           student_heads=self.relation_heads, teacher_heads=self.relation_heads)


def build_loss(name: str, temperature: float = 1.0, **params) -> DistillLoss:
    """Instantiate the registered loss ``name`` (``temperature`` only reaches losses using it)."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; known losses: {', '.join(sorted(LOSSES))}")
    cls = LOSSES[name]
    unknown = sorted(set(params) - set(cls.params))
    if unknown:
        allowed = ", ".join(cls.params) or "none"
        raise ValueError(f"loss {name!r}: unknown parameter(s) {', '.join(unknown)}; allowed: {allowed}")
    if cls.uses_temperature:
        return cls(temperature=temperature, **params)
    return cls(**params)


# --------------------------------------------------------------------------- masked-LM
# General (pre-training) distillation over masked-LM logits [B, L, V]. The batch's ``labels``
# hold the original token at masked positions and -100 everywhere else.


def _check_mlm_logits(student: Tensor, what: str) -> None:
    if student.dim() != 3:
        raise ValueError(f"{what}: expected masked-LM logits [B, L, V], got shape {tuple(student.shape)}")


@register_loss("mlm_ce")
class MLMCrossEntropyLoss(DistillLoss):
    """DistilBERT's L_mlm: cross-entropy of the student's masked-LM logits with the original
    tokens at the masked positions (labels != -100), mean over masked positions."""

    needs_teacher = False

    def forward(self, student, teacher=None, mask=None, labels=None):
        _check_mlm_logits(student, "mlm_ce")
        if labels is None:
            raise ValueError("mlm_ce: the batch has no masked-LM 'labels' (-100 on unmasked positions)")
        return hard_loss(student, labels, mask)


@register_loss("mlm_kd")
class MLMKDLoss(DistillLoss):
    """DistilBERT's L_ce: T² · KL(teacher ‖ student) of the masked-LM distributions over all
    real tokens (``positions: real``, the reference's default) or the masked ones only
    (``positions: masked``, labels != -100)."""

    uses_temperature = True
    soft_targets = True
    params = ("positions",)

    def __init__(self, temperature: float = 1.0, positions: str = "real") -> None:
        super().__init__()
        if positions not in ("real", "masked"):
            raise ValueError(f"mlm_kd: positions must be 'real' or 'masked', got {positions!r}")
        self.temperature = float(temperature)
        self.positions = positions

    def forward(self, student, teacher, mask=None, labels=None):
        _check_mlm_logits(student, "mlm_kd")
        if self.positions == "masked" and labels is None:
            raise ValueError("mlm_kd: positions 'masked' needs the batch's masked-LM labels")
        return kd_kl(student, teacher, mask, temperature=self.temperature, labels=labels,
                     labelled_only=self.positions == "masked")
