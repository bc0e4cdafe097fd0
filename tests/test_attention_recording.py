"""Attention is read before dropout: a model compared with itself has zero attention loss.

HF's eager attention returns the maps after attention dropout, so in training mode a model
and its own copy used to differ (attention_kl ~2.6 on MiniLM). These tests fail on the
old reading (``output.attentions``) and pass with the recorder of
``bertdistill.distill.features``.
"""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import BertForSequenceClassification

from bertdistill.distill.distiller import Distiller
from bertdistill.distill.features import extract, prepare_model, record_attention
from bertdistill.distill.losses import LOSSES
from bertdistill.distill.terms import Term
from tiny import make_tiny_tokenizer, tiny_config

# Layer 0: with the embedding dropout off, its input is the same in train and eval mode,
# so attention dropout is the only difference. (Deeper layers legitimately differ in train
# mode: the dropout of the layers below changes their input.)
ATTENTION_TERMS = [
    Term(loss="attention_mse", student="attention_scores", teacher="attention_scores",
         layers=[(0, 0)], name="mse_scores"),
    Term(loss="attention_mse", student="attention", teacher="attention", layers=[(0, 0)],
         name="mse_probs"),
    Term(loss="attention_kl", layers=[(0, 0)], name="kl"),
]


def _only_attention_dropout(model: torch.nn.Module, p: float) -> None:
    """Attention dropout p, every other dropout off: train and eval then differ only there."""
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p if name.endswith("attention.self.dropout") else 0.0


def _batch(tokenizer) -> dict:
    enc = tokenizer(["the movie was good and the music was great", "bad film"],
                    padding=True, return_tensors="pt")
    return dict(enc)


def _losses_vs_self(model: torch.nn.Module, batch: dict, recorder: bool) -> dict:
    teacher = copy.deepcopy(model).eval()
    student = model.train()
    distiller = Distiller(ATTENTION_TERMS, student_config=student.config,
                          teacher_config=teacher.config)
    if recorder:
        prepare_model(student, distiller.student_needs)
        prepare_model(teacher, distiller.teacher_needs)
    torch.manual_seed(0)
    with torch.no_grad():
        t_out = teacher(**batch, output_attentions=True)
        s_out = student(**batch, output_attentions=True)
    _, parts = distiller.compute(s_out, t_out, batch)
    return parts


@pytest.fixture(scope="module")
def tiny_tokenizer(tmp_path_factory):
    return make_tiny_tokenizer(tmp_path_factory.mktemp("tok"))


def _tiny_model(tokenizer):
    torch.manual_seed(0)
    # a wide init so that attention is far from uniform and dropout shows
    model = BertForSequenceClassification(tiny_config(tokenizer, attn_implementation="eager",
                                                      initializer_range=0.5))
    _only_attention_dropout(model, 0.5)
    return model


def test_model_vs_itself_in_training_mode_has_zero_attention_loss(tiny_tokenizer):
    parts = _losses_vs_self(_tiny_model(tiny_tokenizer), _batch(tiny_tokenizer), recorder=True)
    for name in ("mse_scores", "mse_probs", "kl"):
        assert abs(parts[name]) < 1e-6, parts


def test_every_layer_gives_distributions_in_training_mode(tiny_tokenizer):
    model = _tiny_model(tiny_tokenizer).train()
    record_attention(model)
    batch = _batch(tiny_tokenizer)
    out = model(**batch, output_attentions=True)
    for layer in range(model.config.num_hidden_layers):
        probs, scores = out[f"attention:{layer}"], out[f"attention_scores:{layer}"]
        assert torch.allclose(probs.sum(-1), torch.ones(probs.shape[:-1]), atol=1e-5)
        mask = (1.0 - batch["attention_mask"][:, None, None, :].float()) * torch.finfo(torch.float32).min
        assert torch.allclose(probs, torch.softmax(scores + mask, -1), atol=1e-6)
        assert probs.requires_grad and scores.requires_grad


def test_old_reading_after_dropout_is_not_zero(tiny_tokenizer):
    """The fault the recorder fixes: HF's own attentions (after dropout) differ from eval's."""
    model = _tiny_model(tiny_tokenizer)
    batch = _batch(tiny_tokenizer)
    teacher = copy.deepcopy(model).eval()
    torch.manual_seed(0)
    with torch.no_grad():
        s = model.train()(**batch, output_attentions=True).attentions[0]
        t = teacher(**batch, output_attentions=True).attentions[0]
    assert LOSSES["attention_kl"]()(s, t, batch["attention_mask"]).item() > 0.05


def test_recorded_scores_and_probabilities(tiny_tokenizer):
    model = _tiny_model(tiny_tokenizer).eval()
    record_attention(model)
    batch = _batch(tiny_tokenizer)
    with torch.no_grad():
        out = model(**batch, output_attentions=True)
    feats = extract(out, ["attention_scores:0", "attention:0", "attention:1"])
    # layer 0 scores = q·kᵀ/√d from the embeddings output, computed by hand
    attn = model.bert.encoder.layer[0].attention.self
    with torch.no_grad():
        h = model.bert.embeddings(input_ids=batch["input_ids"],
                                  token_type_ids=batch["token_type_ids"])
    heads, size = attn.num_attention_heads, attn.attention_head_size
    q = attn.query(h).view(*h.shape[:2], heads, size).transpose(1, 2)
    k = attn.key(h).view(*h.shape[:2], heads, size).transpose(1, 2)
    expected = q @ k.transpose(2, 3) / size ** 0.5
    assert torch.allclose(feats["attention_scores:0"], expected, atol=1e-5)
    # probabilities: softmax over real keys, rows sum to one, padded keys get ~0
    real = batch["attention_mask"].bool()
    probs = feats["attention:0"]
    assert torch.allclose(probs.sum(-1), torch.ones_like(probs.sum(-1)), atol=1e-5)
    assert probs[1][:, :, ~real[1]].abs().max() < 1e-6
    row = torch.softmax(expected[1, :, :, real[1]], dim=-1)
    assert torch.allclose(probs[1][:, :, real[1]], row, atol=1e-5)
    # the HF tuple holds the same pre-dropout maps
    assert torch.equal(out.attentions[1], feats["attention:1"])


def test_recorder_records_nothing_without_output_attentions(tiny_tokenizer):
    model = _tiny_model(tiny_tokenizer)
    recorder = record_attention(model)
    assert record_attention(model) is recorder  # idempotent
    out = model(**_batch(tiny_tokenizer))
    assert "attention_scores:0" not in out and not recorder.scores
    with pytest.raises(ValueError, match="record_attention"):
        extract(out, ["attention_scores:0"])
    recorder.remove()
    assert model.config._attn_implementation == "eager"


def test_attention_scores_need_the_attention_index_space(tiny_tokenizer):
    cfg = tiny_config(tiny_tokenizer)
    with pytest.raises(ValueError, match="out of range"):
        Distiller([Term(loss="attention_mse", layers=[(0, 2)], name="att")],
                  student_config=cfg, teacher_config=cfg)


@pytest.mark.integration
def test_minilm_vs_itself_in_training_mode_has_zero_attention_loss():
    from transformers import AutoModel

    from bertdistill.models.loading import load_tokenizer, resolve_model

    model = AutoModel.from_pretrained(resolve_model("minilm-l6"), attn_implementation="eager")
    _only_attention_dropout(model, model.config.attention_probs_dropout_prob)
    tokenizer = load_tokenizer("minilm-l6")
    parts = _losses_vs_self(model, _batch(tokenizer), recorder=True)
    for name in ("mse_scores", "mse_probs", "kl"):
        assert abs(parts[name]) < 1e-5, parts
