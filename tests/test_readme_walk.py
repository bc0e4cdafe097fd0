"""The README followed word for word on a tiny model: own CSV -> finetune -> distill ->
predict -> evaluate, the plain transformers pipeline line, and the Python API example.

Commands and code are read from the README between their markers; the only change is the
model (``minilm-l6`` -> a tiny random BERT), so the test breaks when the README does.
"""

from __future__ import annotations

import inspect
import json
import re
import shlex
from pathlib import Path

import pytest

import bertdistill
from bertdistill.cli import main
from conftest import toy_sentences

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_block(marker: str) -> str:
    text = README.read_text(encoding="utf-8")
    found = re.search(rf"<!-- {marker} -->\s*```\w*\n(.*?)```\s*<!-- /{marker} -->", text, re.S)
    assert found, f"README has no {marker} block"
    return found.group(1)


@pytest.fixture
def own_csv(tmp_path, monkeypatch):
    """reviews.csv as the README describes it (text,sentiment), in a fresh working folder."""
    rows = ["text,sentiment"] + [f"{s},{'pos' if y else 'neg'}" for s, y in toy_sentences(80, 5)]
    (tmp_path / "reviews.csv").write_text("\n".join(rows) + "\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_readme_own_data_walk(own_csv, tiny_encoder_dir, capsys):
    lines = [l for l in readme_block("own-data").splitlines() if l.strip()]
    assert [shlex.split(l)[1] for l in lines] == ["finetune", "distill", "predict", "evaluate"]
    outputs = []
    for line in lines:
        argv = shlex.split(line.replace("minilm-l6", str(tiny_encoder_dir)))
        assert argv[0] == "bertdistill"
        assert main(argv[1:]) == 0, line
        outputs.append(capsys.readouterr())
    finetune, distill, predict, evaluate = outputs
    assert "8 of 80 train rows (10%, seed 42) held out as dev" in finetune.err
    assert (own_csv / "runs/teacher/best/labels.json").is_file()
    plan = json.loads((own_csv / "runs/student/run_config.json").read_text())
    assert plan["data"] == {"task": "csv", "kind": "classification", "labels": ["neg", "pos"],
                            "source": "reviews.csv", "train": 72, "dev": 8}
    assert [t["name"] for t in plan["recipe"]["terms"]] == ["kd_kl", "hard", "cosine"]
    assert plan["student"]["kept_teacher_layers"] == [0] and plan["training"]["epochs"] == 3
    assert "distill plan" in distill.out and "term kd_kl" in distill.out and "T=2" in distill.out
    assert "student saved in runs/student/student" in distill.out
    assert "retention" in distill.out and "batch-1 latency" in distill.out
    results = json.loads((own_csv / "runs/student/results.json").read_text())
    summary = results["summary"]
    assert summary["student"]["parameters"] < summary["teacher"]["parameters"]
    assert summary["retention"] == pytest.approx(
        results["dev"]["student"]["accuracy"] / results["dev"]["teacher"]["accuracy"])
    rows = [json.loads(l) for l in predict.out.splitlines()]
    assert [r["text"] for r in rows] == ["a warm, funny film", "dull and far too long"]
    assert all(r["label"] in ("neg", "pos") for r in rows)
    # evaluate scores the same held-out rows as the distillation run did
    assert f"{results['dev']['student']['accuracy']:.4f}" in evaluate.out

    code = readme_block("pipeline-line")
    exec(compile(code, "README pipeline-line", "exec"), {})
    (result,) = eval(code.splitlines()[-1].strip()[len("print("):-1],
                     {"pipeline": __import__("transformers").pipeline})
    assert result["label"] in ("neg", "pos") and 0 <= result["score"] <= 1


def test_readme_python_api_example_runs(own_csv, tiny_encoder_dir, capsys):
    code = readme_block("api-example").replace("minilm-l6", str(tiny_encoder_dir))
    exec(compile(code, "README api-example", "exec"), {})
    out = capsys.readouterr().out
    assert re.search(r"retention \d+\.\d%", out)
    assert (own_csv / "runs/api-student/student/config.json").is_file()


@pytest.mark.parametrize("name", ["finetune", "distill", "evaluate", "predict", "embed", "demo", "mlm_head",
                                  "general_distill"])
def test_public_functions_have_typed_keywords_and_an_example(name):
    fn = getattr(bertdistill, name)
    assert callable(fn) and fn.__module__ == "bertdistill.api"
    assert "Example::" in fn.__doc__ and f"bertdistill.{name}(" in fn.__doc__
    params = [p for p in inspect.signature(fn).parameters.values() if p.kind is not p.VAR_KEYWORD]
    assert params and all(p.annotation is not inspect.Parameter.empty for p in params), name
    assert name in bertdistill.__all__


def test_training_options_as_dict_or_trainconfig():
    from bertdistill.api import train_options

    assert train_options({"epochs": 2}) == {"epochs": 2}
    assert train_options(bertdistill.TrainConfig(epochs=2))["epochs"] == 2
    with pytest.raises(ValueError, match=r"unknown training option\(s\) \['lrr'\]"):
        train_options({"lrr": 1})
    for call in (lambda: bertdistill.mlm_head("no/model", "no/corpus", train={"lrr": 1}),
                 lambda: bertdistill.general_distill("no/teacher", "no/corpus", train={"lrr": 1})):
        with pytest.raises(ValueError, match=r"unknown training option\(s\) \['lrr'\]"):
            call()  # refused before anything is read
