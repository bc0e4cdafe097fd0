"""The cache build writes each example's teacher features, trimmed to its real tokens, in
example order: what the teacher gives for that example alone. Per-token, per-example and
attention-map keys; sequence and token classification; the teacher's attention kernel
chosen for the build (``--cache-attention``)."""

from __future__ import annotations

import random

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, BertForTokenClassification

from bertdistill.distill.cache import TeacherCache, attention_kernel
from bertdistill.distill.features import extract, prepare_model, needs


def _tiny(cls, attn="eager"):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=40, num_labels=3,
                        attn_implementation=attn)
    return cls(config).eval()


def _features(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        length = rng.randint(1, 14)
        out.append({"input_ids": [2] + [rng.randint(5, 59) for _ in range(length)] + [3]})
    return out


def _alone(teacher, feature: dict, keys: list[str]) -> dict[str, torch.Tensor]:
    """The teacher's features for one example run without padding."""
    ids = torch.tensor([feature["input_ids"]])
    with torch.inference_mode():
        out = teacher(input_ids=ids, attention_mask=torch.ones_like(ids), output_hidden_states=True,
                      output_attentions=needs(keys).attentions)
    return {k: v[0] for k, v in extract(out, keys).items()}


@pytest.mark.parametrize("cls,keys", [
    (BertForSequenceClassification, ["embeddings", "hidden:1", "logits", "attention:0", "attention_scores:1"]),
    (BertForTokenClassification, ["logits", "hidden:2"]),
])
def test_each_example_holds_what_the_teacher_gives_it_alone(cls, keys):
    teacher = prepare_model(_tiny(cls), needs(keys))
    features = _features(37)
    # a small token budget: many batches, each of several lengths padded to its longest
    tensors = TeacherCache._compute(teacher, features, keys, 48, torch.float32, 0)
    cache = TeacherCache(tensors, keys)
    assert len(cache) == len(features)
    for i in (0, 5, 17, 36):
        want = _alone(teacher, features[i], keys)
        n = len(features[i]["input_ids"])
        for key in keys:
            got = cache.example(key, i)
            expected = want[key]
            if key.startswith("attention"):
                assert got.shape == (2, n, n)
            elif key == "logits" and cls is BertForSequenceClassification:
                assert got.shape == (3,)
            else:
                assert got.shape[0] == n
            assert torch.allclose(got, expected, atol=1e-5), (key, i)
    # offsets run through the flat storage without gaps
    for key in keys:
        offsets = tensors[f"{key}.offsets"]
        assert offsets[0] == 0 and offsets[-1] == tensors[f"{key}.data"].numel()
        assert bool((offsets[1:] >= offsets[:-1]).all())


def test_empty_transfer_set_is_refused():
    with pytest.raises(ValueError, match="at least one example"):
        TeacherCache._compute(_tiny(BertForSequenceClassification), [], ["logits"], 64, torch.float16, 0)


def test_cache_attention_kernel_is_used_for_the_build_and_set_back(tmp_path):
    teacher = _tiny(BertForSequenceClassification, attn="sdpa")
    keys = ["hidden:1", "logits"]
    features = _features(20, seed=1)
    seen = []
    original = teacher.forward

    def spy(*args, **kwargs):
        seen.append(teacher.config._attn_implementation)
        return original(*args, **kwargs)

    teacher.forward = spy
    own = TeacherCache.load_or_build(teacher, features, keys, cache_dir=tmp_path, dtype=torch.float32)
    assert set(seen) == {"sdpa"}
    seen.clear()
    eager = TeacherCache.load_or_build(teacher, features, keys, cache_dir=tmp_path, dtype=torch.float32,
                                       attention="eager")
    assert set(seen) == {"eager"}
    assert teacher.config._attn_implementation == "sdpa"  # set back
    assert own.path != eager.path  # another build, another folder
    for key in keys:
        for i in range(len(features)):
            assert torch.allclose(own.example(key, i), eager.example(key, i), atol=1e-5)
    seen.clear()
    again = TeacherCache.load_or_build(teacher, features, keys, cache_dir=tmp_path, dtype=torch.float32,
                                       attention="eager")
    assert again.path == eager.path and seen == []  # reused, no forward


def test_cache_attention_refuses_unknown_kernels_and_sdpa_with_attention_maps(tmp_path):
    teacher = _tiny(BertForSequenceClassification)
    with pytest.raises(ValueError, match="--cache-attention must be one of"):
        TeacherCache.load_or_build(teacher, _features(3), ["logits"], cache_dir=tmp_path, attention="flash")
    with pytest.raises(ValueError, match="attention maps"):
        TeacherCache.load_or_build(teacher, _features(3), ["attention:0"], cache_dir=tmp_path, attention="sdpa")
    # maps are recorded with the recorder's own kernel: "eager" leaves the model as it is
    recorded = prepare_model(_tiny(BertForSequenceClassification), needs(["attention:0"]))
    kernel = recorded.config._attn_implementation
    with attention_kernel(recorded, "eager", ["attention:0"]):
        assert recorded.config._attn_implementation == kernel


def test_sdpa_build_with_cached_attention_maps_is_refused_before_any_weights_load(tiny_teacher, toy_task_dir,
                                                                                   tmp_path, monkeypatch):
    from bertdistill import api
    from bertdistill.pipelines import distill as distill_pipeline

    def no_weights(*a, **k):
        raise AssertionError("model weights were loaded before the options were checked")

    monkeypatch.setattr(distill_pipeline, "load_task_model", no_weights)
    with pytest.raises(ValueError, match="--cache-attention sdpa: the cached keys include attention maps"):
        api.distill(str(tiny_teacher), "tsv", str(tmp_path / "o"), str(toy_task_dir), recipe="tinybert_task",
                    cache_attention="sdpa", cache_dir=str(tmp_path / "cache"))
    assert not (tmp_path / "cache").exists()
