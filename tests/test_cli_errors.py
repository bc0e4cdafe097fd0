"""Every error a user can cause ends in one line naming the flag, file or value, exit code 2.

The commands are walked in-process through ``bertdistill.cli.main`` with bad inputs; one
subprocess run checks the real entry point and ``--verbose`` after the subcommand.
"""

from __future__ import annotations

import argparse
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
    """A good CSV, a broken CSV, a file in the way of --output, a 'fine-tuned' tiny model, a tiny
    masked-LM teacher and a prepared corpus."""
    from tiny import save_tiny_bert

    from bertdistill.corpus import prepare_corpus

    d = tmp_path_factory.mktemp("bad_inputs")
    (d / "reviews.csv").write_text("text,sentiment\n" + "".join(
        f"review {i},{'pos' if i % 2 else 'neg'}\n" for i in range(20)))
    (d / "broken.csv").write_text("text,sentiment\nfine,pos\ntoo,many,fields\n")
    (d / "taken").write_text("a file, not a folder\n")
    (d / "notes.txt").write_text("hello\n")
    model = save_tiny_bert(d / "model", kind="sequence", num_labels=2, seed=0)
    (Path(model) / "labels.json").write_text(json.dumps(
        {"task": "csv", "kind": "classification", "labels": ["neg", "pos"], "metrics": ["accuracy"], "pair": False}))
    mlm = save_tiny_bert(d / "mlm", kind="mlm", seed=0)
    (d / "lines.txt").write_text("".join(f"the movie number {i} was good and the plot was fine\n" for i in range(40)))
    prepare_corpus([str(d / "lines.txt")], str(model), d / "corpus", min_length=3, max_unk_ratio=1.0, progress=False)
    return {"dir": d, "csv": str(d / "reviews.csv"), "broken": str(d / "broken.csv"), "taken": str(d / "taken"),
            "txt": str(d / "notes.txt"), "model": str(model), "encoder": str(tiny_encoder_dir), "mlm": str(mlm),
            "corpus": str(d / "corpus")}


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
    (["finetune", "--data", "{csv}", "--dropout-draws", "byte", "--output", "{dir}/o"],
     "argument --dropout-draws: invalid choice: 'byte'"),
    (["distill", "--teacher", "{model}", "--data", "{csv}", "--cpu-allocator", "tcmalloc", "--output", "{dir}/d"],
     "argument --cpu-allocator: invalid choice: 'tcmalloc'"),
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
    (["demo", "--output", "{taken}"], "argument --output:"),
    (["demo", "--teacher-epochs", "0"], "argument --teacher-epochs: must be greater than 0"),
    (["demo", "--latency-runs", "many"], "argument --latency-runs: expected a whole number"),
    (["augment", "--data", "{dir}/missing.csv", "--output", "{dir}/a.jsonl"], "missing.csv: no such file"),
    (["augment", "--data", "{csv}", "--label-column", "stars", "--output", "{dir}/a.jsonl"],
     "no label column 'stars'"),
    (["augment", "--data", "{csv}", "--label-column", "sentiment", "--method", "nope", "--output", "{dir}/a.jsonl"],
     "unknown --method 'nope'"),
    (["augment", "--data", "{csv}", "--label-column", "sentiment", "--copies", "0", "--output", "{dir}/a.jsonl"],
     "--copies must be >= 1"),
    (["augment", "--data", "{csv}", "--label-column", "sentiment", "--method", "shuffle"], "--output is required"),
    (["augment", "--data", "{csv}", "--validation-split", "2", "--output", "{dir}/a.jsonl"], "--validation-split"),
    (["corpus", "prepare", "--text", "{dir}/missing.txt", "--tokenizer", "{model}", "--output", "{dir}/c"],
     "--text {dir}/missing.txt: no such file"),
    (["corpus", "prepare", "--text", "{txt}", "--tokenizer", "{model}", "--output", "{taken}"],
     "--output {taken} is a file"),
    (["corpus", "prepare", "--text", "{txt}", "--tokenizer", "{model}", "--output", "{dir}/c", "--max-length", "0"],
     "--max-length must be >= 3"),
    (["corpus", "prepare", "--text", "{txt}", "--tokenizer", "{model}", "--output", "{dir}/c", "--workers", "0"],
     "--workers must be >= 1"),
    (["corpus", "info", "{dir}/nothere"], "nothere does not exist"),
    (["mlm-head", "--model", "{model}", "--corpus", "{dir}/nothere", "--output", "{dir}/m"], "--corpus {dir}/nothere"),
    (["mlm-head", "--model", "{model}", "--corpus", "{corpus}", "--output", "{taken}"], "argument --output:"),
    (["mlm-head", "--model", "{model}", "--corpus", "{corpus}", "--output", "{dir}/m", "--max-steps", "0"],
     "--max-steps must be at least 1"),
    (["mlm-head", "--model", "{model}", "--corpus", "{corpus}", "--output", "{dir}/m", "--mlm-probability", "2"],
     "--mlm-probability must be in (0, 1]"),
    (["mlm-head", "--model", "{dir}/nothing-here", "--corpus", "{corpus}", "--output", "{dir}/m"],
     "unknown model '{dir}/nothing-here'"),
    (["general-distill", "--teacher", "{dir}/nothing-here", "--corpus", "{corpus}", "--output", "{dir}/g"],
     "unknown model '{dir}/nothing-here'"),
    (["general-distill", "--teacher", "{mlm}", "--corpus", "{dir}/nothere", "--output", "{dir}/g"], "--corpus"),
    (["general-distill", "--teacher", "{mlm}", "--corpus", "{corpus}", "--eval-corpus", "{dir}/nothere",
      "--output", "{dir}/g"], "--eval-corpus"),
    (["general-distill", "--teacher", "{mlm}", "--corpus", "{corpus}", "--recipe", "nope", "--output", "{dir}/g"],
     "no shipped recipe of that name"),
    (["general-distill", "--teacher", "{mlm}", "--corpus", "{corpus}", "--student-config", "{{bad",
      "--output", "{dir}/g"], "--student-config: invalid JSON"),
    (["general-distill", "--teacher", "{mlm}", "--corpus", "{corpus}", "--weight", "x", "--output", "{dir}/g"],
     "--weight expects TERM=NUMBER"),
    (["general-distill", "--teacher", "{mlm}", "--corpus", "{corpus}", "--weight", "nope=1", "--output", "{dir}/g"],
     "--weight: recipe general_distilbert has no term named nope"),
    (["general-distill", "--teacher", "{mlm}", "--corpus", "{corpus}", "--student-layers", "9", "--output", "{dir}/g"],
     "--student-layers 9 is not possible for a teacher with 2 layers"),
    (["general-distill", "--teacher", "{mlm}", "--corpus", "{corpus}", "--student-layers", "0,x",
      "--output", "{dir}/g"], "--student-layers: unknown layer selection '0,x'"),
    (["distill", "--teacher", "{model}", "--data", "{csv}", "--label-column", "sentiment", "--weight", "nope=1",
      "--output", "{dir}/d"], "--weight: recipe distilbert has no term named nope"),
    (["export", "{dir}/nothing-here"], "unknown model '{dir}/nothing-here'"),
    (["export", "{encoder}"], "has no labels.json"),
    (["export", "{model}", "--format", "tflite"], "--format 'tflite' is not supported"),
    (["export", "{model}", "--opset", "3"], "--opset 3 is out of range"),
    (["export", "{model}", "--parity-examples", "0"], "--parity-examples must be at least 1"),
    (["export", "{model}", "--data", "{dir}/missing.csv"], "missing.csv: no such file"),
    (["export", "{model}", "--data", "{csv}", "--label-column", "stars"], "no label column 'stars'"),
    (["export", "{model}", "--data", "{csv}", "--validation-split", "2"], "argument --validation-split"),
    (["benchmark", "{dir}/nothing-here"], "unknown model '{dir}/nothing-here'"),
    (["benchmark", "{txt}"], "is a file"),
    (["benchmark", "{model}", "--lengths", "a,b"], "--lengths expects comma-separated integers"),
    (["benchmark", "{model}", "--formats", "tensorrt"], "--formats: unknown tensorrt"),
    (["benchmark", "{model}", "--devices", "tpu"], "--devices expects cpu and/or cuda"),
    (["benchmark", "{model}", "--runs", "0"], "--runs"),
    (["benchmark", "{model}", "--names", "a,b"], "--names gives 2 names for 1 MODEL_DIRs"),
    (["benchmark", "{model}", "--labels", ","], "argument --labels: expected a comma-separated list"),
    (["report", "{dir}/nothing-here"], "{dir}/nothing-here does not exist"),
    (["report", "{model}"], "is not a finished run folder"),
    (["report", "{model}", "--formats", "x"], "--formats: choose from"),
    (["report", "{model}", "--runs", "0"], "--runs must be positive"),
    (["report", "{model}", "--lengths", "a"], "--lengths expects comma-separated integers"),
]
# gaps in files outside this change (bertdistill/corpus/counts.py, bertdistill/commands/general.py)
BAD += [
    (["mlm-head", "--model", "{model}", "--corpus", "{corpus}", "--output", "{dir}/m", "--smoothing", "-1"],
     "--smoothing must be >= 0"),
    (["general-distill", "--teacher", "{mlm}", "--corpus", "{corpus}", "--student-config", "{dir}/none.json",
      "--output", "{dir}/g"], "--student-config"),
]


@pytest.mark.parametrize("argv,expected", BAD, ids=[" ".join(a[:2]) + f" [{e[:24]}]" for a, e in BAD])
def test_bad_input_gives_one_line_and_exit_code_2(capsys, files, argv, expected):
    argv = [a.format(**files) for a in argv]
    expected = expected.format(**files)
    code, err = call(capsys, argv)
    assert code == 2, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err
    assert expected in errors[0], err


def test_a_bare_name_that_is_no_folder_is_not_a_model_folder(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # "nothere" looks like a hub id to the model resolver; no config.json to read
    code, err = call(capsys, ["benchmark", "nothere"])
    assert code == 2 and "Errno" not in err and "Traceback" not in err
    assert err.strip() == ("bertdistill benchmark: error: nothere is not a model folder: no such folder "
                           "(give a folder saved by `bertdistill finetune`, `distill` or `export`)")


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
    assert "(default: torch)" in finetune_help and "(default: keep)" in finetune_help
    assert "default: the recipe's, else torch" in " ".join(commands["general-distill"].format_help().split())
    # every option with a default worth showing says it, in every command and sub-command
    from bertdistill.commands.options import HelpFormatter

    def walk(p, name):
        yield name, p
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub_name, sub in action.choices.items():
                    yield from walk(sub, f"{name} {sub_name}")

    for name, sub in walk(parser, "bertdistill"):
        assert sub.formatter_class is HelpFormatter, name
        formatter = sub._get_formatter()
        for action in sub._actions:
            shown = action.default not in (None, False, argparse.SUPPRESS, []) and action.nargs != 0
            if action.option_strings and shown:
                assert "default" in formatter._get_help_string(action), f"{name} {action.option_strings}"
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
