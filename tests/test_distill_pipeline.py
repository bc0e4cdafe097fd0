"""Task distillation end to end on tiny models: the student learns, the cache is reused,
bad input is refused before training starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification

from bertdistill import api
from bertdistill.pipelines.distill import DistillConfig, DistillRecipe
from bertdistill.training.engine import TrainConfig


def _distill(teacher, task_dir, out, **kw):
    train = kw.pop("train", {"epochs": 6, "lr": 1e-3, "batch_size": 16, "seed": 2})
    return api.distill(str(teacher), "tsv", str(out), str(task_dir), cache_dir=str(out.parent / "cache"),
                       train=train, **kw)


def test_distilbert_student_learns_and_reloads_with_plain_transformers(tiny_teacher, toy_task_dir, tmp_path):
    out = tmp_path / "student"
    result = _distill(tiny_teacher, toy_task_dir, out, recipe="distilbert")
    assert result["student"]["arch"] == "distilbert" and result["student"]["kept_layers"] == [0]
    assert result["dev"]["student"]["accuracy"] > 0.8, result["dev"]
    rows = [json.loads(l) for l in (out / "log.jsonl").read_text().splitlines() if '"loss"' in l]
    assert rows[-1]["loss"] < 0.7 * rows[0]["loss"]
    assert set(rows[0]["parts"]) >= {"kd_kl", "hard", "cosine"}
    model = AutoModelForSequenceClassification.from_pretrained(out / "student")
    assert model.config.model_type == "distilbert" and model.config.n_layers == 1
    assert not any("token_type" in n or "pooler" in n for n, _ in model.named_parameters())


def test_teacher_cache_is_built_once_and_reused(tiny_teacher, toy_task_dir, tmp_path):
    first = _distill(tiny_teacher, toy_task_dir, tmp_path / "a", recipe="kd_hidden_mse",
                     train={"max_steps": 3, "batch_size": 16})
    second = _distill(tiny_teacher, toy_task_dir, tmp_path / "b", recipe="kd_hidden_mse",
                      train={"max_steps": 3, "batch_size": 16})
    assert first["teacher_cache"] and first["teacher_cache"] == second["teacher_cache"]
    assert len(list((tmp_path / "cache").iterdir())) == 1


def test_cached_teacher_features_equal_live_ones(tiny_teacher, toy_task_dir, tmp_path):
    cfg = dict(teacher=str(tiny_teacher), task="tsv", data=str(toy_task_dir), recipe="kd_hidden_mse",
               cache_dir=str(tmp_path / "cache"))
    cached = DistillRecipe(DistillConfig(output=str(tmp_path / "c"), **cfg))
    cached.setup()
    live = DistillRecipe(DistillConfig(output=str(tmp_path / "l"), cache_teacher=False, **cfg))
    live.setup()
    assert cached.cache is not None and live.cache is None
    batch = cached.collate(cached.train_features[:8])
    a, b = cached.teacher_features(batch), live.teacher_features(batch)
    mask = batch["attention_mask"].bool()
    for key in a:
        x, y = (a[key][mask], b[key][mask]) if a[key].ndim == 3 else (a[key], b[key])
        torch.testing.assert_close(x, y, atol=2e-2, rtol=1e-2, msg=key)  # stored as fp16


def test_unknown_loss_is_refused_before_training(tiny_teacher, toy_task_dir, tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(yaml.safe_dump({"name": "bad", "description": "x", "student": {"arch": "same"},
                                      "terms": [{"loss": "kd_kl"}, {"loss": "telepathy", "name": "mind"}]}))
    with pytest.raises(ValueError, match="telepathy"):
        _distill(tiny_teacher, toy_task_dir, tmp_path / "s", recipe=str(recipe))
    assert not (tmp_path / "s" / "checkpoints").exists()


def test_layer_out_of_range_is_refused(tiny_teacher, toy_task_dir, tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(yaml.safe_dump({"name": "bad", "description": "x", "student": {"arch": "same"},
                                      "terms": [{"loss": "hidden_mse", "student": "hidden", "teacher": "hidden",
                                                 "layers": [[1, 9]], "name": "deep"}]}))
    with pytest.raises(ValueError, match="deep"):
        _distill(tiny_teacher, toy_task_dir, tmp_path / "s", recipe=str(recipe))


def test_teacher_with_wrong_label_count_is_refused(tiny_teacher, tmp_path):
    folder = tmp_path / "three"
    folder.mkdir()
    rows = ["sentence\tlabel"] + [f"good movie {i}\t{i % 3}" for i in range(30)]
    for split in ("train", "dev"):
        (folder / f"{split}.tsv").write_text("\n".join(rows) + "\n")
    with pytest.raises(ValueError, match=r"2.*3|3.*2"):
        _distill(tiny_teacher, folder, tmp_path / "s", recipe="kd")


def test_student_with_other_vocabulary_is_refused(tiny_teacher, toy_task_dir, tmp_path):
    from tiny import save_tiny_bert

    other = save_tiny_bert(tmp_path / "other", kind="sequence")
    tok_file = other / "tokenizer.json"
    data = json.loads(tok_file.read_text())
    vocab = data["model"]["vocab"]
    first, second = list(vocab)[10:12]
    vocab[first], vocab[second] = vocab[second], vocab[first]  # same tokens, other ids
    tok_file.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="tokenizer.*differ"):
        _distill(tiny_teacher, toy_task_dir, tmp_path / "s", recipe="kd", student=str(other))


def test_random_student_of_another_width_learns_through_projection(tiny_teacher, toy_task_dir, tmp_path):
    recipe = tmp_path / "proj.yaml"
    recipe.write_text(yaml.safe_dump({"name": "proj", "description": "x", "student": {"arch": "same"},
                                      "terms": [{"loss": "kd_kl", "temperature": 2.0, "weight": 0.5},
                                                {"loss": "hard", "weight": 0.5},
                                                {"loss": "hidden_mse", "layers": "uniform", "projection": True,
                                                 "weight": 0.1}]}))
    out = tmp_path / "s"
    _distill(tiny_teacher, toy_task_dir, out, recipe=str(recipe),
             train={"epochs": 3, "lr": 3e-3, "batch_size": 16, "seed": 2},
             student_config={"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
                             "intermediate_size": 32, "max_position_embeddings": 128})
    rows = [json.loads(l) for l in (out / "log.jsonl").read_text().splitlines() if '"loss"' in l]
    assert rows[-1]["parts"]["hidden_mse"] < 0.5 * rows[0]["parts"]["hidden_mse"], rows
    assert rows[-1]["loss"] < rows[0]["loss"]
    ckpt = load_file(str(out / "checkpoints" / (out / "checkpoints" / "latest").read_text() / "model.safetensors"))
    assert any(k.startswith("distiller.connectors") for k in ckpt)
    assert AutoModelForSequenceClassification.from_pretrained(out / "student").config.hidden_size == 16


def test_bf16_mixed_precision_on_cpu_runs_with_teacher_cache(tiny_teacher, toy_task_dir, tmp_path):
    out = tmp_path / "bf16"
    result = _distill(tiny_teacher, toy_task_dir, out, recipe="kd_hidden_mse",
                      train={"max_steps": 4, "batch_size": 16, "mixed_precision": "bf16"})
    assert result["train"]["mixed_precision"] == "bf16"
    rows = [json.loads(l) for l in (out / "log.jsonl").read_text().splitlines() if '"loss"' in l]
    assert rows and all(r["loss"] == r["loss"] and r["loss"] < float("inf") for r in rows)


def test_token_level_distillation_runs_with_cache_on_conll(shared_data, tmp_path):
    from tiny import save_tiny_bert

    teacher = save_tiny_bert(tmp_path / "ner_teacher", kind="token", num_labels=9)
    result = api.distill(str(teacher), "conll2003", str(tmp_path / "s"), str(shared_data / "conll2003" / "iob2"),
                         recipe="ner_kd", cache_dir=str(tmp_path / "cache"), max_train_examples=64,
                         max_eval_examples=32, test_split=None, train={"max_steps": 3, "batch_size": 16})
    assert result["teacher_cache"]
    assert {"entity_f1", "per_entity", "token_accuracy"} <= set(result["dev"]["student"])
