"""`bertdistill predict` / `bertdistill.predict`: classification, regression and NER outputs."""

from __future__ import annotations

import json

import pytest
import torch

import bertdistill
from bertdistill.cli import main
from bertdistill.data.examples import TaskSpec
from bertdistill.models.loading import load_task_model, load_tokenizer, save_model
from bertdistill.prediction import entities, model_task, read_texts


def _saved(tmp_path, kind, task, seed=0):
    from tiny import make_tiny_bert, make_tiny_tokenizer

    tokenizer = make_tiny_tokenizer(tmp_path / f"tok-{kind}")
    model = make_tiny_bert(tokenizer, num_labels=task.num_labels, task_kind=kind, seed=seed)
    return str(save_model(model, tokenizer, tmp_path / kind, task=task))


def test_classification_matches_the_model_and_writes_jsonl(tmp_path, capsys):
    task = TaskSpec("reviews", "classification", ["neg", "pos"], ("accuracy",))
    folder = _saved(tmp_path, "classification", task)
    texts = ["a good film", "the plot was bad and boring"]
    rows = bertdistill.predict(folder, texts, output=str(tmp_path / "out" / "p.jsonl"))
    model, tok = load_task_model(folder, task).eval(), load_tokenizer(folder)
    with torch.no_grad():
        probs = model(**tok(texts, padding=True, return_tensors="pt")).logits.softmax(-1)
    for row, p in zip(rows, probs):
        assert row["label"] == task.labels[int(p.argmax())]
        assert row["score"] == pytest.approx(float(p.max()), abs=1e-5)
        assert sum(row["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert [json.loads(line) for line in (tmp_path / "out" / "p.jsonl").read_text().splitlines()] == rows
    (tmp_path / "texts.jsonl").write_text('{"text": "a good film"}\n\n{"text": "the plot was bad and boring"}\n')
    assert main(["predict", "--model", folder, "--input", str(tmp_path / "texts.jsonl")]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["label"] for r in printed] == [r["label"] for r in rows]


def test_regression_gives_the_model_score(tmp_path):
    task = TaskSpec("similarity", "regression", None, ("pearson",))
    folder = _saved(tmp_path, "regression", task)
    (row,) = bertdistill.predict(folder, "one good movie")
    model, tok = load_task_model(folder, task).eval(), load_tokenizer(folder)
    with torch.no_grad():
        expected = float(model(**tok(["one good movie"], return_tensors="pt")).logits[0, 0])
    assert set(row) == {"text", "score"} and row["score"] == pytest.approx(expected, abs=1e-5)


def test_ner_tags_every_word_and_reads_entities(tmp_path):
    task = TaskSpec("tags", "token_classification", ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"], ("entity_f1",))
    folder = _saved(tmp_path, "token_classification", task)
    assert model_task(folder).kind == "token_classification"
    rows = bertdistill.predict(folder, ["the man and the woman walk to the river", "hello"])
    assert rows[0]["words"] == "the man and the woman walk to the river".split()
    assert len(rows[0]["tags"]) == 9 and set(rows[0]["tags"]) <= set(task.labels)
    assert rows[0]["entities"] == entities(rows[0]["words"], rows[0]["tags"])


def test_entities_from_iob2_tags():
    words = ["Ann", "Lee", "met", "Bo", "in", "New", "York"]
    tags = ["B-PER", "I-PER", "O", "B-PER", "O", "B-LOC", "I-LOC"]
    assert entities(words, tags) == [
        {"type": "PER", "start": 0, "end": 2, "text": "Ann Lee"},
        {"type": "PER", "start": 3, "end": 4, "text": "Bo"},
        {"type": "LOC", "start": 5, "end": 7, "text": "New York"},
    ]
    assert entities(["a", "b"], ["I-LOC", "I-PER"]) == [  # a stray I- starts an entity (seqeval's reading)
        {"type": "LOC", "start": 0, "end": 1, "text": "a"}, {"type": "PER", "start": 1, "end": 2, "text": "b"}]


def test_read_texts_lines_and_errors(tmp_path):
    (tmp_path / "t.txt").write_text("first text\n\nsecond, with a comma\n")
    assert read_texts(tmp_path / "t.txt") == ["first text", "second, with a comma"]
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{"txt": "no"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: expected an object with a \"text\" string"):
        read_texts(tmp_path / "bad.jsonl")
