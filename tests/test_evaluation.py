from types import SimpleNamespace

import pytest
import torch
from transformers import DistilBertConfig, DistilBertForSequenceClassification

from bertdistill.data.encode import Collator, encode
from bertdistill.data.examples import Example
from bertdistill.evaluation import evaluate_model, forward_arguments, predict
from tiny import make_tiny_bert, make_tiny_tokenizer, tiny_task

SENTENCES = [
    ("good movie", 1), ("bad film", 0), ("a great story", 1), ("terrible plot", 0),
    ("the actor was very good", 1), ("boring", 0), ("i love this film", 1), ("awful music", 0),
    ("nice", 1), ("the worst show", 0),
]


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return make_tiny_tokenizer(tmp_path_factory.mktemp("vocab"))


def test_evaluate_tiny_model_returns_task_metrics(tok):
    task = tiny_task("classification")
    model = make_tiny_bert(tok, task_kind="classification")
    model.train()
    examples = [Example(t, label=y) for t, y in SENTENCES]
    m = evaluate_model(model, tok, task, examples, batch_size=4)
    assert {"accuracy", "f1", "matthews"} <= set(m)
    assert 0.0 <= m["accuracy"] <= 1.0
    assert model.training  # the mode it had is restored


def test_forced_class_one_gives_share_of_class_one(tok):
    task = tiny_task("classification")
    model = make_tiny_bert(tok, task_kind="classification")
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([0.0, 5.0]))
    labels = [1, 0, 0, 1, 0, 0, 0, 1]  # 3 of 8 are class 1
    examples = [Example(SENTENCES[i][0], label=y) for i, y in enumerate(labels)]
    m = evaluate_model(model, tok, task, examples, batch_size=3)
    assert m["accuracy"] == pytest.approx(3 / 8)
    assert m["matthews"] == 0.0
    # F1 of class 1 with recall 1 and precision 3/8
    assert m["f1"] == pytest.approx(2 * (3 / 8) / (3 / 8 + 1))


def _always_b_loc(tok):
    """A tiny token classifier that tags every piece B-LOC (tag 3 of O B-PER I-PER B-LOC I-LOC)."""
    model = make_tiny_bert(tok, num_labels=5, task_kind="token")
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 5.0, 0.0]))
    return model


def test_token_classification_forced_tag(tok):
    task = tiny_task("token")  # O B-PER I-PER B-LOC I-LOC
    model = _always_b_loc(tok)
    examples = [
        Example(["john", "walking", "in", "paris"], label=[1, 0, 0, 3]),
        Example(["unbelievable", "london"], label=[0, 3]),
    ]
    feats = encode(task, examples, tok)
    preds, refs = predict(model, task, feats, Collator(tok.pad_token_id), batch_size=1)
    assert preds == [["B-LOC"] * 4, ["B-LOC"] * 2]
    assert refs == [["B-PER", "O", "O", "B-LOC"], ["O", "B-LOC"]]
    m = evaluate_model(model, tok, task, examples)
    # 6 one-word LOC entities predicted, 2 of the 3 true entities are among them
    assert m["entity_precision"] == pytest.approx(2 / 6)
    assert m["entity_recall"] == pytest.approx(2 / 3)
    assert m["token_accuracy"] == pytest.approx(2 / 6)
    assert m["per_entity"]["PER"]["support"] == 1


def test_words_cut_off_by_truncation_are_scored_as_outside(tok):
    task = tiny_task("token")  # O B-PER I-PER B-LOC I-LOC
    model = _always_b_loc(tok)
    # 6 words, max_length 5 = [CLS] + 3 word pieces + [SEP]: "london" and "paris" are cut off
    examples = [Example(["john", "mary", "in", "the", "london", "paris"], label=[1, 1, 0, 0, 3, 3])]
    feats = encode(task, examples, tok, max_length=5)
    preds, refs = predict(model, task, feats, Collator(tok.pad_token_id))
    assert refs == [["B-PER", "B-PER", "O", "O", "B-LOC", "B-LOC"]]
    assert preds == [["B-LOC", "B-LOC", "B-LOC", "O", "O", "O"]]
    m = evaluate_model(model, tok, task, examples, max_length=5)
    assert m["per_entity"]["LOC"]["support"] == 2 and m["entity_recall"] == 0.0


class LengthModel(torch.nn.Module):
    """Predicts each input's length as its regression score; accepts no token_type_ids."""

    def forward(self, input_ids, attention_mask=None):
        return SimpleNamespace(logits=attention_mask.sum(1, keepdim=True).float())


def test_predict_keeps_input_order_and_drops_unknown_keys(tok):
    task = tiny_task("regression")
    texts = ["good", "a very good movie", "bad film", "the best story of the year", "nice"]
    examples = [Example(t, label=float(i)) for i, t in enumerate(texts)]
    feats = encode(task, examples, tok)
    assert "token_type_ids" in feats[0]
    preds, refs = predict(LengthModel(), task, feats, Collator(tok.pad_token_id), batch_size=2)
    assert preds == [float(len(f["input_ids"])) for f in feats]
    assert refs == [0.0, 1.0, 2.0, 3.0, 4.0]
    unlabelled = encode(task, [Example(t) for t in texts], tok)
    preds, refs = predict(LengthModel(), task, unlabelled, Collator(tok.pad_token_id))
    assert refs is None and len(preds) == 5


def test_distilbert_runs_without_token_type_ids(tok):
    config = DistilBertConfig(
        vocab_size=len(tok), dim=32, n_layers=2, n_heads=2, hidden_dim=64,
        max_position_embeddings=64, pad_token_id=tok.pad_token_id,
    )
    model = DistilBertForSequenceClassification(config)
    assert "token_type_ids" not in forward_arguments(model)
    examples = [Example(t, label=y) for t, y in SENTENCES]
    m = evaluate_model(model, tok, tiny_task("classification"), examples)
    assert 0.0 <= m["accuracy"] <= 1.0


def test_token_prediction_needs_labels(tok):
    task = tiny_task("token")
    model = make_tiny_bert(tok, num_labels=5, task_kind="token")
    feats = encode(task, [Example(["john"])], tok)
    with pytest.raises(ValueError, match="need labelled features"):
        predict(model, task, feats, Collator(0))
