"""The shipped BERT-PKD recipes compute the authors' objective.

The reference is written out with plain torch ops in the form of the authors' code:
``nn.KLDivLoss()(log_softmax(s/T), softmax(t/T)) · T² · α + cross_entropy · (1 − α)
+ β · F.mse_loss`` over the L2-normalised [CLS] vectors stacked as [batch, layers, hidden],
with α = 0.7, β = 100, T = 5, for several widths, depths and class counts.
"""

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bertdistill.distill import Distiller, load_recipe

ALPHA, BETA = 0.7, 100.0


def config(layers, width, labels):
    return SimpleNamespace(num_hidden_layers=layers, hidden_size=width, num_attention_heads=1,
                           num_labels=labels)


def authors_objective(s_logits, t_logits, labels, s_cls, t_cls, temperature):
    """The authors' distillation_loss + beta * patience_loss, as their code computes it."""
    kd = nn.KLDivLoss()(F.log_softmax(s_logits / temperature, dim=1),
                        F.softmax(t_logits / temperature, dim=1)) * temperature * temperature
    ce = F.cross_entropy(s_logits, labels)
    s_pat = F.normalize(torch.stack(s_cls, dim=1), p=2, dim=2)  # [B, layers, D]
    t_pat = F.normalize(torch.stack(t_cls, dim=1), p=2, dim=2)
    return ALPHA * kd + (1.0 - ALPHA) * ce + BETA * F.mse_loss(t_pat, s_pat)


# (recipe, student layers, teacher layers, width, classes, batch, the teacher layers the
#  student's layers 1..M-1 learn from, 1-based, written out from the PKD paper)
CASES = [
    ("pkd_skip", 3, 6, 8, 2, 4, [2, 4]),
    ("pkd_skip", 4, 12, 24, 5, 3, [3, 6, 9]),
    ("pkd_last", 3, 6, 8, 2, 4, [4, 5]),
    ("pkd_last", 2, 5, 16, 3, 5, [4]),
]


@pytest.mark.filterwarnings("ignore:reduction. .mean. divides:UserWarning")
@pytest.mark.parametrize("name, m, n, width, classes, batch, teacher_layers", CASES)
@pytest.mark.parametrize("temperature", [None, 10.0])
def test_recipe_total_is_the_authors_objective(name, m, n, width, classes, batch, teacher_layers,
                                               temperature):
    recipe = load_recipe(name)
    if temperature is not None:  # --temperature: changes T only, the weight stays alpha
        recipe = recipe.with_overrides(temperature=temperature)
    T = temperature or 5.0
    distiller = Distiller(recipe.terms, student_config=config(m, width, classes),
                          teacher_config=config(n, width, classes))
    torch.manual_seed(width + classes + m)
    s_logits = torch.randn(batch, classes) * 3
    t_logits = torch.randn(batch, classes) * 3
    labels = torch.randint(0, classes, (batch,))
    s_cls = [torch.randn(batch, width) for _ in range(1, m)]
    t_cls = {layer: torch.randn(batch, width) for layer in teacher_layers}
    assert distiller.teacher_keys == sorted(["logits", *(f"cls:{k}" for k in teacher_layers)])
    student = {"logits": s_logits, **{f"cls:{j}": s_cls[j - 1] for j in range(1, m)}}
    teacher = {"logits": t_logits, **{f"cls:{k}": v for k, v in t_cls.items()}}
    total, parts = distiller(student, teacher, {"labels": labels})
    expected = authors_objective(s_logits, t_logits, labels, s_cls,
                                 [t_cls[k] for k in teacher_layers], T)
    assert float(total) == pytest.approx(float(expected), rel=1e-5, abs=1e-6)
    # each part on its own, unweighted
    s_pat = F.normalize(torch.stack(s_cls, 1), dim=2)
    t_pat = F.normalize(torch.stack([t_cls[k] for k in teacher_layers], 1), dim=2)
    assert parts["pkd_cls"] == pytest.approx(float(F.mse_loss(t_pat, s_pat)), rel=1e-5)
    kd = nn.KLDivLoss()(F.log_softmax(s_logits / T, 1), F.softmax(t_logits / T, 1)) * T * T
    assert parts["kd_kl"] == pytest.approx(float(kd), rel=1e-5)


def test_temperature_override_changes_only_the_temperature():
    recipe = load_recipe("pkd_skip").with_overrides(temperature=20.0)
    kd = next(t for t in recipe.terms if t.loss == "kd_kl")
    assert (kd.weight, kd.temperature, kd.params) == (0.7, 20.0, {"reduction": "mean"})
