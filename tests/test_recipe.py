"""YAML recipes: loading, validation errors, overrides, and every shipped recipe on tiny models."""

import math

import pytest
import torch
import yaml
from transformers import (BertConfig, BertForSequenceClassification, BertForTokenClassification,
                          DistilBertConfig, DistilBertForSequenceClassification)

from bertdistill.distill.features import prepare_model
from bertdistill.distill import Distiller, RecipeError, list_recipes, load_recipe, parse_recipe
from bertdistill.distill.recipe import TRAINING_DEFAULTS
from bertdistill.students.layers import select_layers

MINE = ["distilbert", "kd", "kd_hidden_mse", "ner_kd", "pkd_last", "pkd_skip", "tinybert_task"]
VOCAB = 60


def bert_config(layers, hidden, labels=3):
    return BertConfig(vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=layers,
                      num_attention_heads=4, intermediate_size=2 * hidden,
                      max_position_embeddings=32, num_labels=labels, attn_implementation="eager")


def student_for(recipe, hidden, token):
    torch.manual_seed(11)
    if recipe.student["arch"] == "distilbert":
        cfg = DistilBertConfig(vocab_size=VOCAB, dim=hidden, n_layers=2, n_heads=4,
                               hidden_dim=2 * hidden, max_position_embeddings=32, num_labels=3,
                               attn_implementation="eager")
        return DistilBertForSequenceClassification(cfg)
    cls = BertForTokenClassification if token else BertForSequenceClassification
    return cls(bert_config(2, hidden))


@pytest.fixture(scope="module")
def data():
    torch.manual_seed(0)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    ids = torch.randint(1, VOCAB, (2, 5)) * mask
    seq_labels = torch.tensor([2, 0])
    tok_labels = torch.tensor([[-100, 1, 2, -100, 0], [-100, 2, -100, -100, -100]])
    return ids, mask, seq_labels, tok_labels


@pytest.fixture(scope="module")
def teachers():
    torch.manual_seed(10)
    return {False: BertForSequenceClassification(bert_config(4, 32)).eval(),
            True: BertForTokenClassification(bert_config(4, 32)).eval()}


def write(tmp_path, text, name="exp.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


# ----------------------------------------------------------------------------- shipped recipes


def test_shipped_recipes_are_listed():
    assert set(MINE) <= set(list_recipes())


@pytest.mark.parametrize("name", MINE)
def test_shipped_recipe_builds_and_trains(name, data, teachers):
    recipe = load_recipe(name)
    assert recipe.name == name and recipe.description and recipe.source.endswith(f"{name}.yaml")
    token = name == "ner_kd"
    teacher = teachers[token]
    ids, mask, seq_labels, tok_labels = data
    batch = {"input_ids": ids, "attention_mask": mask,
             "labels": tok_labels if token else seq_labels}
    kept = select_layers(recipe.student["layers"], 4)  # what the student builder keeps
    assert len(kept) == 2
    widths = [32, 16] if name == "tinybert_task" else [32]
    for hidden in widths:
        student = student_for(recipe, hidden, token)
        distiller = Distiller(recipe.terms, student_config=student.config,
                              teacher_config=teacher.config, kept=kept,
                              task_kind="token_classification" if token else "classification")
        inputs = {"input_ids": ids, "attention_mask": mask}
        prepare_model(teacher, distiller.teacher_needs)
        prepare_model(student, distiller.student_needs)
        with torch.no_grad():
            t_out = teacher(**inputs, **distiller.teacher_needs.forward_kwargs())
        s_out = student(**inputs, **distiller.student_needs.forward_kwargs())
        total, parts = distiller.compute(s_out, t_out, batch)
        assert torch.isfinite(total) and float(total.detach()) > 0
        assert set(parts) == {t.name for t in recipe.terms if t.weight}
        assert all(math.isfinite(v) for v in parts.values())
        total.backward()
        assert any(p.grad is not None and float(p.grad.abs().sum()) > 0
                   for p in student.parameters())
        if hidden != 32:
            assert len(distiller.connectors) > 0
        for key, p in distiller.connectors.named_parameters():
            assert p.grad is not None and float(p.grad.abs().sum()) > 0, key


def test_shipped_recipe_contents():
    pkd_skip, pkd_last = load_recipe("pkd_skip"), load_recipe("pkd_last")
    assert [t.layers for t in pkd_skip.terms if t.loss == "pkd_cls"] == ["skip"]
    assert [t.layers for t in pkd_last.terms if t.loss == "pkd_cls"] == ["last_k"]
    assert 100 <= pkd_skip.terms[2].weight <= 500
    for pkd in (pkd_skip, pkd_last):  # the authors' a = 0.7, b = 100, T = 5 on mean reductions
        w = {t.loss: (t.weight, t.temperature, t.params) for t in pkd.terms}
        assert w == {"kd_kl": (0.7, 5.0, {"reduction": "mean"}), "hard": (0.3, 1.0, {}),
                     "pkd_cls": (100.0, 1.0, {"reduction": "mean"})}
    general = load_recipe("general_distilbert")  # DistilBERT's triple loss with the paper's weights
    g = {t.loss: t for t in general.terms}
    assert (g["mlm_kd"].weight, g["mlm_kd"].temperature, g["mlm_kd"].params) == (5.0, 2.0, {"positions": "real"})
    assert (g["mlm_ce"].weight, g["cosine"].weight, g["cosine"].layers, g["logits_mse"].weight) == (2.0, 1.0, "last", 0.0)
    assert general.student == {"arch": "distilbert", "layers": "skip"}
    assert pkd_skip.student["layers"] == pkd_last.student["layers"] == "first"
    distil = load_recipe("distilbert")
    assert distil.student == {"arch": "distilbert", "layers": "every_other"}
    assert {t.loss: t.temperature for t in distil.terms}["kd_kl"] == 2.0
    tiny = load_recipe("tinybert_task")
    assert {t.loss for t in tiny.terms} == {"embedding_mse", "attention_mse", "hidden_mse", "soft_ce"}
    assert all(t.layers == "uniform" for t in tiny.terms if t.student in ("attention_scores", "hidden"))
    kdh = load_recipe("kd_hidden_mse.yaml")
    assert [(t.loss, t.layers) for t in kdh.terms] == [("kd_kl", None), ("hidden_mse", "copied")]
    assert load_recipe("ner_kd").terms[0].params == {"positions": "labelled"}


def test_projection_free_recipe_on_a_narrow_student_names_the_term():
    recipe = load_recipe("kd_hidden_mse")
    with pytest.raises(ValueError, match="'hidden_mse'.*16.*32.*projection"):
        Distiller(recipe.terms, student_config=bert_config(2, 16), teacher_config=bert_config(4, 32),
                  kept=[1, 3])


# ----------------------------------------------------------------------------- loading


def test_load_from_path_defaults_and_training(tmp_path):
    path = write(tmp_path, """
terms:
  - loss: kd_kl
  - loss: hidden_mse
    layers: [[1, 2], [2, 4]]
  - {loss: soft_ce, temperature: 3}
training:
  lr: 5e-5
  temperature: 4
  epochs: 0.5
  max_grad_norm: null
  mixed_precision: bf16
""")
    r = load_recipe(path)
    assert r.name == "exp" and r.source == str(path)
    assert r.student == {"arch": "same", "layers": "every_other"}
    assert r.training["lr"] == 5e-5 and r.training["epochs"] == 0.5
    assert r.training["max_grad_norm"] is None and r.training["mixed_precision"] == "bf16"
    assert r.training["batch_size"] == TRAINING_DEFAULTS["batch_size"]
    kd, hid, soft = r.terms
    assert kd.temperature == 4.0  # from training.temperature
    assert soft.temperature == 3  # its own
    assert hid.student == "hidden" and hid.layers == [(1, 2), (2, 4)] and hid.temperature == 1.0
    again = parse_recipe(yaml.safe_load(yaml.safe_dump(r.to_dict())), "roundtrip")
    assert again.terms == r.terms and again.training == r.training and again.student == r.student


@pytest.mark.parametrize("text, fragments", [
    ("terms:\n  - loss: kd_kl\n  - loss: hidden_mse\n    layer: last\n",
     ["exp.yaml", "terms[1]", "hidden_mse", "unknown key(s) layer", "allowed keys", "layers",
      "projection"]),
    ("terms:\n  - loss: kd_kl\n  - {loss: hiden_mse, name: hid}\n",
     ["exp.yaml", "terms[1] (hid)", "unknown loss 'hiden_mse'", "hidden_mse"]),
    ("terms:\n  - weight: 1\n", ["exp.yaml", "terms[0]", "missing 'loss'"]),
    ("terms:\n  - {loss: hidden_mse, layers: middle}\n",
     ["terms[0] (hidden_mse)", "unknown layers spec 'middle'", "uniform"]),
    ("terms:\n  - {loss: hidden_mse, temperature: 2}\n", ["terms[0]", "takes no temperature"]),
    ("terms:\n  - {loss: kd_kl, projection: 'yes'}\n", ["terms[0]", "projection"]),
    ("terms:\n  - {loss: token_kd, params: {positions: all, mode: x}}\n",
     ["terms[0]", "unknown parameter(s) mode", "positions"]),
    ("terms:\n  - {loss: pkd_cls, params: {reduction: avg}}\n",
     ["exp.yaml", "terms[0] (pkd_cls)", "reduction must be 'sum' or 'mean'", "'avg'"]),
    ("terms:\n  - {loss: kd_kl, name: a}\n  - {loss: hard, name: a}\n", ["exp.yaml", "'a'"]),
    ("terms:\n  - {loss: kd_kl, weight: 0}\n", ["exp.yaml", "weight 0"]),
    ("terms: []\n", ["exp.yaml", "non-empty list"]),
    ("terms:\n  - {loss: kd_kl}\nstudnet: {arch: same}\n", ["exp.yaml", "studnet", "allowed"]),
    ("terms:\n  - {loss: kd_kl}\nstudent: {arch: lstm}\n", ["exp.yaml", "student.arch"]),
    ("terms:\n  - {loss: kd_kl}\nstudent: {layers: [1, 1]}\n", ["exp.yaml", "student.layers"]),
    ("terms:\n  - {loss: kd_kl}\nstudent: {layers: middle}\n", ["student.layers", "first"]),
    ("terms:\n  - {loss: kd_kl}\nstudent: {depth: 3}\n", ["exp.yaml", "unknown student key"]),
    ("terms:\n  - {loss: kd_kl}\ntraining: {epoch: 3}\n",
     ["exp.yaml", "unknown training key 'epoch'", "epochs"]),
    ("terms:\n  - {loss: kd_kl}\ntraining: {lr: fast}\n", ["exp.yaml", "training.lr", "number"]),
    ("terms:\n  - {loss: kd_kl}\ntraining: {batch_size: 0}\n", ["training.batch_size", ">= 1"]),
    ("terms:\n  - {loss: kd_kl}\ntraining: {warmup_ratio: 2}\n", ["training.warmup_ratio"]),
    ("terms:\n  - {loss: kd_kl}\ntraining: {epochs: 0}\n", ["training.epochs", "> 0"]),
    ("terms:\n  - {loss: kd_kl}\ntraining: {grad_accum: 1.5}\n", ["training.grad_accum", "integer"]),
    ("terms:\n  - {loss: kd_kl}\ntraining: {mixed_precision: fp8}\n",
     ["training.mixed_precision", "bf16"]),
    ("terms:\n  - {loss: kd_kl}\ntraining: {group_by_length: 1}\n", ["training.group_by_length"]),
    ("terms:\n  - {loss: kd_kl\n", ["exp.yaml", "not valid YAML"]),
    ("- just a list\n", ["exp.yaml", "mapping"]),
])
def test_recipe_errors_name_the_file_and_term(tmp_path, text, fragments):
    path = write(tmp_path, text)
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    for fragment in fragments:
        assert fragment in str(err.value), (fragment, str(err.value))


def test_unknown_recipe_lists_shipped():
    with pytest.raises(RecipeError, match="no shipped recipe.*distilbert.*tinybert_task"):
        load_recipe("no_such_recipe")
    with pytest.raises(RecipeError, match="no recipe file"):
        load_recipe("/nonexistent/dir/kd.yaml")


# ----------------------------------------------------------------------------- overrides


def test_with_overrides():
    base = load_recipe("tinybert_task")
    r = base.with_overrides(temperature=3.0, weights={"soft_ce": 0, "hidden_mse": 2.5},
                            lr=1e-4, epochs=None, batch_size=8)
    by_name = {t.name: t for t in r.terms}
    assert by_name["soft_ce"].temperature == 3.0 and by_name["soft_ce"].weight == 0
    assert by_name["hidden_mse"].temperature == 1.0 and by_name["hidden_mse"].weight == 2.5
    assert r.training["lr"] == 1e-4 and r.training["batch_size"] == 8
    assert r.training["epochs"] == base.training["epochs"] and r.training["temperature"] == 3.0
    assert r.overrides == {"temperature": 3.0, "weights": {"soft_ce": 0, "hidden_mse": 2.5},
                           "lr": 1e-4, "batch_size": 8}
    # the original is untouched
    assert {t.name: t.weight for t in base.terms}["soft_ce"] == 1.0 and base.overrides == {}
    # stage 1 of TinyBERT: the weight-0 prediction term is not computed
    d = Distiller(r.terms, student_config=bert_config(2, 16), teacher_config=bert_config(4, 32))
    assert "soft_ce" not in {t.name for t in d.terms} and "logits" not in d.teacher_keys


def test_with_overrides_errors():
    r = load_recipe("kd")
    with pytest.raises(RecipeError, match="no term named kd.*terms: kd_kl, hard"):
        r.with_overrides(weights={"kd": 1.0})
    with pytest.raises(RecipeError, match="every term at 0"):
        r.with_overrides(weights={"kd_kl": 0, "hard": 0})
    with pytest.raises(RecipeError, match="'hard'.*>= 0"):
        r.with_overrides(weights={"hard": -1})
    with pytest.raises(RecipeError, match="temperature"):
        r.with_overrides(temperature=0)
    with pytest.raises(RecipeError, match="unknown training key 'epcohs'"):
        r.with_overrides(epcohs=3)
