"""`general-distill --recipe general_minilm`: MiniLMv2 relations from an encoder without a
masked-LM head, into students of another width and head count or of copied layers, saved as
plain encoders that the task distillation starts from."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModel, AutoModelForSequenceClassification, BertModel, DistilBertModel

from bertdistill.cli import main
from bertdistill.pipelines.general_distill import GeneralDistillConfig, GeneralDistillRecipe
from general_fixtures import prepare, save_tiny_mlm, write_text

# another width and head count than the teacher's (32 wide, 2 heads): relations re-split
NARROW = {"hidden_size": 24, "num_hidden_layers": 1, "num_attention_heads": 3, "intermediate_size": 48}


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    root = tmp_path_factory.mktemp("minilm")
    teacher = save_tiny_mlm(root / "teacher", seed=0, kind="base")  # a BertModel: no masked-LM head
    model = BertModel.from_pretrained(teacher)
    with torch.no_grad():  # larger projections: peaked relations, as a trained model's, not near uniform
        for layer in model.encoder.layer:
            for linear in (layer.attention.self.query, layer.attention.self.key, layer.attention.self.value):
                linear.weight.mul_(4.0)
    model.save_pretrained(teacher)
    corpus = prepare(write_text(root / "train.txt", 120, 1), str(teacher), root / "corpus")
    return {"teacher": teacher, "corpus": corpus}


def _recipe(data, out, **kw):
    train = {"lr": 3e-3, "batch_size": 8, "log_every": 1, "seed": 3, **kw.pop("train", {})}
    return GeneralDistillRecipe(GeneralDistillConfig(teacher=str(data["teacher"]), corpus=str(data["corpus"]),
                                                     output=str(out), recipe="general_minilm", train=train, **kw))


def test_random_student_learns_the_relations_from_a_headless_teacher(encoder, tmp_path):
    out = tmp_path / "run"
    recipe = _recipe(encoder, out, student_config=NARROW, train={"epochs": 3})
    seen = []
    recipe_setup = recipe.setup

    def setup():
        recipe_setup()
        recipe.teacher.register_forward_pre_hook(lambda m, args, kw: seen.append(kw["input_ids"]), with_kwargs=True)

    recipe.setup = setup
    result = recipe.run()
    assert type(recipe.teacher) is BertModel and recipe.distiller._losses["minilm"].relation_heads == 2
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    parts = [row["parts"]["minilm"] for row in log if "parts" in row]
    first, last = sum(parts[:5]) / 5, sum(parts[-5:]) / 5
    assert len(parts) > 20 and last < 0.5 * first, parts  # the student's relations move to the teacher's
    mask_id = recipe.tokenizer.mask_token_id
    assert seen and all(not (ids == mask_id).any() for ids in seen)  # unmasked text, no masked-LM objective
    student = AutoModel.from_pretrained(result["student_dir"])
    assert type(student) is BertModel and student.config.hidden_size == 24
    classifier = AutoModelForSequenceClassification.from_pretrained(result["student_dir"], num_labels=2)
    with torch.no_grad():
        assert classifier(input_ids=torch.tensor([[2, 10, 11, 3]])).logits.shape == (1, 2)
    assert result["tokens_per_s"] > 0 and "held_out" not in result


def test_copied_layer_student_is_a_distill_student(encoder, tiny_teacher, toy_task_dir, tmp_path):
    result = _recipe(encoder, tmp_path / "general", student_arch="distilbert", train={"max_steps": 3}).run()
    assert result["student"]["kept"] == [1]
    student = AutoModel.from_pretrained(result["student_dir"])
    assert type(student) is DistilBertModel and student.config.n_layers == 1
    teacher = AutoModel.from_pretrained(encoder["teacher"])
    assert not torch.equal(student.transformer.layer[0].attention.q_lin.weight,
                           teacher.encoder.layer[1].attention.self.query.weight)  # trained from the copy
    out = tmp_path / "task"
    rc = main(["distill", "--teacher", str(tiny_teacher), "--task", "tsv", "--data", str(toy_task_dir),
               "--student", result["student_dir"], "--output", str(out), "--epochs", "1", "--batch-size", "16",
               "--max-train-examples", "64", "--cache-dir", str(tmp_path / "cache")])
    assert rc == 0
    assert json.loads((out / "results.json").read_text())["dev"]["student"]["accuracy"] >= 0.0


def test_held_out_masked_lm_scoring_is_refused_before_any_work(encoder, tmp_path, capsys):
    rc = main(["general-distill", "--teacher", str(encoder["teacher"]), "--corpus", str(encoder["corpus"]),
               "--recipe", "general_minilm", "--eval-corpus", str(encoder["corpus"]),
               "--output", str(tmp_path / "out")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "--eval-corpus" in err and "no masked-LM" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("family", ["roberta", "distilbert"])
def test_masked_lm_teachers_of_other_families_are_read_as_encoders(family, tmp_path):
    from general_fixtures import save_tiny_distilbert_mlm, save_tiny_roberta_mlm
    from transformers import RobertaModel

    save = save_tiny_roberta_mlm if family == "roberta" else save_tiny_distilbert_mlm
    teacher = save(tmp_path / "teacher")
    corpus = prepare(write_text(tmp_path / "train.txt", 30, 1), str(teacher), tmp_path / "corpus")
    recipe = _recipe({"teacher": teacher, "corpus": corpus}, tmp_path / "run", train={"max_steps": 2})
    result = recipe.run()
    expected = RobertaModel if family == "roberta" else DistilBertModel
    assert type(recipe.teacher) is expected and type(recipe.student) is expected  # no masked-LM head
    losses = [row["loss"] for row in recipe.loop.history if "loss" in row]
    assert len(losses) == 2 and all(v > 0 and torch.isfinite(torch.tensor(v)) for v in losses)
    assert type(AutoModel.from_pretrained(result["student_dir"])) is expected
