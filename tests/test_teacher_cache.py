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


def test_bf16_run_builds_its_own_cache_in_autocast_and_fp32_keeps_its_folder(tiny_teacher, toy_task_dir, tmp_path,
                                                                             monkeypatch):
    """--mixed-precision bf16 computes the cache under bf16 autocast (every teacher forward) into
    another folder; an fp32 cache's folder is the key without a precision."""
    from bertdistill.distill import cache as cache_mod

    cache = tmp_path / "cache"
    fp32 = _setup(tiny_teacher, toy_task_dir, cache, tmp_path / "a")
    recipe = fp32
    # the fp32 folder is the hash without a precision (the key of the default build)
    assert fp32.cache.path.name == cache_mod.fingerprint(recipe.teacher, recipe.train_features,
                                                         recipe.distiller.teacher_keys, torch.float16)
    seen = []
    original = BertForSequenceClassification.forward

    def spy(self, *args, **kwargs):  # the autocast state each teacher forward runs under
        seen.append(torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else torch.float32)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(BertForSequenceClassification, "forward", spy)
    bf16 = DistillRecipe(DistillConfig(teacher=str(tiny_teacher), task="tsv", data=str(toy_task_dir),
                                       output=str(tmp_path / "b"), recipe="kd", cache_dir=str(cache),
                                       train={"mixed_precision": "bf16"}))
    bf16.setup()
    assert seen and all(d == torch.bfloat16 for d in seen), set(seen)
    assert bf16.cache.path != fp32.cache.path
    a, b = fp32.cache.example("logits", 0).float(), bf16.cache.example("logits", 0).float()
    assert not torch.equal(a, b) and torch.allclose(a, b, atol=0.05, rtol=0.05)
    assert '"precision": "bf16"' in (bf16.cache.path / "meta.json").read_text()


def test_unknown_cache_precision_is_refused(tiny_teacher, toy_task_dir, tmp_path):
    from bertdistill.distill.cache import TeacherCache

    recipe = _setup(tiny_teacher, toy_task_dir, tmp_path / "cache", tmp_path / "a")
    with pytest.raises(ValueError, match="--mixed-precision"):
        TeacherCache.load_or_build(recipe.teacher, recipe.train_features, ["logits"], cache_dir=tmp_path / "c2",
                                   precision="int8")


def test_token_budget_batches_bound_padded_size_and_cover_every_example():
    from bertdistill.distill.cache import token_budget_batches

    lengths = sorted([2] * 10 + [5] * 7 + [30] * 3 + [100])
    batches = token_budget_batches(lengths, 24)
    assert batches[0][0] == 0 and batches[-1][1] == len(lengths)
    assert all(a[1] == b[0] for a, b in zip(batches, batches[1:]))  # contiguous, nothing skipped
    for start, end in batches:
        longest = lengths[end - 1]
        assert (end - start) * longest <= 24 or end - start == 1  # a too-long example stands alone
    assert batches[0] == (0, 10)  # ten 2-token phrases share one batch (20 tokens)
    assert (20, 21) in batches  # the 100-token example exceeds the budget: a batch of its own
    with pytest.raises(ValueError, match="tokens_per_batch"):
        token_budget_batches(lengths, 0)


def test_batched_lookup_equals_padding_each_example(tiny_teacher, toy_task_dir, tmp_path):
    """The one-gather lookup of per-token and per-example keys gives exactly what stacking each
    stored example and padding it gives (padding = 0), for a batch padded past its longest."""
    from bertdistill.distill.cache import TeacherCache, _pad

    recipe = _setup(tiny_teacher, toy_task_dir, tmp_path / "cache", tmp_path / "run")
    keys = ["embeddings", "hidden:1", "logits"]
    cache = TeacherCache.load_or_build(recipe.teacher, recipe.train_features, keys,
                                       cache_dir=tmp_path / "cache2")
    assert set(cache._rows) == set(keys)
    indices = [3, 0, 7, 7, 1]
    length = max(len(recipe.train_features[i]["input_ids"]) for i in indices) + 2
    got = cache.lookup(indices, length)
    for key in keys:
        want = _pad(key, [cache.example(key, i).float() for i in indices], length)
        assert got[key].dtype == torch.float32 and torch.equal(got[key], want), key
    assert got["hidden:1"][1, len(recipe.train_features[0]["input_ids"]):].abs().sum() == 0


def test_batched_lookup_of_token_logits_matches_per_example_padding():
    """Token-level logits ([tokens, labels] per example, as NER caches them) take the gather;
    attention maps (padded in two dimensions) keep the per-example path."""
    from bertdistill.distill.cache import TeacherCache, _pad

    stored = {"logits": [torch.randn(n, 5).half() for n in (4, 1, 6)],
              "attention:0": [torch.rand(2, n, n).half() for n in (4, 1, 6)]}
    tensors = {}
    for key, pieces in stored.items():
        offsets = [0]
        for p in pieces:
            offsets.append(offsets[-1] + p.numel())
        tensors[f"{key}.data"] = torch.cat([p.reshape(-1) for p in pieces])
        tensors[f"{key}.offsets"] = torch.tensor(offsets)
        tensors[f"{key}.shapes"] = torch.tensor([list(p.shape) for p in pieces])
    cache = TeacherCache(tensors, list(stored))
    assert set(cache._rows) == {"logits"}
    got = cache.lookup([2, 1, 0], 7)
    for key, pieces in stored.items():
        assert torch.equal(got[key], _pad(key, [pieces[i].float() for i in (2, 1, 0)], 7)), key
