"""The demo's mechanics on a tiny encoder (learning itself is covered by the pipeline tests)."""

from __future__ import annotations

import json

from bertdistill.pipelines.demo import run_demo


def test_demo_prints_comparison_and_writes_summary(tiny_encoder_dir, toy_task_dir, tmp_path, capsys):
    summary = run_demo(str(tmp_path / "demo"), teacher=str(tiny_encoder_dir), task="tsv", data=str(toy_task_dir),
                       teacher_epochs=1, student_epochs=1, max_train_examples=64, latency_runs=5)
    out = capsys.readouterr().out
    assert "speed-up" in out and "retention" in out and "run directory" in out
    saved = json.loads((tmp_path / "demo" / "demo.json").read_text())
    assert saved["split"] == "test" and saved["main_metric"] == "accuracy"
    assert saved["student"]["params"] < saved["teacher"]["params"]
    assert saved["speedup"] > 0 and summary["retention"] == saved["retention"]
    assert saved["student"]["latency"]["median_ms"] > 0
    assert (tmp_path / "demo" / "report" / "report.md").is_file() and saved["pareto"]
    assert (tmp_path / "demo" / "student" / "student" / "README.md").is_file()  # the student's model card
