"""MobileBERT-style students: presets, the feature-map loss, the repeat mapping, progressive
transfer (frozen or reduced-lr lower layers, resume), ONNX export with parity."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, MobileBertForQuestionAnswering

import bertdistill
from bertdistill import api
from bertdistill.distill import LOSSES, Term
from bertdistill.distill.feature_map import feature_map_loss
from bertdistill.distill.recipe import RecipeError, load_recipe, parse_recipe
from bertdistill.distill.stages import strategy_stages
from bertdistill.distill.terms import check_term, resolve_layers
from bertdistill.students import student_from_config
from bertdistill.students.from_config import shape_sizes
from bertdistill.training.engine import LR_SCALE_ATTR, param_groups

# a 3-layer MobileBERT over the tiny 2-layer teacher (hidden 32): deeper than its teacher
TINY = {"preset": "mobilebert12", "num_hidden_layers": 3, "intra_bottleneck_size": 8,
        "intermediate_size": 16, "num_feedforward_networks": 2, "embedding_size": 8,
        "num_attention_heads": 2, "max_position_embeddings": 64}


def test_preset_builds_the_paper_shaped_config():
    model = student_from_config("mobilebert12", "classification", 2, tokenizer_vocab_size=120,
                                teacher_hidden_size=384)
    c = model.config
    assert type(model).__name__ == "MobileBertForSequenceClassification"
    assert (c.num_hidden_layers, c.hidden_size, c.intra_bottleneck_size, c.true_hidden_size) == (12, 384, 128, 128)
    assert (c.num_attention_heads, c.num_feedforward_networks, c.intermediate_size) == (4, 4, 512)
    assert (c.normalization_type, c.hidden_act, c.embedding_size, c.vocab_size) == ("no_norm", "relu", 128, 120)
    assert c.trigram_input and c.use_bottleneck
    assert shape_sizes("mobilebert12")["model_type"] == "mobilebert"
    # options next to the preset; the QA head by task kind
    qa = student_from_config({**TINY, "normalization_type": "layer_norm", "hidden_act": "gelu"}, "qa", 2,
                             tokenizer_vocab_size=50, teacher_hidden_size=32)
    assert isinstance(qa, MobileBertForQuestionAnswering)
    assert (qa.config.normalization_type, qa.config.hidden_act, qa.config.hidden_size) == ("layer_norm", "gelu", 32)
    tok = student_from_config(TINY, "token_classification", 5, tokenizer_vocab_size=50, teacher_hidden_size=32)
    assert type(tok).__name__ == "MobileBertForTokenClassification"
    with pytest.raises(ValueError, match="intra_bottleneck_size 8 is not divisible by num_attention_heads 3"):
        student_from_config({**TINY, "num_attention_heads": 3}, "classification", 2, teacher_hidden_size=32)
    with pytest.raises(ValueError, match="normalization_type must be one of no_norm, layer_norm"):
        student_from_config({**TINY, "normalization_type": "batch"}, "classification", 2, teacher_hidden_size=32)


def test_feature_map_loss_against_hand_computed_values():
    # one example, two tokens of width 2; the second token is padding
    s = torch.tensor([[[1.0, 3.0], [9.0, -9.0]]])
    t = torch.tensor([[[0.0, 0.0], [1.0, 1.0]]])
    mask = torch.tensor([[1, 0]])
    # token 0: LN(s) = [-1, 1] (mean 2, var 1, eps 1e-5 -> 1/sqrt(1+1e-5)); LN(t) = [0, 0]
    k = 1 / (1 + 1e-5) ** 0.5
    assert feature_map_loss(s, t, mask).item() == pytest.approx(k * k)
    # mean term: (2 - 0)^2 = 4; variance term: |1 - 0| = 1
    assert feature_map_loss(s, t, mask, beta=0.5, gamma=3.0).item() == pytest.approx(k * k + 0.5 * 4 + 3.0 * 1)
    # the padded token counts without the mask: token 1 has LN(s) = [k', -k'], LN(t) = [0, 0]
    assert feature_map_loss(s, t).item() == pytest.approx((k * k + 81 / (81 + 1e-5)) / 2)
    # a layer output and a rescaled, shifted copy are the same feature map after normalisation
    x = torch.randn(2, 4, 6)
    assert feature_map_loss(3 * x + 2, x).item() == pytest.approx(0.0, abs=1e-6)
    assert feature_map_loss(3 * x + 2, x, beta=1.0).item() > 1.0
    assert set(LOSSES["feature_map"].params) == {"beta", "gamma"}
    with pytest.raises(ValueError, match="beta must be a number >= 0"):
        check_term(Term(loss="feature_map", params={"beta": -1}, name="fm"))


def test_repeat_mapping_for_deeper_students():
    # 12 -> 6: each teacher layer teaches two consecutive student layers
    assert resolve_layers("repeat", 12, 6) == [(j, (j + 1) // 2) for j in range(1, 13)]
    # attention index space (0-based): student 0,1,2 -> teacher 0,1,1 for 3 -> 2
    assert resolve_layers("repeat", 3, 2, feature="attention") == [(0, 0), (1, 1), (2, 1)]
    # M divides N: the same pairs as uniform
    assert resolve_layers("repeat", 4, 12) == resolve_layers("uniform", 4, 12)


def test_lower_lr_is_checked_and_reaches_the_layer_stages():
    base = {"name": "m", "terms": [{"loss": "feature_map", "layers": "repeat", "name": "fm"},
                                   {"loss": "kd_kl", "name": "kd"}]}
    recipe = parse_recipe(base | {"strategy": {"name": "progressive", "lower_lr": 0.1}})
    stages = strategy_stages("progressive", recipe.terms, 3, lower_lr=0.1)
    assert [(s.name, s.lower_lr) for s in stages][:3] == [("layer1", 0.1), ("layer2", 0.1), ("layer3", 0.1)]
    with pytest.raises(RecipeError, match=r"strategy.lower_lr must be a number in \[0, 1\]"):
        parse_recipe(base | {"strategy": {"name": "progressive", "lower_lr": 2}})
    with pytest.raises(RecipeError, match="lower_lr only applies to the 'progressive' strategy"):
        parse_recipe(base | {"strategy": {"name": "intermediate_then_prediction", "lower_lr": 0.5}})
    assert load_recipe("mobilebert_task").strategy["name"] == "progressive"


def test_param_groups_scale_the_marked_parameters():
    net = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 3))
    for p in net[0].parameters():
        setattr(p, LR_SCALE_ATTR, 0.25)
    groups = param_groups(net, 0.01, 2e-3)
    scaled = [g for g in groups if "lr" in g]
    assert sorted(g["lr"] for g in scaled) == [5e-4, 5e-4]
    assert {id(p) for g in scaled for p in g["params"]} == {id(p) for p in net[0].parameters()}
    assert {g["weight_decay"] for g in scaled} == {0.0, 0.01}  # bias without decay, weight with


def _recipe(tmp_path, lower_lr=0.0):
    path = tmp_path / f"mb{lower_lr}.yaml"
    shipped = Path(bertdistill.__file__).parent / "recipes" / "mobilebert_task.yaml"
    data = yaml.safe_load(shipped.read_text(encoding="utf-8"))
    data["student"]["shape"] = TINY
    data["strategy"] = {"name": "progressive", "lower_lr": lower_lr, "intermediate": {"max_steps": 3},
                        "prediction": {"max_steps": 3}}
    data["terms"][1]["params"] = {"head_reduce": "none"}  # 2 heads, as the tiny teacher
    path.write_text(yaml.safe_dump(data))
    return path


def _weights(folder):
    return load_file(str(folder / "final" / "model.safetensors"))


def test_progressive_transfer_freezes_lower_layers_and_resumes(tiny_teacher, toy_task_dir, tmp_path):
    out = tmp_path / "p"
    kw = dict(recipe=str(_recipe(tmp_path)), cache_dir=str(tmp_path / "cache"),
              train={"batch_size": 16, "lr": 1e-3}, latency_runs=0)
    result = api.distill(str(tiny_teacher), "tsv", str(out), str(toy_task_dir), **kw)
    assert [s["stage"] for s in result["stages"]] == ["layer1", "layer2", "layer3", "prediction"]
    # student layers 2 and 3 both learn teacher layer 2 (hidden index 2; attention index 1)
    stage3 = yaml.safe_load((out / "03_layer3" / "recipe.yaml").read_text())
    assert [t["layers"] for t in stage3["terms"][:2]] == [[[3, 2]], [[2, 1]]]
    rows = [json.loads(line) for line in (out / "02_layer2" / "log.jsonl").read_text().splitlines() if '"loss"' in line]
    assert set(rows[0]["parts"]) == {"feature_map", "attention_kl"}
    one, two = _weights(out / "01_layer1"), _weights(out / "02_layer2")
    emb = next(k for k in one if "word_embeddings" in k)
    low = next(k for k in one if "encoder.layer.0.attention.self.query.weight" in k)
    mine = next(k for k in one if "encoder.layer.1.attention.self.query.weight" in k)
    assert torch.equal(one[emb], two[emb]) and torch.equal(one[low], two[low])  # frozen in stage 2
    assert not torch.equal(one[mine], two[mine])                                # trained in stage 2
    # the saved student is a plain Hugging Face checkpoint
    student = AutoModelForSequenceClassification.from_pretrained(result["student_dir"])
    assert type(student).__name__ == "MobileBertForSequenceClassification"
    # run again: every finished stage is skipped (same records, nothing more logged)
    logged = (out / "02_layer2" / "log.jsonl").read_text()
    again = api.distill(str(tiny_teacher), "tsv", str(out), str(toy_task_dir), **kw)
    assert [s["seconds"] for s in again["stages"]] == [s["seconds"] for s in result["stages"]]
    assert (out / "02_layer2" / "log.jsonl").read_text() == logged


def test_reduced_lr_variant_trains_lower_layers_slowly(tiny_teacher, toy_task_dir, tmp_path):
    out = tmp_path / "r"
    api.distill(str(tiny_teacher), "tsv", str(out), str(toy_task_dir), recipe=str(_recipe(tmp_path, 0.1)),
                cache_dir=str(tmp_path / "cache"), train={"batch_size": 16, "lr": 1e-3}, latency_runs=0)
    one, two = _weights(out / "01_layer1"), _weights(out / "02_layer2")
    low = next(k for k in one if "encoder.layer.0.attention.self.query.weight" in k)
    mine = next(k for k in one if "encoder.layer.1.attention.self.query.weight" in k)
    moved_low = (two[low] - one[low]).abs().max().item()
    moved_mine = (two[mine] - one[mine]).abs().max().item()
    assert 0 < moved_low < 0.5 * moved_mine  # not frozen, but at 0.1 × lr


def test_mobilebert_student_exports_with_parity(tmp_path):
    from tiny import make_tiny_tokenizer, tiny_task

    from bertdistill.export import export_model
    from bertdistill.models.loading import save_model

    tok = make_tiny_tokenizer(tmp_path / "tok")
    task = tiny_task("classification")
    torch.manual_seed(0)
    model = student_from_config(TINY, task.kind, task.num_labels, tokenizer_vocab_size=len(tok),
                                id2label=task.id2label, teacher_hidden_size=32)
    path = save_model(model, tok, tmp_path / "mb", task=task)
    fp32 = export_model(str(path), "onnx", tmp_path / "fp32")
    assert fp32["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert fp32["parity"]["ok"] and fp32["parity"]["max_abs_diff"] < 1e-4
    int8 = export_model(str(path), "onnx-int8", tmp_path / "int8")
    assert int8["parity"]["ok"]
    assert int8["operators"]["DynamicQuantizeMatMul"] + int8["operators"]["MatMulInteger"] > 0
