"""The demo's comparison on a tiny encoder: every number in demo.json is checked against an
independent computation (learning itself is covered by the pipeline tests)."""

from __future__ import annotations

import json
import time

import pytest

from bertdistill.data import load_task
from bertdistill.evaluation import evaluate_model
from bertdistill.models.loading import load_task_model, load_tokenizer
from bertdistill.pipelines import demo
from bertdistill.pipelines.demo import run_demo


def test_demo_numbers_follow_from_the_saved_models(tiny_encoder_dir, toy_task_dir, tmp_path, capsys, monkeypatch):
    build_report, report_end = demo.build_report, []

    def timed_report(*args, **kwargs):
        result = build_report(*args, **kwargs)
        report_end.append(time.perf_counter())
        return result

    monkeypatch.setattr(demo, "build_report", timed_report)
    started = time.perf_counter()
    summary = run_demo(str(tmp_path / "demo"), teacher=str(tiny_encoder_dir), task="tsv", data=str(toy_task_dir),
                       teacher_epochs=1, student_epochs=1, max_train_examples=64, latency_runs=5)
    finished = time.perf_counter()
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

    # the timer covers the whole demo, the report included; the table is printed last, after the report's logs
    assert report_end[0] - started - 0.2 <= saved["minutes"] * 60 <= finished - started
    last = out.strip().splitlines()[-5:]
    assert last[0].startswith("model") and last[1].startswith("teacher") and last[2].startswith("student")
    assert last[3].startswith("retention of the teacher's accuracy")
    assert last[4].startswith("run directory") and f"({saved['minutes']:.1f} min)" in last[4]
    assert out.index("[5/5] report") < out.rindex(last[0])
