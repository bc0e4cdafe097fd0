"""The teacher cache is reused only when nothing changed: the teacher's weights (even when
rewritten in place under the same path) and the training data each invalidate it. Teacher
forward passes are counted, in a real cache folder."""

from __future__ import annotations

import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import BertForSequenceClassification

from bertdistill.pipelines.distill import DistillConfig, DistillRecipe


@pytest.fixture()
def forwards(monkeypatch):
    calls = {"n": 0}
    original = BertForSequenceClassification.forward

    def counting(self, *args, **kwargs):
        calls["n"] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(BertForSequenceClassification, "forward", counting)
    return calls


def _setup(teacher, data, cache, out) -> DistillRecipe:
    recipe = DistillRecipe(DistillConfig(teacher=str(teacher), task="tsv", data=str(data), output=str(out),
                                         recipe="kd", cache_dir=str(cache)))
    recipe.setup()
    return recipe


def test_cache_reused_unchanged_and_rebuilt_when_teacher_or_data_change(tiny_teacher, toy_task_dir, tmp_path,
                                                                        forwards):
    teacher = shutil.copytree(tiny_teacher, tmp_path / "teacher")
    cache = tmp_path / "cache"

    first = _setup(teacher, toy_task_dir, cache, tmp_path / "a")
    assert forwards["n"] > 0 and first.cache is not None
    logits_first = first.cache.example("logits", 0).clone()

    forwards["n"] = 0
    again = _setup(teacher, toy_task_dir, cache, tmp_path / "b")
    assert forwards["n"] == 0, "an unchanged teacher and data set must not run the teacher"
    assert again.cache.path == first.cache.path
    assert torch.equal(again.cache.example("logits", 0), logits_first)

    # the teacher is fine-tuned further and saved under the SAME path
    weights = load_file(str(teacher / "model.safetensors"))
    name = next(k for k in weights if k.startswith("classifier.weight"))
    weights[name] = weights[name] + 0.5
    save_file(weights, str(teacher / "model.safetensors"), metadata={"format": "pt"})
    forwards["n"] = 0
    changed = _setup(teacher, toy_task_dir, cache, tmp_path / "c")
    assert forwards["n"] > 0 and changed.cache.path != first.cache.path
    assert not torch.equal(changed.cache.example("logits", 0), logits_first)
    batch = changed.collate(changed.train_features[:1])
    with torch.no_grad():
        live = changed.teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[0]
    torch.testing.assert_close(changed.cache.example("logits", 0).float(), live, atol=1e-2, rtol=1e-2)

    # one training sentence changes
    data = shutil.copytree(toy_task_dir, tmp_path / "data")
    lines = (data / "train.tsv").read_text().splitlines()
    lines[1] = "great fun film\t1"
    (data / "train.tsv").write_text("\n".join(lines) + "\n")
    forwards["n"] = 0
    other_data = _setup(teacher, data, cache, tmp_path / "d")
    assert forwards["n"] > 0 and other_data.cache.path not in (first.cache.path, changed.cache.path)
    assert len([p for p in cache.iterdir() if not p.name.startswith(".")]) == 3
