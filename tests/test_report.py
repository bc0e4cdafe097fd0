"""Report (Markdown, JSON, plots, Pareto front), model cards, reproduce commands, trackers."""

from __future__ import annotations

import json

import pytest

from bertdistill import api
from bertdistill.cli import main
from bertdistill.report import build_report, pareto_front
from bertdistill.report.command import distill_command
from bertdistill.training.engine import TrainConfig


def test_pareto_front_by_hand():
    # (latency, accuracy): b is slower and worse than a; d ties a on latency but is worse
    points = [(1.0, 0.80), (2.0, 0.79), (3.0, 0.90), (1.0, 0.70), (5.0, 0.90)]
    assert pareto_front(points) == [0, 2]


def test_distill_command_rebuilds_the_cli_call():
    config = {"teacher": "t", "task": "sst2", "data": "d", "recipe": "kd", "output": "o", "student_layers": [0, 2],
              "max_train_examples": 100, "weights": {"kd": 0.5}, "cache_teacher": False,
              "train": {"epochs": 1.0, "lr": 0.0001, "seed": 42}}
    assert distill_command(config) == ("bertdistill distill --teacher t --task sst2 --data d --recipe kd --output o "
                                       "--student-layers 0,2 --max-train-examples 100 --weight kd=0.5 --epochs 1.0 "
                                       "--lr 0.0001 --seed 42 --no-teacher-cache")


@pytest.fixture(scope="module")
def student_run(tiny_teacher, toy_task_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("report_student") / "student-run"
    api.distill(str(tiny_teacher), "tsv", str(out), str(toy_task_dir), recipe="distilbert",
                cache_dir=str(out.parent / "cache"), train={"max_steps": 12, "batch_size": 16, "lr": 1e-3,
                                                           "log_every": 2})
    return out


def test_report_markdown_json_plots_and_model_card(tiny_teacher, student_run, tmp_path):
    out = tmp_path / "rep"
    report = build_report([str(tiny_teacher.parent), str(student_run)], out, lengths=[8], runs=4, warmup=1,
                          formats=["pytorch-fp32", "onnx-int8"], threads=1)
    for name in ("report.md", "report.json", "accuracy_latency.png", "loss_curves.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert (out / "accuracy_latency.png").read_bytes()[:4] == b"\x89PNG"
    assert [m["name"] for m in report["models"]] == ["teacher", "student-run"]
    teacher_row = next(r for r in report["speed"] if r["model"] == "teacher" and r["format"] == "pytorch-fp32")
    assert teacher_row["speedup"] == pytest.approx(1.0)
    int8 = next(r for r in report["speed"] if r["model"] == "student-run" and r["format"] == "onnx-int8")
    assert int8["metric"] is not None  # the export on the way evaluated on dev
    assert report["pareto"]
    md = (out / "report.md").read_text()
    assert "| student-run | student |" in md and "![accuracy vs latency](accuracy_latency.png)" in md
    card = (student_run / "student" / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: transformers\npipeline_tag: text-classification")
    assert "model-index:" in card and "kd_kl" in card and "## Reproduce" in card
    assert "bertdistill distill --teacher" in card and f"--output {student_run}" in card


def test_report_bad_input_names_the_folder(tmp_path, capsys):
    empty = tmp_path / "not-a-run"
    empty.mkdir()
    assert main(["report", str(empty)]) == 2
    assert f"{empty} is not a finished run folder" in capsys.readouterr().err


def test_tensorboard_tracker_gets_loss_terms_lr_and_throughput(tiny_encoder_dir, toy_task_dir, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "tb"
    api.finetune("tsv", str(tiny_encoder_dir), str(out), str(toy_task_dir),
                 train=TrainConfig(max_steps=4, batch_size=16, log_every=2, log_with="tensorboard"),
                 max_eval_examples=20)
    events = list((out / "trackers").rglob("events.out.tfevents.*"))
    assert events
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"loss", "lr", "samples_per_s", "eval/accuracy"} <= tags
    assert any(t.startswith("loss/") for t in tags)
    assert [e.step for e in acc.Scalars("loss")] == [2, 4]


def test_unknown_or_missing_tracker_is_refused():
    with pytest.raises(ValueError, match="--log-with 'nonsense'"):
        TrainConfig(log_with="nonsense")


def test_invoking_command_only_from_the_cli(monkeypatch):
    from bertdistill.report.command import invoking_command

    monkeypatch.setattr("sys.argv", ["/x/site-packages/bertdistill/cli.py", "distill", "--output", "a b"])
    assert invoking_command() == "bertdistill distill --output 'a b'"
    monkeypatch.setattr("sys.argv", ["/x/site-packages/pytest/__main__.py", "-q"])
    assert invoking_command() is None
