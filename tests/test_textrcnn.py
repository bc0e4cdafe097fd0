"""BERT + TextRCNN head: second-to-last layer, padding-free max-pool, save/reload, KD at T=5."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from bertdistill import api
from bertdistill.data.examples import TaskSpec
from bertdistill.models import load_task_model, load_tokenizer
from bertdistill.models.textrcnn import BertTextRCNNForSequenceClassification, textrcnn_from_encoder

TASK = TaskSpec(name="toy", kind="classification", labels=["0", "1"], metrics=("accuracy",))


@pytest.fixture(scope="module")
def model(tiny_encoder_dir):
    torch.manual_seed(0)
    return textrcnn_from_encoder(str(tiny_encoder_dir), TASK).eval()


def test_head_reads_the_second_to_last_layer_and_ignores_padding(model, tiny_encoder_dir):
    tok = load_tokenizer(str(tiny_encoder_dir))
    alone = tok(["the movie was good"], return_tensors="pt")
    batch = tok(["the movie was good", "a very long and really boring story about the world"],
                padding=True, return_tensors="pt")
    with torch.no_grad():
        a = model(**alone).logits
        b = model(**batch).logits
        assert torch.allclose(a[0], b[0], atol=1e-5)  # padded tokens change nothing
        # the last layer's weights do not reach the logits
        last = model.bert.encoder.layer[-1]
        for p in last.parameters():
            p.add_(torch.randn_like(p))
        assert torch.allclose(model(**alone).logits, a, atol=1e-6)
        # ...but the second-to-last layer's do
        for p in model.bert.encoder.layer[-2].parameters():
            p.add_(torch.randn_like(p))
        assert not torch.allclose(model(**alone).logits, a, atol=1e-4)


def test_refuses_token_tasks_and_non_bert(tiny_encoder_dir):
    ner = TaskSpec(name="ner", kind="token_classification", labels=["O", "B"], metrics=("entity_f1",))
    with pytest.raises(ValueError, match="textrcnn classifies whole texts"):
        textrcnn_from_encoder(str(tiny_encoder_dir), ner)
    with pytest.raises(ValueError, match="--head must be one of"):
        api.finetune("tsv", str(tiny_encoder_dir), "unused", "unused", head="cnn")


def test_finetune_textrcnn_learns_reloads_and_distils_at_t5(tiny_encoder_dir, toy_task_dir, tmp_path):
    from bertdistill.training.engine import TrainConfig

    out = tmp_path / "rcnn"
    result = api.finetune("tsv", str(tiny_encoder_dir), str(out), str(toy_task_dir), head="textrcnn",
                          train=TrainConfig(epochs=4, lr=2e-3, batch_size=16, seed=1))
    assert result["dev"]["accuracy"] > 0.85, result["dev"]
    best = out / "best"
    auto = AutoModelForSequenceClassification.from_pretrained(best)
    assert isinstance(auto, BertTextRCNNForSequenceClassification)
    assert auto.config.model_type == "bert_textrcnn"
    again = api.evaluate(str(best), "tsv", str(toy_task_dir))
    assert again["accuracy"] == pytest.approx(result["dev"]["accuracy"])
    reloaded = load_task_model(str(best), TASK)
    assert isinstance(reloaded, BertTextRCNNForSequenceClassification)
    # the shipped recipe: KD at T=5 into a plain BERT student that starts from the encoder
    student = api.distill(str(best), "tsv", str(tmp_path / "kd"), str(toy_task_dir), recipe="kd_textrcnn",
                          student=str(tiny_encoder_dir), cache_dir=str(tmp_path / "cache"),
                          train={"epochs": 4, "lr": 2e-3, "batch_size": 16, "seed": 0})
    assert student["recipe"] == "kd_textrcnn"
    assert student["dev"]["teacher"]["accuracy"] == pytest.approx(result["dev"]["accuracy"])
    assert student["dev"]["student"]["accuracy"] > 0.8, student["dev"]
