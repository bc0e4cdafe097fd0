"""The README followed word for word on a tiny model: own CSV -> finetune -> distill ->
predict -> evaluate, the plain transformers pipeline line, and the Python API example.

Commands and code are read from the README between their markers; the only change is the
model (``minilm-l6`` -> a tiny random BERT), so the test breaks when the README does. The
user guide carries the same marked blocks, and they must be the README's, byte for byte;
every README result row names its command and a section of benchmarks/RESULTS.md that exists.
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

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
# marked block -> the guide page that carries it too
GUIDE_BLOCKS = {"main-command": "docs/index.md", "test-command": "docs/index.md", "own-data": "docs/own-data.md",
                "pipeline-line": "docs/own-data.md", "api-example": "docs/api.md"}


def marked_block(path: Path, marker: str) -> str:
    text = path.read_text(encoding="utf-8")
    found = re.findall(rf"<!-- {marker} -->\s*```\w*\n(.*?)```\s*<!-- /{marker} -->", text, re.S)
    assert len(found) == 1, f"{path.name} has {len(found)} {marker} blocks, not one"
    return found[0]


def readme_block(marker: str) -> str:
    return marked_block(README, marker)


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation but '-' and '_' dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)  # no '#' lines of code
    return {github_anchor(h) for h in re.findall(r"^#{1,6} (.+)$", text, re.M)}


def readme_table(title: str) -> list[list[str]]:
    """The rows (cells stripped) of the first table under the README's ``## title``, header excluded."""
    section = README.read_text(encoding="utf-8").split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]
    lines = [l for l in section.splitlines() if l.startswith("|")]
    return [[c.strip() for c in l.strip().strip("|").split(" | ")] for l in lines[2:]]


@pytest.mark.parametrize("marker", sorted(GUIDE_BLOCKS))
def test_the_guide_carries_the_readmes_blocks_unchanged(marker):
    assert marked_block(ROOT / GUIDE_BLOCKS[marker], marker) == readme_block(marker)


def test_setup_commands_install_the_extras_the_tests_need():
    main_cmd, test_cmd = readme_block("main-command"), readme_block("test-command")
    assert "pip install -c requirements/constraints.txt -e . " in main_cmd and main_cmd.strip().endswith(
        "bertdistill demo")
    assert """-e ".[test]\"""" in test_cmd and test_cmd.strip().endswith("python -m pytest -q")


def test_every_readme_link_resolves():
    text = README.read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    assert links
    for link in links:
        if re.match(r"^[a-z]+:", link):
            continue
        path, _, anchor = link.partition("#")
        target = ROOT / path
        assert target.exists(), f"README links to {path}, which does not exist"
        if anchor:
            assert anchor in anchors(target), f"README links to {link}: {path} has no such heading"


def test_every_result_row_has_a_command_and_a_results_section():
    rows = readme_table("Results")
    assert len(rows) >= 8
    run_sh = ROOT / "benchmarks" / "run.sh"
    listing = re.search(r'BENCHMARKS="\n(.*?)\n"', run_sh.read_text(encoding="utf-8"), re.S)
    benchmarks = {line.split()[0] for line in listing.group(1).splitlines() if line.strip()}
    sections = anchors(RESULTS)
    for task, models, retention, speedup, size, command, details in rows:
        assert re.fullmatch(r"`[^`]+`", command), f"{task}: the command column holds no command"
        runs = re.findall(r"bash benchmarks/run\.sh((?: [a-z0-9-]+)+)", command)
        assert runs or command.startswith("`bertdistill "), f"{task}: {command} runs no benchmark"
        for names in runs:
            assert set(names.split()) <= benchmarks, f"{task}: {names} are not all benchmarks of run.sh"
        link = re.fullmatch(r"\[[^\]]+\]\(benchmarks/RESULTS\.md#([a-z0-9-]+)\)", details)
        assert link, f"{task}: no link to a section of benchmarks/RESULTS.md"
        assert link.group(1) in sections, f"{task}: benchmarks/RESULTS.md has no section #{link.group(1)}"


def test_readme_is_a_front_page():
    text = README.read_text(encoding="utf-8")
    assert len(text) <= 16_500  # half of what it was before the guide took the long explanations
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert headings[:3] == ["Your own data", "Methods", "Results"]
    for detail in ("mallopt", "bernoulli", "fsync", "allocator"):
        assert detail not in text, f"an implementation note ({detail}) belongs in the guide"


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
    from bertdistill.pipelines.small_data import MAX_EPOCHS, SMALL_BATCH

    # 72 train rows: the small-data rule (batch 16, then more epochs, up to 20) replaces 3 epochs at batch 32
    assert plan["student"]["kept_teacher_layers"] == [0]
    assert (plan["training"]["batch_size"], plan["training"]["epochs"]) == (SMALL_BATCH, MAX_EPOCHS) == (16, 20)
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


@pytest.mark.parametrize("name", ["finetune", "distill", "evaluate", "predict", "embed", "embed_eval", "demo",
                                  "mlm_head", "general_distill"])
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
