"""The masked-LM terms over chunks of positions equal the plain computation: every term's value,
the total, and every gradient of the student (BERT and DistilBERT students, real and masked
positions, padded batches, chunks smaller than, equal to and larger than the batch)."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from bertdistill.distill.distiller import Distiller
from bertdistill.distill.features import extract
from bertdistill.distill.recipe import load_recipe
from bertdistill.distill.terms import Term
from bertdistill.distill.vocab_chunks import ChunkedMLMModule, chunked_module
from bertdistill.models.inputs import model_inputs
from bertdistill.pipelines.distill import DistillModule
from bertdistill.students import build_student
from tiny import make_tiny_bert, make_tiny_tokenizer


def _batch(vocab: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (3, 9), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0  # padded rows
    mask[2, 4:] = 0
    ids = ids.masked_fill(mask == 0, 0)
    labels = torch.full_like(ids, -100)
    labels[0, 2], labels[0, 7], labels[1, 1], labels[2, 3] = 11, 12, 13, 14
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _models(tmp_path, arch: str):
    tok = make_tiny_tokenizer(tmp_path)
    teacher = make_tiny_bert(tok, task_kind="mlm", seed=1, hidden_dropout_prob=0.0,
                             attention_probs_dropout_prob=0.0, num_hidden_layers=4)
    with torch.no_grad():  # peaked teacher predictions, like a trained model's
        teacher.cls.predictions.bias.copy_(2 * torch.randn(teacher.cls.predictions.bias.shape))
    teacher.eval().requires_grad_(False)
    student, info = build_student(teacher, layers="skip", arch=arch)
    with torch.no_grad():  # a student that has drifted from its teacher: terms well above 0
        for p in student.parameters():
            p.add_(0.5 * torch.randn(p.shape))
    student.train()
    return teacher, student, info


def _plain(student, teacher, distiller, batch):
    module = DistillModule(student, distiller)
    with torch.no_grad():
        t_out = teacher(**model_inputs(teacher, batch), output_hidden_states=True)
    total, parts = module(batch, extract(t_out, distiller.teacher_keys))
    total.backward()
    return total.detach(), parts, {n: p.grad.clone() for n, p in student.named_parameters() if p.grad is not None}


def _chunked(student, teacher, distiller, batch, chunk):
    module = ChunkedMLMModule(student, distiller, teacher, chunk)
    total, parts = module(batch, module.teacher_features(batch))
    total.backward()
    return total.detach(), parts, {n: p.grad.clone() for n, p in student.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("arch,positions,chunk", [("distilbert", "real", 5), ("distilbert", "masked", 1),
                                                   ("same", "real", 7), ("distilbert", "real", 1000)])
def test_chunked_terms_and_gradients_equal_the_plain_ones(tmp_path, arch, positions, chunk):
    teacher, student, info = _models(tmp_path, arch)
    recipe = load_recipe("general_distilbert").with_overrides(weights={"logits_mse": 0.5})
    terms = [dataclasses.replace(t, params={"positions": positions}) if t.loss == "mlm_kd" else t
             for t in recipe.terms]
    distiller = Distiller(terms, student_config=student.config, teacher_config=teacher.config,
                          kept=info.kept, task_kind="token_classification")
    batch = _batch(teacher.config.vocab_size)
    twin = copy.deepcopy(student)
    plain_total, plain_parts, plain_grads = _plain(student, teacher, distiller, batch)
    total, parts, grads = _chunked(twin, teacher, distiller, batch, chunk)

    assert list(parts) == list(plain_parts) == ["mlm_kd", "mlm_ce", "cosine", "logits_mse"]
    torch.testing.assert_close(total, plain_total)
    for name in plain_parts:
        assert parts[name] == pytest.approx(plain_parts[name], rel=1e-5, abs=1e-6), name
    assert plain_parts["mlm_kd"] > 0.01 and plain_parts["mlm_ce"] > 0.1  # not a trivial zero
    assert set(grads) == set(plain_grads)
    for name, grad in plain_grads.items():
        torch.testing.assert_close(grads[name], grad, msg=name)
    head = "vocab_transform.weight" if arch == "distilbert" else "cls.predictions.transform.dense.weight"
    assert plain_grads[head].abs().sum() > 0  # the head's gradients are compared, not absent


def test_a_batch_without_masked_tokens_gives_a_zero_cross_entropy_as_the_plain_one(tmp_path):
    teacher, student, info = _models(tmp_path, "distilbert")
    distiller = Distiller(load_recipe("general_distilbert").terms, student_config=student.config,
                          teacher_config=teacher.config, kept=info.kept, task_kind="token_classification")
    batch = _batch(teacher.config.vocab_size)
    batch["labels"].fill_(-100)
    twin = copy.deepcopy(student)
    plain_total, plain_parts, _ = _plain(student, teacher, distiller, batch)
    total, parts, _ = _chunked(twin, teacher, distiller, batch, 4)
    assert parts["mlm_ce"] == plain_parts["mlm_ce"] == 0.0
    torch.testing.assert_close(total, plain_total)


def test_recipes_the_chunks_cannot_serve_keep_the_plain_module(tmp_path):
    teacher, student, info = _models(tmp_path, "distilbert")
    general = Distiller(load_recipe("general_distilbert").terms, student_config=student.config,
                        teacher_config=teacher.config, kept=info.kept, task_kind="token_classification")
    assert isinstance(chunked_module(student, general, teacher, 16), ChunkedMLMModule)
    assert chunked_module(student, general, teacher, 0) is None  # --vocab-chunk 0: all at once
    attention = [*load_recipe("general_distilbert").terms,
                 Term(loss="attention_mse", weight=1.0, student="attention", teacher="attention", layers="last")]
    with_maps = Distiller(attention, student_config=student.config, teacher_config=teacher.config,
                          kept=info.kept, task_kind="token_classification")
    assert chunked_module(student, with_maps, teacher, 16) is None


def test_a_negative_chunk_is_refused_before_anything_is_read(tmp_path):
    from bertdistill.pipelines.general_distill import GeneralDistillConfig, GeneralDistillRecipe

    recipe = GeneralDistillRecipe(GeneralDistillConfig(teacher=str(tmp_path / "none"), corpus=str(tmp_path / "none"),
                                                       output=str(tmp_path / "out"), vocab_chunk=-1))
    with pytest.raises(ValueError, match="--vocab-chunk must be a whole number >= 0"):
        recipe.setup()
    assert not (tmp_path / "out").exists()
