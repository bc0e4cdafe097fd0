"""Distiller terms on real (tiny) BERT models with known answers: a student identical to the
teacher scores 0 on every comparison term, a perturbed copy scores > 0 on each, and a
student with a zeroed classifier gives the hand-computed KD and task losses."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from bertdistill.distill import Distiller, Term
from bertdistill.distill.features import prepare_model

TERMS = [Term(loss="kd_kl", temperature=2.0), Term(loss="soft_ce", temperature=1.0), Term(loss="logits_mse"),
         Term(loss="hidden_mse", layers="copied"), Term(loss="cosine", layers="last"),
         Term(loss="attention_mse", layers="copied"), Term(loss="attention_kl", layers="copied"),
         Term(loss="pkd_cls", layers="copied"), Term(loss="embedding_mse")]
DISTANCES = {"kd_kl", "logits_mse", "hidden_mse", "cosine", "attention_mse", "attention_kl", "pkd_cls", "embedding_mse"}


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(11)
    config = BertConfig(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=32, num_labels=3,
                        attn_implementation="eager")
    return BertForSequenceClassification(config).eval()


@pytest.fixture(scope="module")
def batch():
    torch.manual_seed(12)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    return {"input_ids": torch.randint(1, 60, (2, 6)) * mask, "attention_mask": mask,
            "labels": torch.tensor([0, 2])}


def _parts(student, teacher, batch, terms=TERMS):
    d = Distiller(terms, student_config=student.config, teacher_config=teacher.config, kept=[0, 1])
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    prepare_model(teacher, d.teacher_needs)  # attention terms read the maps through the recorder
    prepare_model(student, d.student_needs)
    with torch.no_grad():
        t_out = teacher(**inputs, **d.teacher_needs.forward_kwargs())
        s_out = student(**inputs, **d.student_needs.forward_kwargs())
    return d.compute(s_out, t_out, batch)[1]


def test_identical_student_scores_zero_and_perturbed_copy_scores_positive(teacher, batch):
    same = _parts(copy.deepcopy(teacher).eval(), teacher, batch)
    assert DISTANCES <= set(same)
    for name in DISTANCES:
        assert abs(same[name]) < 1e-5, (name, same[name])

    perturbed = copy.deepcopy(teacher).eval()
    torch.manual_seed(13)
    with torch.no_grad():
        for p in perturbed.parameters():
            p.add_(0.05 * torch.randn_like(p))
    moved = _parts(perturbed, teacher, batch)
    for name in DISTANCES:
        assert moved[name] > 1e-6, (name, moved[name])
    # soft cross-entropy against itself is the teacher's own entropy, which the copy cannot lower
    assert moved["soft_ce"] > same["soft_ce"] - 1e-6


def test_zeroed_classifier_gives_hand_computed_kd_and_task_loss(teacher, batch):
    teacher = copy.deepcopy(teacher).eval()
    with torch.no_grad():
        teacher.classifier.weight.mul_(40.0)  # confident teacher: logits of order 1
    student = copy.deepcopy(teacher).eval()
    with torch.no_grad():
        student.classifier.weight.zero_()
        student.classifier.bias.zero_()  # student logits are 0: a uniform distribution over 3 classes
    parts = _parts(student, teacher, batch, [Term(loss="kd_kl", temperature=2.0), Term(loss="hard")])
    with torch.no_grad():
        t_logits = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    expected_kd = 0.0
    for row in t_logits.tolist():
        scaled = [v / 2.0 for v in row]
        z = sum(math.exp(v) for v in scaled)
        expected_kd += sum(math.exp(v) / z * math.log(math.exp(v) / z * 3) for v in scaled)
    expected_kd = 4.0 * expected_kd / len(t_logits)  # T² · mean over examples of KL(p_t || uniform)
    assert expected_kd > 0.05
    assert parts["kd_kl"] == pytest.approx(expected_kd, rel=1e-4)
    assert parts["hard"] == pytest.approx(math.log(3), rel=1e-6)
