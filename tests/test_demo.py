"""The demo's comparison on a tiny encoder: every number in demo.json is checked against an
independent computation (learning itself is covered by the pipeline tests)."""

from __future__ import annotations

import json

import pytest

from bertdistill.data import load_task
from bertdistill.evaluation import evaluate_model
from bertdistill.models.loading import load_task_model, load_tokenizer
from bertdistill.pipelines.demo import run_demo


def test_demo_numbers_follow_from_the_saved_models(tiny_encoder_dir, toy_task_dir, tmp_path, capsys):
    summary = run_demo(str(tmp_path / "demo"), teacher=str(tiny_encoder_dir), task="tsv", data=str(toy_task_dir),
                       teacher_epochs=1, student_epochs=1, max_train_examples=64, latency_runs=5)
    out = capsys.readouterr().out
    saved = json.loads((tmp_path / "demo" / "demo.json").read_text())
    teacher, student = saved["teacher"], saved["student"]
    assert saved["split"] == "test" and saved["main_metric"] == "accuracy"

    # the student is a smaller model, on disk and in parameters
    assert student["params"] < teacher["params"] and student["bytes"] < teacher["bytes"]

    # both metrics re-measured from the saved folders
    task_data = load_task("tsv", str(toy_task_dir))
    examples = task_data.split("test")
    tokenizer = load_tokenizer(teacher["dir"])
    for row in (teacher, student):
        again = evaluate_model(load_task_model(row["dir"], task_data.task), tokenizer, task_data.task, examples)
        assert again["accuracy"] == pytest.approx(row["metrics"]["accuracy"], abs=1e-9), row["dir"]

    # derived numbers are computed from the two measured ones, not copied
    t_ms, s_ms = teacher["latency"]["median_ms"], student["latency"]["median_ms"]
    assert t_ms > 0 and s_ms > 0
    assert saved["speedup"] == pytest.approx(t_ms / s_ms, rel=1e-12)
    retention = student["metrics"]["accuracy"] / teacher["metrics"]["accuracy"]
    assert saved["retention"] == pytest.approx(retention, rel=1e-12) and summary["retention"] == saved["retention"]
    assert f"{t_ms / s_ms:.2f}x" in out and f"{retention:.1%}" in out and "run directory" in out
    assert (tmp_path / "demo" / "report" / "report.md").is_file() and saved["pareto"]
    assert (tmp_path / "demo" / "student" / "student" / "README.md").is_file()  # the student's model card
