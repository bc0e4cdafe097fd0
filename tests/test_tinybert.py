"""TinyBERT as in the paper: attention-score MSE without padding, shape presets, shared W_h,
layer mappings, two task stages and the layer-wise strategies; bad input refused early."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
import yaml

from bertdistill import api
from bertdistill.distill import Distiller, Term
from bertdistill.distill.losses import LOSSES
from bertdistill.distill.recipe import RecipeError, load_recipe, parse_recipe
from bertdistill.distill.stages import restrict_to_layer, strategy_stages
from bertdistill.distill.terms import check_term, resolve_layers
from bertdistill.pipelines.distill import DistillConfig
from bertdistill.pipelines.stages import preflight
from bertdistill.students import student_from_config
from bertdistill.students.from_config import shape_sizes

NARROW = {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
          "intermediate_size": 32, "max_position_embeddings": 128}


def cfg(layers=4, width=32, heads=2, labels=2):
    return SimpleNamespace(num_hidden_layers=layers, hidden_size=width, num_attention_heads=heads,
                           num_labels=labels)


# ----------------------------------------------------------------------------- the loss


def test_attention_score_mse_leaves_padding_out_of_the_mean():
    # B=2, H=2, L=2. Example 0 has 2 real tokens (4 pairs), example 1 has 1 (1 pair).
    s = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[5.0, 5.0], [5.0, 5.0]]],
                      [[[2.0, -1e4], [-1e4, -1e4]], [[1.0, 8.0], [8.0, 8.0]]]])
    t = torch.tensor([[[[1.0, 1.0], [1.0, 1.0]], [[5.0, 5.0], [5.0, 5.0]]],
                      [[[0.0, 5.0], [7.0, 9.0]], [[0.0, -3.0], [-3.0, -3.0]]]])
    mask = torch.tensor([[1, 1], [1, 0]])
    # example 0: head 0: 0+1+4+9 = 14, head 1: 0; example 1 (only (0,0)): head 0: 4, head 1: 1
    # mean over heads and real pairs: 19 / (2 heads × (4 + 1) pairs) = 1.9
    value = LOSSES["attention_mse"]()(s, t, mask)
    assert value.item() == pytest.approx(1.9)
    # the same maps with the padded entries changed give the same loss
    s2 = s.clone()
    s2[1, :, 1, :] = 123.0
    s2[1, :, :, 1] = -77.0
    assert LOSSES["attention_mse"]()(s2, t, mask).item() == pytest.approx(1.9)
    # without a mask the padded -1e4 scores count too
    assert LOSSES["attention_mse"]()(s, t).item() > 1e6


def test_attention_mse_defaults_to_scores_and_kl_to_probabilities():
    assert Term(loss="attention_mse").student == "attention_scores"
    assert Term(loss="attention_kl").student == "attention"
    with pytest.raises(ValueError, match="attention_kl.*attention.*not 'attention_scores'"):
        check_term(Term(loss="attention_kl", student="attention_scores", teacher="attention_scores"))


# ----------------------------------------------------------------------------- shapes


def test_shape_presets():
    assert shape_sizes("tinybert4") == {"num_hidden_layers": 4, "hidden_size": 312,
                                        "intermediate_size": 1200, "num_attention_heads": 12}
    assert shape_sizes("3x192") == {"num_hidden_layers": 3, "hidden_size": 192,
                                    "intermediate_size": 768, "num_attention_heads": 12}
    assert shape_sizes({"preset": "tinybert4", "num_hidden_layers": 2})["num_hidden_layers"] == 2
    with pytest.raises(ValueError, match="unknown student shape 'tiny'"):
        shape_sizes("tiny")
    model = student_from_config("3x192", "classification", 2, tokenizer_vocab_size=100)
    c = model.config
    assert (c.num_hidden_layers, c.hidden_size, c.intermediate_size, c.num_attention_heads) == (3, 192, 768, 12)


# ----------------------------------------------------------------------------- mappings


def test_layer_mappings_and_their_index_conventions():
    # hidden space: 0 = embeddings, 1..L layers; attention space: 0..L-1
    assert resolve_layers("uniform", 4, 12) == [(1, 3), (2, 6), (3, 9), (4, 12)]
    assert resolve_layers("top", 4, 12) == [(1, 9), (2, 10), (3, 11), (4, 12)]
    assert resolve_layers("bottom", 4, 12) == [(1, 1), (2, 2), (3, 3), (4, 4)]
    assert resolve_layers("top", 3, 6, feature="attention_scores") == [(0, 3), (1, 4), (2, 5)]
    assert resolve_layers("bottom", 2, 6, feature="attention") == [(0, 0), (1, 1)]
    assert resolve_layers([[1, 3], [2, 6]], 2, 6) == [(1, 3), (2, 6)]
    with pytest.raises(ValueError, match="at least as deep"):
        resolve_layers("top", 6, 4)


def test_shared_projection_is_one_matrix_and_equal_widths_get_none():
    terms = [Term(loss="hidden_mse", layers="uniform", projection="shared", name="h"),
             Term(loss="embedding_mse", projection="auto", name="e")]
    d = Distiller(terms, student_config=cfg(2, 16), teacher_config=cfg(4, 32))
    assert sorted(d.connectors) == ["e", "h"]
    per = Distiller([Term(loss="hidden_mse", layers="uniform", projection=True, name="h")],
                    student_config=cfg(2, 16), teacher_config=cfg(4, 32))
    assert sorted(per.connectors) == ["h[1->2]", "h[2->4]"]
    same = Distiller([Term(loss="hidden_mse", layers="uniform", projection="auto", name="h")],
                     student_config=cfg(2, 32), teacher_config=cfg(4, 32))
    assert len(same.connectors) == 0
    # the shared W_h maps every layer: gradients from both pairs reach the one matrix
    feats_s = {"hidden:1": torch.randn(2, 3, 16), "hidden:2": torch.randn(2, 3, 16)}
    feats_t = {"hidden:2": torch.randn(2, 3, 32), "hidden:4": torch.randn(2, 3, 32)}
    total, _ = d(feats_s | {"embeddings": torch.randn(2, 3, 16)},
                 feats_t | {"embeddings": torch.randn(2, 3, 32)}, {"attention_mask": torch.ones(2, 3)})
    total.backward()
    assert d.connectors["h"].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="projection must be"):
        Distiller([Term(loss="hidden_mse", projection="both", name="h")],
                  student_config=cfg(2, 16), teacher_config=cfg(4, 32))


# ----------------------------------------------------------------------------- bad input


def test_bad_input_is_refused_naming_the_term():
    with pytest.raises(ValueError, match="'att'.*12 attention heads.*2.*head_reduce"):
        Distiller([Term(loss="attention_mse", layers="uniform", name="att")],
                  student_config=cfg(2, 24, heads=12), teacher_config=cfg(4, 32, heads=2))
    with pytest.raises(ValueError, match="'hid'.*out of range.*teacher indices 0..4"):
        Distiller([Term(loss="hidden_mse", layers=[[1, 2], [2, 6]], name="hid")],
                  student_config=cfg(2, 32), teacher_config=cfg(4, 32))
    with pytest.raises(ValueError, match="'att'.*at least as deep"):
        Distiller([Term(loss="attention_mse", layers="top", name="att")],
                  student_config=cfg(6, 32), teacher_config=cfg(4, 32))


def _recipe(**extra):
    data = {"name": "r", "terms": [{"loss": "hidden_mse", "layers": "uniform", "name": "hid"},
                                   {"loss": "attention_mse", "layers": "uniform", "name": "att"},
                                   {"loss": "kd_kl", "temperature": 2.0, "name": "kd"}]}
    data.update(extra)
    return data


def test_stage_list_naming_an_unknown_term_is_refused_at_load():
    with pytest.raises(RecipeError, match=r"stages\[1\] \(pred\): unknown term 'soft_ce'.*hid, att, kd"):
        parse_recipe(_recipe(stages=[{"name": "inter", "terms": ["hid", "att"]},
                                     {"name": "pred", "terms": ["soft_ce"]}]))
    with pytest.raises(RecipeError, match="unknown strategy 'layerwise'"):
        parse_recipe(_recipe(strategy="layerwise"))
    with pytest.raises(RecipeError, match="either stages or strategy"):
        parse_recipe(_recipe(strategy="progressive", stages=[{"terms": ["kd"]}]))
    with pytest.raises(RecipeError, match="stage 'inter'.*training.epochs"):
        parse_recipe(_recipe(stages=[{"name": "inter", "terms": ["hid"], "training": {"epochs": -1}}]))


def test_preflight_refuses_before_loading_weights(tiny_teacher, tmp_path):
    # the tiny teacher has 2 heads and 2 layers; the student shape asks for 4 heads
    config = DistillConfig(teacher=str(tiny_teacher), task="tsv", output=str(tmp_path),
                           recipe="tinybert_task",
                           student_config={"hidden_size": 16, "num_hidden_layers": 2,
                                           "num_attention_heads": 4})
    with pytest.raises(ValueError, match="tinybert_task.yaml.*attention_mse.*4 attention heads"):
        preflight(config, load_recipe("tinybert_task"))
    deep = tmp_path / "deep.yaml"
    deep.write_text(yaml.safe_dump(_recipe(strategy="progressive") | {
        "terms": [{"loss": "hidden_mse", "layers": [[1, 1], [2, 5]], "name": "hid"},
                  {"loss": "kd_kl", "name": "kd"}]}))
    with pytest.raises(ValueError, match="'hid'.*out of range"):
        api.distill(str(tiny_teacher), "tsv", str(tmp_path / "x"), recipe=str(deep))
    assert not (tmp_path / "x").exists()


# ----------------------------------------------------------------------------- strategies


def test_strategies_make_the_documented_stages():
    recipe = parse_recipe(_recipe())
    assert [s.terms for s in strategy_stages("all_at_once", recipe.terms)] == [["hid", "att", "kd"]]
    two = strategy_stages("intermediate_then_prediction", recipe.terms)
    assert [(s.name, s.terms) for s in two] == [("intermediate", ["hid", "att"]), ("prediction", ["kd"])]
    assert [s.transfer for s in two] == [True, True]  # TinyBERT: both stages on the augmented set
    prog = strategy_stages("progressive", recipe.terms, 2, prediction={"epochs": 2})
    assert [(s.name, s.layer) for s in prog] == [("layer1", 1), ("layer2", 2), ("prediction", None)]
    assert prog[-1].training == {"epochs": 2}
    # layer 2 keeps only the pairs of student layer 2 (hidden index 2, attention index 1)
    mine = restrict_to_layer(recipe.terms[:2], 2, 2, 4)
    assert [t.layers for t in mine] == [[(2, 4)], [(1, 3)]]
    with pytest.raises(ValueError, match="needs intermediate terms"):
        strategy_stages("progressive", [t for t in recipe.terms if t.name == "kd"], 2)


# ----------------------------------------------------------------------------- pipelines


def _rows(folder):
    return [json.loads(l) for l in (folder / "log.jsonl").read_text().splitlines() if '"loss"' in l]


def test_two_stage_tinybert_on_a_narrow_student_learns_and_resumes(tiny_teacher, toy_task_dir, tmp_path):
    out = tmp_path / "tb"
    kw = dict(recipe="tinybert_task", student_config=NARROW, cache_dir=str(tmp_path / "cache"),
              train={"epochs": 4, "lr": 3e-3, "batch_size": 16, "seed": 2})
    result = api.distill(str(tiny_teacher), "tsv", str(out), str(toy_task_dir), **kw)
    stages = [s["stage"] for s in result["stages"]]
    assert stages == ["intermediate", "prediction"]
    first, second = out / "01_intermediate", out / "02_prediction"
    rows1, rows2 = _rows(first), _rows(second)
    assert set(rows1[0]["parts"]) == {"embedding_mse", "attention_mse", "hidden_mse"}
    assert set(rows2[0]["parts"]) == {"soft_ce"}
    assert rows1[-1]["parts"]["hidden_mse"] < 0.5 * rows1[0]["parts"]["hidden_mse"]
    assert result["dev"]["student"]["accuracy"] > 0.8, result["dev"]
    # the end-of-run summary of a one-stage run, for the whole staged run (in its top results.json)
    summary = result["summary"]
    assert summary["student_dir"] == str(second / "student") and summary["retention"] == result["dev"]["retention"]
    assert summary["student"]["parameters"] < summary["teacher"]["parameters"] and summary["student"]["latency_ms"] > 0
    assert json.loads((out / "results.json").read_text())["summary"]["retention"] == summary["retention"]
    # stage 2 started from stage 1's final student
    assert [t["loss"] for t in yaml.safe_load((second / "recipe.yaml").read_text())["terms"]] == ["soft_ce"]
    assert result["config"]["student"] == str(first / "final")
    assert (first / "final" / "config.json").exists() and (first / "connectors.safetensors").exists()
    # running again skips both finished stages
    again = api.distill(str(tiny_teacher), "tsv", str(out), str(toy_task_dir), **kw)
    assert [s["seconds"] for s in again["stages"]] == [s["seconds"] for s in result["stages"]]
    assert len(_rows(first)) == len(rows1)


def test_progressive_strategy_freezes_the_layers_below(tiny_teacher, toy_task_dir, tmp_path):
    recipe = tmp_path / "prog.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "prog", "student": {"arch": "same", "shape": NARROW},
        "terms": [{"loss": "hidden_mse", "layers": "uniform", "projection": "shared", "name": "hid"},
                  {"loss": "kd_kl", "temperature": 2.0, "name": "kd"}],
        "strategy": {"name": "progressive", "intermediate": {"max_steps": 3},
                     "prediction": {"max_steps": 3}}}))
    out = tmp_path / "p"
    result = api.distill(str(tiny_teacher), "tsv", str(out), str(toy_task_dir), recipe=str(recipe),
                         cache_dir=str(tmp_path / "cache"), train={"batch_size": 16})
    assert [s["stage"] for s in result["stages"]] == ["layer1", "layer2", "prediction"]
    from safetensors.torch import load_file
    one = load_file(str(out / "01_layer1" / "final" / "model.safetensors"))
    two = load_file(str(out / "02_layer2" / "final" / "model.safetensors"))
    emb = next(k for k in one if "word_embeddings" in k)
    layer0 = next(k for k in one if "encoder.layer.0.attention.self.query.weight" in k)
    layer1 = next(k for k in one if "encoder.layer.1.attention.self.query.weight" in k)
    assert torch.equal(one[emb], two[emb]) and torch.equal(one[layer0], two[layer0])  # frozen
    assert not torch.equal(one[layer1], two[layer1])                                  # trained
    stage2 = yaml.safe_load((out / "02_layer2" / "recipe.yaml").read_text())
    assert stage2["terms"][0]["layers"] == [[2, 2]]


def test_both_tinybert_stages_train_on_the_augmented_transfer_set(tiny_teacher, toy_task_dir, tmp_path):
    from bertdistill.augment import build_transfer_set
    from bertdistill.data import load_task

    assert [s.transfer for s in load_recipe("tinybert_task").stages] == [True, True]
    originals = load_task("tsv", str(toy_task_dir)).split("train")[:40]
    path = tmp_path / "aug.jsonl"
    examples, meta = build_transfer_set(originals, "blank", copies=2, seed=0, output=path, progress=False, p=0.5)
    n = len(examples)
    assert n > 60 and meta["augmented"] == n - 40
    out = tmp_path / "tb_aug"
    result = api.distill(str(tiny_teacher), "tsv", str(out), str(toy_task_dir), recipe="tinybert_task",
                         student_config=NARROW, cache_dir=str(tmp_path / "cache"), transfer_data=str(path),
                         train={"epochs": 1, "batch_size": 16, "seed": 2}, latency_runs=0)
    steps = -(-n // 16)  # one epoch over the transfer set
    for record, folder in zip(result["stages"], ("01_intermediate", "02_prediction")):
        assert record["folder"] == folder and record["transfer"] is True
        assert record["train_examples"] == n and record["steps"] == steps, record
        data = json.loads((out / folder / "run_config.json").read_text())["data"]
        assert (data["train"], data["dev"]) == (n, 100)  # dev: the task's own 100 sentences
    assert yaml.safe_load((out / "02_prediction" / "recipe.yaml").read_text())["augment"] == {
        "file": str(path.resolve())}
    assert result["dev"]["student"]["accuracy"] is not None


def test_a_transfer_set_nothing_reads_is_refused_before_any_model_loads(tmp_path):
    # the teacher folder does not exist: the transfer set is checked before it is read
    with pytest.raises(ValueError, match="transfer_data: .*nope.jsonl not found"):
        api.distill(str(tmp_path / "no_teacher"), "tsv", str(tmp_path / "o"), str(tmp_path),
                    recipe="tinybert_task", transfer_data=str(tmp_path / "nope.jsonl"))
    (tmp_path / "aug.jsonl").write_text('{"text": "a film", "label": 1}\n')
    with pytest.raises(ValueError, match="recipe kd has no stage marked 'transfer: true'.*augment"):
        api.distill(str(tmp_path / "no_teacher"), "tsv", str(tmp_path / "o"), str(tmp_path),
                    recipe="kd", transfer_data=str(tmp_path / "aug.jsonl"))
