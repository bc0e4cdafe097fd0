"""The SQuAD reader: official JSON, JSON lines, the hub's columns, and one clear error per bad question."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bertdistill.cli import main
from bertdistill.data import DataError, get_task_spec, load_task
from bertdistill.data.examples import Answer
from bertdistill.data.tasks import task_kind

CONTEXT = "Paris is the capital of France. Berlin is the capital of Germany."


def squad_json(path: Path, qas: list[dict], context: str = CONTEXT) -> Path:
    data = {"version": "1.1", "data": [{"title": "Capitals", "paragraphs": [{"context": context, "qas": qas}]}]}
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def qa(qid: str, question: str, *answers: tuple[str, int]) -> dict:
    return {"id": qid, "question": question, "answers": [{"text": t, "answer_start": s} for t, s in answers]}


GOOD = [qa("q1", "What is the capital of France?", ("Paris", 0)),
        qa("q2", "Which country has Berlin?", ("Germany", 57), ("of Germany", 54))]


def test_squad_is_a_registered_qa_task():
    spec = get_task_spec("squad")
    assert (spec.kind, spec.metrics, spec.labels, spec.pair, spec.num_labels) == ("qa", ("exact_match", "f1"),
                                                                                  None, True, 2)
    assert task_kind("SQuAD") == "qa" and task_kind("sst2") == "classification" and task_kind("nope") is None


def test_official_json_folder(tmp_path):
    squad_json(tmp_path / "train-v1.1.json", GOOD)
    squad_json(tmp_path / "dev-v1.1.json", GOOD[:1])
    data = load_task("squad", tmp_path)
    assert sorted(data.splits) == ["dev", "train"]
    q2 = data.splits["train"][1]
    assert (q2.id, q2.text, q2.text_pair) == ("q2", "Which country has Berlin?", CONTEXT)
    assert q2.label == [Answer("Germany", 57), Answer("of Germany", 54)]
    assert CONTEXT[q2.label[1].start:q2.label[1].end] == "of Germany"


def test_jsonl_rows_and_hub_columns(tmp_path):
    rows = [{"context": CONTEXT, "question": "Capital of France?", "answers": [{"text": "Paris", "answer_start": 0}]},
            {"id": "x", "context": CONTEXT, "question": "Germany's capital?",
             "answers": {"text": ["Berlin"], "answer_start": [32]}}]
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    train = load_task("squad", path, validation_split=0).splits["train"]
    assert [e.id for e in train] == ["mine.jsonl:1", "x"]
    assert train[1].label == [Answer("Berlin", 32)]
    assert train[0].source.endswith("mine.jsonl:1")


@pytest.mark.parametrize("bad, where, message", [
    (qa("q9", "Where?", ("Paris", 3)), "q9", "answer_start 3 does not point at its text 'Paris'"),
    ({"id": "q8", "question": "Where?"}, "q8", "no 'answers' field"),
    ({"id": "q7", "answers": [{"text": "Paris", "answer_start": 0}]}, "q7", "no 'question' field"),
    (qa("q6", "Where?", ("", 0)), "q6", "answer 1: no 'text'"),
    (qa("q5", "Where?", ("Paris", "0")), "q5", "'answer_start' must be a character offset"),
    ({"id": "q4", "question": "Where?", "answers": []}, "q4", "no answers"),
    (qa("q1", "Again?", ("Paris", 0)), "q1", "the id is used by another question"),
])
def test_a_bad_question_names_the_file_and_its_id(tmp_path, bad, where, message):
    path = squad_json(tmp_path / "train.json", [GOOD[0], bad])
    with pytest.raises(DataError) as err:
        load_task("squad", path, validation_split=0)
    text = str(err.value)
    assert text.startswith(str(path)) and f"question {where!r}" in text and message in text, text


def test_empty_context_and_missing_id(tmp_path):
    path = squad_json(tmp_path / "train.json", GOOD[:1], context="   ")
    with pytest.raises(DataError, match=r"train.json: question 'q1': empty context"):
        load_task("squad", path, validation_split=0)
    path = squad_json(tmp_path / "train.json", [{"question": "Where?", "answers": []}])
    with pytest.raises(DataError, match=r"article 0 \('Capitals'\), paragraph 0 has no id"):
        load_task("squad", path, validation_split=0)


def test_jsonl_error_names_the_line_and_bad_rows_can_be_skipped(tmp_path):
    path = tmp_path / "train.jsonl"
    rows = [{"id": "a", "context": CONTEXT, "question": "Q?", "answers": [{"text": "Paris", "answer_start": 0}]},
            {"id": "b", "context": CONTEXT, "question": "Q?", "answers": [{"text": "Rome", "answer_start": 0}]}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"train.jsonl:2: question 'b', answer 1: answer_start 0 does not point"):
        load_task("squad", path, validation_split=0)
    data = load_task("squad", path, validation_split=0, skip_bad_rows=True)
    assert [e.id for e in data.splits["train"]] == ["a"] and data.skipped == 1


def test_not_a_squad_file(tmp_path):
    path = tmp_path / "train.json"
    path.write_text('{"rows": []}', encoding="utf-8")
    with pytest.raises(DataError, match='no "data" list'):
        load_task("squad", path, validation_split=0)
    path.write_text('{"data": [', encoding="utf-8")
    with pytest.raises(DataError, match=r"train.json:1: not valid JSON"):
        load_task("squad", path, validation_split=0)


def test_cli_bad_file_is_one_line_exit_2_before_any_model(tmp_path, capsys):
    path = squad_json(tmp_path / "train.json", [qa("bad-id", "Where?", ("Paris", 5))])
    # a model that does not exist: the data error must come first
    code = main(["finetune", "--task", "squad", "--data", str(path), "--model", str(tmp_path / "no-model"),
                 "--output", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "train.json" in err and "'bad-id'" in err and "answer_start 5" in err


def test_hub_squad_through_datasets(monkeypatch):
    from bertdistill.data import hub

    rows = {"train": [{"id": "h1", "title": "T", "context": CONTEXT, "question": "Capital of France?",
                       "answers": {"text": ["Paris"], "answer_start": [0]}}],
            "validation": [{"id": "h2", "title": "T", "context": CONTEXT, "question": "Capital of Germany?",
                            "answers": {"text": ["Berlin", "Berlin"], "answer_start": [32, 32]}}]}
    asked = []
    monkeypatch.setattr(hub, "load_dataset_dict", lambda data: asked.append(data) or rows)
    data = load_task("squad", "hub:squad")
    assert asked == ["hub:squad"]
    assert data.splits["dev"][0].label == [Answer("Berlin", 32), Answer("Berlin", 32)]
    assert data.splits["train"][0].id == "h1"
    rows["train"][0]["answers"] = {"text": ["Paris"], "answer_start": [4]}
    with pytest.raises(DataError, match=r"hub:squad/train:0: question 'h1', answer 1: answer_start 4"):
        load_task("squad", "hub:squad")


def test_shared_squad_files(shared_data):
    if not (shared_data / "squad").is_dir():
        pytest.skip("no SQuAD copy in the shared data")
    data = load_task("squad")
    assert len(data.splits["dev"]) == 10570 and len(data.splits["train"]) == 11877
    assert {e.id for e in data.splits["dev"]}.isdisjoint(e.id for e in data.splits["train"])
