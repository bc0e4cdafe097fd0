"""Q/K/V projections recorded by hooks on BERT, RoBERTa and DistilBERT: the layers asked for
only, the Linear outputs themselves, under any attention kernel."""

from __future__ import annotations

import pytest
import torch
from transformers import (BertConfig, BertModel, DistilBertConfig, DistilBertForMaskedLM, RobertaConfig,
                          RobertaForSequenceClassification)

from bertdistill.distill.features import extract, needs, prepare_model
from bertdistill.distill.qkv import qkv_linears, record_qkv


def _bert():
    torch.manual_seed(0)
    return BertModel(BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                                intermediate_size=32)).eval()


def _distilbert():
    torch.manual_seed(0)
    return DistilBertForMaskedLM(DistilBertConfig(vocab_size=40, dim=12, n_layers=2, n_heads=3,
                                                  hidden_dim=24)).eval()


def _roberta():
    torch.manual_seed(0)
    return RobertaForSequenceClassification(RobertaConfig(vocab_size=40, hidden_size=8, num_hidden_layers=2,
                                                          num_attention_heads=2, intermediate_size=16,
                                                          pad_token_id=1, max_position_embeddings=20)).eval()


def _encoder_layers(model):
    base = getattr(model, "base_model", model)
    return base.transformer.layer if hasattr(base, "transformer") else base.encoder.layer


def _attention(layer):
    return layer.attention.self if hasattr(layer.attention, "self") else layer.attention


@pytest.mark.parametrize("build, width", [(_bert, 16), (_distilbert, 12), (_roberta, 8)])
@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_recorded_projections_are_the_linear_outputs(build, width, attn):
    model = build()
    model.set_attn_implementation(attn)
    layers = _encoder_layers(model)
    record_qkv(model, [1])
    ids = torch.randint(3, 40, (2, 5))
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    assert "qkv:1" in out and "qkv:0" not in out  # only the layer asked for
    recorded = extract(out, ["qkv:1"])["qkv:1"]
    assert recorded.shape == (2, 5, 3 * width)
    # layer 1's input is hidden_states[1]; its projections computed apart from the model
    with torch.no_grad():
        q, k, v = (linear(out.hidden_states[1]) for linear in qkv_linears(_attention(layers[1])))
    torch.testing.assert_close(recorded, torch.cat([q, k, v], -1))
    # hooks sit on layer 1's three Linears only
    hooked = [sum(len(m._forward_hooks) for m in qkv_linears(_attention(layer))) for layer in layers]
    assert hooked == [0, 3] + [0] * (len(layers) - 2)


def test_layers_are_added_removed_and_a_missing_layer_is_refused():
    model = _bert()
    recorder = record_qkv(model, [2])
    assert record_qkv(model, [0, 2]) is recorder and recorder.layers == {0, 2}
    assert sum(len(m._forward_hooks) for m in qkv_linears(model.encoder.layer[2].attention.self)) == 3  # once
    out = model(input_ids=torch.randint(3, 40, (1, 4)))
    assert {k for k in out if k.startswith("qkv")} == {"qkv:0", "qkv:2"}
    out["qkv:2"].sum().backward()  # recorded in the graph: the projections get a gradient
    assert model.encoder.layer[2].attention.self.value.weight.grad is not None
    with pytest.raises(ValueError, match=r"layer\(s\) \[3\]: BertModel has layers 0..2"):
        record_qkv(model, [3])
    recorder.remove()
    out = model(input_ids=torch.randint(3, 40, (1, 4)))
    assert not [k for k in out if k.startswith("qkv")]
    with pytest.raises(ValueError, match="no Q/K/V projections of layer 2; attach the recorder"):
        extract(out, ["qkv:2"])


def test_prepare_model_records_what_the_keys_need():
    want = needs(["qkv:1", "hidden:2"])
    assert want.qkv_layers == frozenset({1}) and want.hidden_states and not want.attentions
    assert (want | needs(["qkv:0"])).qkv_layers == frozenset({0, 1})
    model = prepare_model(_bert(), want)
    assert model.config._attn_implementation == "sdpa"  # no attention map is compared
    out = model(input_ids=torch.randint(3, 40, (1, 4)), output_hidden_states=True)
    assert out["qkv:1"].shape == (1, 4, 48)


def test_teacher_cache_stores_qkv_per_token_and_gives_back_the_live_features(tmp_path):
    from bertdistill.distill.cache import TeacherCache

    model = _bert()
    record_qkv(model, [2])
    features = [{"input_ids": [2, 5, 6, 7, 3]}, {"input_ids": [2, 9, 3]}, {"input_ids": [2, 4, 8, 10, 11, 12, 3]}]
    cache = TeacherCache.load_or_build(model, features, ["qkv:2"], cache_dir=tmp_path, dtype=torch.float32)
    assert TeacherCache.estimate_bytes(model.config, features, ["qkv:2"], itemsize=4) == 4 * 3 * 16 * 15
    got = cache.lookup([1, 0, 2], 7)["qkv:2"]
    assert got.shape == (3, 7, 48)
    for row, i in enumerate([1, 0, 2]):
        n = len(features[i]["input_ids"])
        with torch.no_grad():
            live = model(input_ids=torch.tensor([features[i]["input_ids"]]))["qkv:2"][0]
        torch.testing.assert_close(got[row, :n], live, rtol=1e-5, atol=1e-6)
        assert not got[row, n:].any()
