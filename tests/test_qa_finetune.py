"""Fine-tuning and evaluating a QA model end to end: a tiny random BERT learns to point at the answer."""

from __future__ import annotations

import json
import random
import warnings
from pathlib import Path

import pytest

from bertdistill import api
from bertdistill.cli import main
from bertdistill.data import get_task_spec, load_task
from bertdistill.data.qa_features import QaOptions
from bertdistill.models.loading import load_task_model, load_tokenizer
from bertdistill.qa_evaluation import evaluate_qa

CITIES = ["paris", "london", "berlin", "france", "germany", "europe"]
FILLER = "the movie was good and a film is very long day night man woman house car road river".split()
QA_OPTIONS = {"doc_stride": 16, "max_question_length": 8}
MAX_LENGTH = 48


def synthetic_rows(n: int, seed: int) -> list[dict]:
    """Contexts of filler words with one place name; the question asks for it."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        words = rng.choices(FILLER, k=rng.randint(6, 14))
        city = rng.choice(CITIES)
        words.insert(rng.randint(0, len(words)), city)
        context = " ".join(words)
        at = context.index(f" {city} ") + 1 if f" {city} " in context else context.index(city)
        assert context[at:at + len(city)] == city
        rows.append({"id": f"s{seed}-{i}", "question": "where is it ?", "context": context,
                     "answers": [{"text": city, "answer_start": at}]})
    return rows


def write_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, n, seed in (("train", 32, 1), ("dev", 16, 2)):
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in synthetic_rows(n, seed)))
    return folder


@pytest.fixture(scope="module")
def trained(tiny_encoder_dir, tmp_path_factory):
    data = write_folder(tmp_path_factory.mktemp("qa_data"))
    out = tmp_path_factory.mktemp("qa_run")
    result = api.finetune("squad", str(tiny_encoder_dir), str(out), str(data), max_length=MAX_LENGTH,
                          qa_options=QA_OPTIONS, train={"epochs": 12, "lr": 2e-3, "batch_size": 8, "seed": 3,
                                                        "warmup_ratio": 0.0})
    return data, out, result


def test_the_model_learns_to_answer(trained, tiny_encoder_dir):
    data, out, result = trained
    options = QaOptions(max_length=MAX_LENGTH, **QA_OPTIONS)
    task = get_task_spec("squad")
    dev = load_task("squad", data).splits["dev"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the new span head is reported as newly initialised
        untrained = load_task_model(str(tiny_encoder_dir), task)
    before = evaluate_qa(untrained, load_tokenizer(str(tiny_encoder_dir)), dev, options)
    after = result["dev"]
    assert after["questions"] == 16 and before["questions"] == 16
    assert before["exact_match"] < 0.3
    assert after["exact_match"] >= 0.75 and after["f1"] >= after["exact_match"]
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert losses[-1] < 0.5 * losses[0], losses
    evals = [r["eval"] for r in rows if r.get("eval")]
    assert {"exact_match", "f1", "questions"} <= set(evals[-1])
    saved = json.loads((out / "best" / "labels.json").read_text())
    assert (saved["task"], saved["kind"], saved["labels"]) == ("squad", "qa", None)
    assert json.loads((out / "best" / "metrics.json").read_text())["dev"]["exact_match"] == after["exact_match"]
    assert result["qa_options"]["doc_stride"] == 16


def test_evaluate_command_prints_em_and_f1(trained, capsys, tmp_path):
    data, out, result = trained
    code = main(["evaluate", "--task", "squad", "--data", str(data), "--model", str(out / "best"),
                 "--max-length", str(MAX_LENGTH), "--doc-stride", "16", "--max-question-length", "8",
                 "--output", str(tmp_path / "m.json")])
    printed = capsys.readouterr().out
    assert code == 0 and "exact_match" in printed and "f1" in printed
    written = json.loads((tmp_path / "m.json").read_text())
    assert written["task"] == "squad"
    assert written["metrics"]["exact_match"] == pytest.approx(result["dev"]["exact_match"])


def test_window_flags_are_refused_for_other_tasks(tmp_path, capsys):
    code = main(["finetune", "--task", "sst2", "--doc-stride", "64", "--output", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "--doc-stride: for question answering only" in err


def test_a_stride_too_long_for_the_windows_is_refused_before_training(tiny_encoder_dir, tmp_path, capsys):
    data = write_folder(tmp_path / "data")
    code = main(["finetune", "--task", "squad", "--data", str(data), "--model", str(tiny_encoder_dir),
                 "--output", str(tmp_path / "run"), "--max-length", "48", "--max-question-length", "8",
                 "--doc-stride", "40"])
    err = capsys.readouterr().err
    assert code == 2 and "--doc-stride 40 must be smaller than the context tokens of a window (37" in err
    assert not (tmp_path / "run" / "log.jsonl").exists()


def test_predict_command_answers_a_question(trained, capsys, tmp_path):
    _, out, _ = trained
    context = "the movie was good and london is very long"
    code = main(["predict", "--model", str(out / "best"), "--question", "where is it ?", "--context", context,
                 "--max-length", str(MAX_LENGTH), "--doc-stride", "16", "--max-question-length", "8"])
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and row["answer"] == "london" and context[row["start"]:row["end"]] == "london"
    assert 0 < row["score"] <= 1
    rows = [{"question": "where is it ?", "context": "berlin and a car"},
            {"question": "where is it ?", "context": "a man and a woman in paris"}]
    (tmp_path / "q.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    code = main(["predict", "--model", str(out / "best"), "--input", str(tmp_path / "q.jsonl"),
                 "--max-length", str(MAX_LENGTH), "--doc-stride", "16", "--max-question-length", "8",
                 "--output", str(tmp_path / "a.jsonl")])
    answers = [json.loads(line)["answer"] for line in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert code == 0 and answers == ["berlin", "paris"]
    code = main(["predict", "--model", str(out / "best"), "--text", "a sentence"])
    assert code == 2 and "takes --question and --context" in capsys.readouterr().err
    code = main(["predict", "--model", str(out / "best"), "--question", "where is it ?"])
    assert code == 2 and "--question and --context go together" in capsys.readouterr().err


def test_the_saved_folder_loads_with_plain_transformers(trained):
    """transformers' own Auto classes read the folder as it is (its `question-answering` pipeline is
    gone from transformers 5), and their logits point at the same span."""
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    _, out, _ = trained
    tokenizer = AutoTokenizer.from_pretrained(str(out / "best"))
    model = AutoModelForQuestionAnswering.from_pretrained(str(out / "best")).eval()
    context = "the film was good and paris is a city"
    enc = tokenizer("where is it ?", context, return_offsets_mapping=True, return_tensors="pt")
    offsets = enc.pop("offset_mapping")[0]
    with torch.no_grad():
        logits = model(**enc)
    start, end = int(logits.start_logits.argmax()), int(logits.end_logits.argmax())
    assert context[int(offsets[start][0]):int(offsets[end][1])] == "paris"


def test_a_class_recipe_on_qa_is_refused_in_one_line(trained, capsys, tmp_path):
    data, out, result = trained
    code = main(["distill", "--teacher", str(out / "best"), "--task", "squad", "--data", str(data),
                 "--max-length", "48", "--doc-stride", "16", "--max-question-length", "8",
                 "--output", str(tmp_path / "student")])  # the default recipe: kd_kl
    err = capsys.readouterr().err.strip()
    assert code == 2 and "use qa_kd and qa_hard on them, not kd_kl" in err, err
    assert len(err.splitlines()) == 1 and not (tmp_path / "student").exists()
