"""Distilling a QA teacher end to end: a tiny teacher fine-tuned on synthetic questions, then a
DistilBERT student distilled from it with the squad_distilbert recipe."""

from __future__ import annotations

import json
import warnings

import pytest

from bertdistill import api
from bertdistill.cli import main
from bertdistill.data import get_task_spec, load_task
from bertdistill.data.qa_features import QaOptions
from bertdistill.models.loading import load_task_model, load_tokenizer
from bertdistill.qa_evaluation import evaluate_qa
from bertdistill.students import build_student
from test_qa_finetune import MAX_LENGTH, QA_OPTIONS, write_folder

TRAIN = {"epochs": 12, "lr": 2e-3, "batch_size": 8, "seed": 3, "warmup_ratio": 0.0}


@pytest.fixture(scope="module")
def distilled(tiny_encoder_dir, tmp_path_factory):
    data = write_folder(tmp_path_factory.mktemp("qa_kd_data"))
    teacher_run = tmp_path_factory.mktemp("qa_kd_teacher")
    api.finetune("squad", str(tiny_encoder_dir), str(teacher_run), str(data), max_length=MAX_LENGTH,
                 qa_options=QA_OPTIONS, train=TRAIN)
    out = tmp_path_factory.mktemp("qa_kd_student")
    result = api.distill(str(teacher_run / "best"), "squad", str(out), str(data), recipe="squad_distilbert",
                         student_layers=1, max_length=MAX_LENGTH, qa_options=QA_OPTIONS, latency_runs=2,
                         cache_dir=str(tmp_path_factory.mktemp("qa_kd_cache")), train=TRAIN)
    return data, teacher_run / "best", out, result


def test_the_student_learns_from_the_teacher(distilled, tiny_encoder_dir):
    data, teacher_dir, out, result = distilled
    task = get_task_spec("squad")
    dev = load_task("squad", data).splits["dev"]
    options = QaOptions(max_length=MAX_LENGTH, **QA_OPTIONS)
    teacher = load_task_model(str(teacher_dir), task)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copied, _ = build_student(teacher, num_layers=1, arch="distilbert")  # before any distillation
        random_head = load_task_model(str(tiny_encoder_dir), task)
    tokenizer = load_tokenizer(str(teacher_dir))
    before = evaluate_qa(copied, tokenizer, dev, options)
    untrained = evaluate_qa(random_head, tokenizer, dev, options)
    row = result["dev"]
    assert row["teacher"]["exact_match"] >= 0.75
    assert untrained["exact_match"] < 0.3
    assert row["student"]["exact_match"] >= before["exact_match"] + 0.15, (before, row)
    assert row["student"]["exact_match"] >= 0.9
    assert row["f1_retention"] == pytest.approx(row["student"]["f1"] / row["teacher"]["f1"])
    saved = load_task_model(str(out / "student"), task)  # an AutoModelForQuestionAnswering checkpoint
    assert type(saved).__name__ == "DistilBertForQuestionAnswering"
    assert json.loads((out / "student" / "labels.json").read_text())["kind"] == "qa"
    logged = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    parts = [r["parts"] for r in logged if "parts" in r]
    assert parts and set(parts[0]) == {"qa_kd", "qa_hard"} and parts[-1]["qa_hard"] < parts[0]["qa_hard"]
    plan = json.loads((out / "run_config.json").read_text())
    assert plan["teacher_cache"]["enabled"] and [t["loss"] for t in plan["recipe"]["terms"]] == ["qa_kd", "qa_hard"]
    assert result["teacher_cache"] is not None


@pytest.mark.parametrize("args, message", [
    (["--student-arch", "bilstm"], "needs a transformer student that scores every token"),
    (["--recipe", "tinybert_task"], "runs in stages"),
    (["--max-question-length", "8", "--doc-stride", "40"], "--doc-stride 40 must be smaller"),
])
def test_bad_qa_distillations_are_refused_in_one_line(distilled, tmp_path, capsys, args, message):
    data, teacher_dir, _, _ = distilled
    code = main(["distill", "--task", "squad", "--data", str(data), "--teacher", str(teacher_dir),
                 "--recipe", "squad_distilbert", "--max-length", str(MAX_LENGTH), "--output", str(tmp_path / "o"),
                 *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert not (tmp_path / "o").exists()


def test_the_distilled_student_exports_to_int8_with_the_run_windows(distilled, tmp_path, capsys):
    """The DistilBERT student (no token types) exports from its run folder alone: the run's data
    for parity and scores, the run's windows (results.json) carried into the export."""
    data, _, out, result = distilled
    assert main(["export", str(out / "student"), "--format", "onnx-int8", "--output", str(tmp_path / "s8")]) == 0
    assert f"the run's data {data}" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "s8" / "export.json").read_text())
    assert manifest["inputs"] == ["input_ids", "attention_mask"] and manifest["model_type"] == "distilbert"
    assert manifest["qa_options"] == {"max_length": MAX_LENGTH, **QA_OPTIONS, "n_best": 20, "max_answer_length": 30}
    recorded = json.loads((out / "results.json").read_text())["config"]["qa_options"]
    assert recorded == {**QA_OPTIONS, "n_best": 20, "max_answer_length": 30}  # every option the run used
    assert manifest["parity"]["ok"] and manifest["parity"]["inputs"] == "squad dev"
    scores = manifest["evaluation"]["metrics"]
    assert scores["pytorch"]["exact_match"] == pytest.approx(result["dev"]["student"]["exact_match"])
    assert abs(scores["onnx-int8"]["f1"] - scores["pytorch"]["f1"]) <= 0.1
