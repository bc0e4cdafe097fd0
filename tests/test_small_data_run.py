"""A 200-row CSV of one's own, end to end with the default training lengths (tiny models).

With the recipes' old lengths (3 epochs at batch 32: 18 optimizer steps on 180 train rows)
the model predicts one class; with the small-data defaults it learns, and a run that did not
learn says so at the end.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from conftest import toy_sentences

from bertdistill import api
from bertdistill.data import load_task
from bertdistill.pipelines import distill as distill_pipeline

LR = {"lr": 1e-3}  # tiny random models need a larger step than the recipes' 5e-5; lengths stay default


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    path = tmp_path_factory.mktemp("own") / "reviews.csv"
    rows = toy_sentences(200, 11)
    path.write_text("text,label\n" + "".join(f"{t},{'pos' if y else 'neg'}\n" for t, y in rows))
    return path


@pytest.fixture(scope="module")
def teacher(tiny_encoder_dir, reviews, tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher")
    result = api.finetune(data=str(reviews), model=str(tiny_encoder_dir), output=str(out), train=LR)
    return out, result


def _counts(path, split: str) -> Counter:
    """Label name -> rows of ``split`` (the CSV's seeded dev split holds out 20 of the 200 rows)."""
    data = load_task(data=str(path), validation_split=0.1)
    return Counter(data.task.labels[e.label] for e in data.split(split))


def _majority(path) -> float:
    """Accuracy of the best constant answer on the dev rows."""
    dev = _counts(path, "dev")
    return max(dev.values()) / sum(dev.values())


def test_finetune_prints_its_labels_and_learns_with_the_small_data_defaults(teacher, reviews):
    out, result = teacher
    assert result["small_data"].startswith("small data: 180 train rows give only 18 optimizer steps")
    assert result["train"]["steps"] == 120 and result["config"]["train"]["batch_size"] == 16
    assert result["config"]["train"]["epochs"] == 10
    assert result["dev"]["accuracy"] >= 0.9 > _majority(reviews) + 0.2
    saved = json.loads((out / "results.json").read_text())
    assert saved["verdict"]["ok"] is True and saved["verdict"]["constant_baseline"]["score"] == _majority(reviews)


def test_the_old_lengths_collapse_and_the_run_says_so(tiny_encoder_dir, reviews, tmp_path, capsys):
    result = api.finetune(data=str(reviews), model=str(tiny_encoder_dir), output=str(tmp_path / "t"),
                          train={**LR, "epochs": 3, "batch_size": 32})  # given: no small-data change
    captured = capsys.readouterr()
    train = _counts(reviews, "train")
    assert f"labels (2, train rows): neg {train['neg']}, pos {train['pos']}" in captured.out
    assert sum(train.values()) == 180 and result["small_data"] is None
    assert result["train"]["steps"] == 18
    assert result["dev"]["accuracy"] == pytest.approx(_majority(reviews))  # one class for every row
    verdict = result["verdict"]
    assert verdict["ok"] is False and "no better than always answering" in verdict["problems"][0]
    assert "bertdistill: WARNING: on dev, the model's accuracy" in captured.err
    assert "--batch-size 16" in captured.err and "--epochs 8" in captured.err
    assert json.loads((tmp_path / "t" / "results.json").read_text())["verdict"] == verdict


def test_distill_plans_before_the_cache_and_its_student_learns(teacher, reviews, tmp_path, capsys, monkeypatch):
    teacher_out, _ = teacher
    out = tmp_path / "student"
    seen = {}
    build = distill_pipeline.TeacherCache.load_or_build

    def spy(*args, **kwargs):  # what the user has been told when the cache build starts
        seen["plan_file"] = (out / "run_config.json").is_file()
        seen["printed"] = capsys.readouterr().out
        return build(*args, **kwargs)

    monkeypatch.setattr(distill_pipeline.TeacherCache, "load_or_build", spy)
    result = api.distill(str(teacher_out / "best"), data=str(reviews), output=str(out), recipe="distilbert",
                         cache_dir=str(tmp_path / "cache"), latency_runs=0, train=LR)
    assert seen["plan_file"] and "distill plan" in seen["printed"]
    assert f"cache     teacher outputs cached in {tmp_path / 'cache'}" in seen["printed"]
    assert "small data: 180 train rows" in seen["printed"] and "epochs 3 -> 10" in seen["printed"]
    assert result["train"]["steps"] == 120 and result["small_data"] and result["teacher_cache"]
    assert result["dev"]["student"]["accuracy"] >= 0.9 > _majority(reviews) + 0.2
    saved = json.loads((out / "results.json").read_text())
    assert saved["verdict"]["ok"] is True and saved["verdict"]["retention"] >= 0.9
    assert json.loads((out / "run_config.json").read_text())["training"]["epochs"] == 10


def test_the_finetune_command_leaves_unset_lengths_to_the_data():
    from bertdistill.cli import build_parser
    from bertdistill.commands.options import train_overrides

    unset = train_overrides(build_parser().parse_args(["finetune", "--model", "m", "--output", "o"]))
    assert "epochs" not in unset and "batch_size" not in unset  # TrainConfig's 3 x 32, or the small-data choice
    given = train_overrides(build_parser().parse_args(["finetune", "--model", "m", "--output", "o",
                                                       "--epochs", "3", "--batch-size", "32"]))
    assert given["epochs"] == 3 and given["batch_size"] == 32
