"""Every error a user can cause ends in one line naming the flag, file or value, exit code 2.

The commands are walked in-process through ``bertdistill.cli.main`` with bad inputs; one
subprocess run checks the real entry point and ``--verbose`` after the subcommand.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bertdistill.cli import build_parser, main
from bertdistill.commands.options import term_weights

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_encoder_dir):
    """A good CSV, a broken CSV, a file in the way of --output, and a 'fine-tuned' tiny model."""
    from tiny import save_tiny_bert

    d = tmp_path_factory.mktemp("bad_inputs")
    (d / "reviews.csv").write_text("text,sentiment\n" + "".join(
        f"review {i},{'pos' if i % 2 else 'neg'}\n" for i in range(20)))
    (d / "broken.csv").write_text("text,sentiment\nfine,pos\ntoo,many,fields\n")
    (d / "taken").write_text("a file, not a folder\n")
    (d / "notes.txt").write_text("hello\n")
    model = save_tiny_bert(d / "model", kind="sequence", num_labels=2, seed=0)
    (Path(model) / "labels.json").write_text(json.dumps(
        {"task": "csv", "kind": "classification", "labels": ["neg", "pos"], "metrics": ["accuracy"], "pair": False}))
    return {"dir": d, "csv": str(d / "reviews.csv"), "broken": str(d / "broken.csv"), "taken": str(d / "taken"),
            "txt": str(d / "notes.txt"), "model": str(model), "encoder": str(tiny_encoder_dir)}


def call(capsys, argv: list[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    return code, capsys.readouterr().err


BAD = [  # (argv with {placeholders}, text the one-line message must hold)
    (["finetune", "--data", "{dir}/missing.csv", "--output", "{dir}/o"], "missing.csv: no such file"),
    (["finetune", "--data", "{broken}", "--label-column", "sentiment", "--output", "{dir}/o"],
     "broken.csv:3: expected 2 columns, got 3"),
    (["finetune", "--data", "{csv}", "--label-column", "stars", "--output", "{dir}/o"], "no label column 'stars'"),
    (["finetune", "--data", "{txt}", "--output", "{dir}/o"], "cannot tell the format"),
    (["finetune", "--task", "nope", "--data", "{csv}", "--output", "{dir}/o"], "unknown task 'nope'"),
    (["finetune", "--data", "{csv}", "--lr", "-1", "--output", "{dir}/o"], "argument --lr: must be greater than 0"),
    (["finetune", "--data", "{csv}", "--output", "{taken}"], "argument --output:"),
    (["finetune", "--data", "{csv}", "--validation-split", "2", "--output", "{dir}/o"], "--validation-split"),
    (["finetune", "--data", "{csv}", "--bogus-flag", "--output", "{dir}/o"], "unrecognized arguments: --bogus-flag"),
    (["finetune", "--data", "{csv}", "--label-column", "sentiment", "--model", "{dir}/no-model", "--output", "{dir}/o"],
     "unknown model"),
    (["distill", "--teacher", "{model}", "--data", "{csv}", "--max-steps", "0", "--output", "{dir}/d"],
     "argument --max-steps: must be at least 1"),
    (["distill", "--teacher", "{model}", "--data", "{csv}", "--student-config", "{{bad", "--output", "{dir}/d"],
     "--student-config: invalid JSON"),
    (["distill", "--teacher", "{model}", "--data", "{csv}", "--student-config", "{dir}/none.json", "--output", "{dir}/d"],
     "--student-config: "),
    (["distill", "--teacher", "{model}", "--data", "{csv}", "--weight", "cosine", "--output", "{dir}/d"],
     "--weight expects TERM=NUMBER"),
    (["distill", "--teacher", "{model}", "--data", "{csv}", "--student-layers", "0,x", "--output", "{dir}/d"],
     "--student-layers"),
    (["distill", "--teacher", "{model}", "--data", "{csv}", "--label-column", "sentiment", "--recipe", "nope",
      "--output", "{dir}/d"], "no shipped recipe of that name"),
    (["distill", "--teacher", "{encoder}", "--data", "{csv}", "--label-column", "sentiment", "--output", "{dir}/d"],
     "was never fine-tuned"),
    (["distill", "--teacher", "{dir}/nothing-here", "--data", "{csv}", "--output", "{dir}/d"], "unknown model"),
    (["evaluate", "--model", "{model}", "--data", "{csv}", "--label-column", "sentiment", "--split", "test"],
     "no 'test' split"),
    (["evaluate", "--model", "{model}", "--data", "{csv}", "--output", "{dir}"], "argument --output:"),
    (["embed", "--model", "{model}", "--data", "{dir}/missing.csv"], "missing.csv: no such file"),
    (["predict", "--model", "{model}"], "needs either --text"),
    (["predict", "--model", "{model}", "--input", "{dir}/texts.txt"], "texts.txt: no such file (--input)"),
    (["predict", "--model", "{encoder}", "--text", "hi"], "has no task head"),
    (["cache", "list", "--cache-dir", "{taken}"], "is a file"),
]


@pytest.mark.parametrize("argv,expected", BAD, ids=[" ".join(a[:2]) + f" [{e[:24]}]" for a, e in BAD])
def test_bad_input_gives_one_line_and_exit_code_2(capsys, files, argv, expected):
    argv = [a.format(**files) for a in argv]
    code, err = call(capsys, argv)
    assert code == 2, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err
    assert expected in errors[0], err


def test_untrained_teacher_message_gives_the_finetune_command(capsys, files):
    code, err = call(capsys, ["distill", "--teacher", files["encoder"], "--data", files["csv"],
                              "--label-column", "sentiment", "--output", str(files["dir"] / "d")])
    assert code == 2
    assert f"bertdistill finetune --model {files['encoder']} --data {files['csv']} --label-column sentiment" in err
    assert "--allow-untrained-teacher" in err


def test_offline_hub_id_is_one_clear_line(capsys, files, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, err = call(capsys, ["predict", "--model", "bert-base-uncased", "--text", "hi"])
    assert code == 2 and "Traceback" not in err
    assert "model 'bert-base-uncased' is not a local folder and could not be loaded from the Hugging Face hub" in err


def test_weights_accept_the_documented_forms():
    assert term_weights(["kd_kl=0,cosine=0.5", "hard=2"]) == {"kd_kl": 0.0, "cosine": 0.5, "hard": 2.0}
    assert term_weights([]) is None
    args = build_parser().parse_args(["distill", "--teacher", "t", "--output", "o", "--weights", "a=0,b=1"])
    assert term_weights(args.weight) == {"a": 0.0, "b": 1.0}
    for bad in (["a"], ["a=x"], ["=1"]):
        with pytest.raises(ValueError, match="--weight expects"):
            term_weights(bad)


def test_help_has_text_and_defaults_for_every_option():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name, sub in commands.items():
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help text"
    distill_help = commands["distill"].format_help()
    assert "come from the recipe" in distill_help and "default: the recipe's" in distill_help
    assert "~/.cache/bertdistill/teacher" in distill_help
    finetune_help = commands["finetune"].format_help()
    assert "(default: 5e-05)" in finetune_help and "(default: 0.1)" in finetune_help
    assert "~/.cache/bertdistill/teacher" in parser.format_help()


def test_verbose_after_the_command_shows_the_traceback(files):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    argv = [sys.executable, "-m", "bertdistill.cli", "predict", "--model", files["model"], "--input",
            str(files["dir"] / "texts.txt")]
    quiet = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    assert quiet.returncode == 2 and "Traceback" not in quiet.stderr
    assert quiet.stderr.strip() == f"bertdistill predict: error: {files['dir'] / 'texts.txt'}: no such file (--input)"
    loud = subprocess.run(argv + ["--verbose"], capture_output=True, text=True, env=env, timeout=600)
    assert loud.returncode != 0 and "Traceback" in loud.stderr and "DataError" in loud.stderr
