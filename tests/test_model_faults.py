"""Damaged or mismatched models and files: one line naming the file, option or cause, exit code 2.

Each case builds the bad input for real (a truncated weights file, a config field of the
wrong type, a tokenizer of another size, a model of another task...), runs the CLI entry
point in-process and checks the exit code and that the message names what is wrong.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from bertdistill.cli import main

LABELS = {"task": "csv", "kind": "classification", "labels": ["neg", "pos"], "metrics": ["accuracy"], "pair": False}


def call(capsys, argv: list[str]) -> tuple[int, str, str]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(code: int, err: str) -> str:
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("bertdistill ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    from tiny import save_tiny_bert

    root = tmp_path_factory.mktemp("faults")
    (root / "reviews.csv").write_text("text,sentiment\n" + "".join(
        f"a {'good' if i % 2 else 'bad'} movie number {i},{'pos' if i % 2 else 'neg'}\n" for i in range(30)))
    (root / "pairs.csv").write_text("text,other,label\n" + "".join(
        f"the film {i},a movie {i},{'pos' if i % 2 else 'neg'}\n" for i in range(30)))
    model = save_tiny_bert(root / "model", kind="sequence", num_labels=2, seed=0)
    (model / "labels.json").write_text(json.dumps(LABELS))
    return root


def copy_model(d: Path, name: str) -> Path:
    target = d / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(d / "model", target)
    return target


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


# ---- tokenizer ----------------------------------------------------------------------------

def test_folder_without_tokenizer_files_is_refused(capsys, d):
    bad = copy_model(d, "no_tokenizer")
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        (bad / name).unlink()
    line = one_line_error(*call(capsys, ["predict", "--model", bad, "--text", "a good movie"])[::2])
    assert f"{bad} has no tokenizer files" in line


def test_tokenizer_larger_than_the_embeddings_is_refused(capsys, d, tmp_path):
    from tiny import make_tiny_bert, make_tiny_tokenizer

    tokenizer = make_tiny_tokenizer(tmp_path / "tok")
    model = make_tiny_bert(tokenizer, vocab_size=100)  # ids 100..239 would index past the embeddings
    folder = tmp_path / "small_vocab"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "labels.json").write_text(json.dumps(LABELS))
    line = one_line_error(*call(capsys, ["predict", "--model", folder, "--text", "a good movie"])[::2])
    assert f"{folder}: the tokenizer has {len(tokenizer)} tokens but the model's embeddings have 100 rows" in line


# ---- damaged files ------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["predict", "distill", "benchmark", "export", "embed"])
@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_damaged_safetensors_is_named_by_every_command(capsys, d, command, damage):
    bad = copy_model(d, f"weights_{damage}")
    weights = bad / "model.safetensors"
    truncate(weights, 0.5 if damage == "truncated" else 0.0)
    argv = {
        "predict": ["predict", "--model", bad, "--text", "a good movie"],
        "distill": ["distill", "--teacher", bad, "--data", d / "reviews.csv", "--label-column", "sentiment",
                    "--output", d / "out_distill"],
        "benchmark": ["benchmark", bad, "--runs", "1", "--formats", "pytorch-fp32"],
        "export": ["export", bad, "--output", d / "out_export"],
        "embed": ["embed", "--model", bad, "--data", d / "reviews.csv", "--label-column", "sentiment"],
    }[command]
    line = one_line_error(*call(capsys, argv)[::2])
    assert f"{weights}: " in line
    assert ("empty file" if damage == "empty" else "damaged safetensors file") in line
    assert not (d / "out_distill").exists() and not (d / "out_export").exists()


@pytest.mark.parametrize("field,value,expected", [
    ("hidden_size", "32", "Field 'hidden_size' expected int, got str"),
    ("num_hidden_layers", 2.5, "Field 'num_hidden_layers' expected int, got float"),
    ("num_labels", "2", "field 'num_labels' must be a positive integer"),
    ("id2label", ["neg", "pos"], "field 'id2label' must be an object"),
])
def test_config_field_of_the_wrong_type_is_named(capsys, d, field, value, expected):
    bad = copy_model(d, "bad_config")
    config = json.loads((bad / "config.json").read_text())
    config[field] = value
    (bad / "config.json").write_text(json.dumps(config))
    line = one_line_error(*call(capsys, ["predict", "--model", bad, "--text", "a good movie"])[::2])
    assert f"{bad / 'config.json'}: {expected}" in line


def test_config_that_is_not_json_is_named_with_its_line(capsys, d):
    bad = copy_model(d, "bad_json")
    (bad / "config.json").write_text('{\n  "model_type": "bert",\n  "hidden_size": 32,,\n}')
    line = one_line_error(*call(capsys, ["predict", "--model", bad, "--text", "hi"])[::2])
    assert f"{bad / 'config.json'}:3: not valid JSON" in line


def test_truncated_onnx_is_named(capsys, d):
    from bertdistill.export import export_model

    out = d / "model-onnx"
    if not out.exists():
        export_model(str(d / "model"), "onnx", out, evaluate=False)
    rows = call(capsys, ["predict", "--model", out, "--text", "a good movie"])
    assert rows[0] == 0  # the intact export predicts
    bad = d / "model-onnx-cut"
    shutil.rmtree(bad, ignore_errors=True)
    shutil.copytree(out, bad)
    truncate(bad / "model.onnx", 0.3)
    line = one_line_error(*call(capsys, ["predict", "--model", bad, "--text", "a good movie"])[::2])
    assert f"{bad / 'model.onnx'}: ONNX Runtime cannot load this model" in line and "export the model again" in line


# ---- lengths ------------------------------------------------------------------------------

@pytest.mark.parametrize("argv,flag", [
    (["predict", "--model", "{model}", "--text", "hi", "--max-length", "129"], "--max-length 129"),
    (["finetune", "--model", "{model}", "--data", "{csv}", "--label-column", "sentiment", "--max-length", "600",
      "--output", "{d}/ft"], "--max-length 600"),
    (["benchmark", "{model}", "--lengths", "16,600", "--formats", "pytorch-fp32"], "--lengths 600"),
])
def test_length_beyond_the_position_embeddings_is_refused(capsys, d, argv, flag):
    argv = [a.format(model=d / "model", csv=d / "reviews.csv", d=d) for a in argv]
    line = one_line_error(*call(capsys, argv)[::2])
    assert flag in line and "128 tokens (config.json max_position_embeddings 128)" in line
    assert not (d / "ft").exists()


def test_usable_length_of_roberta_leaves_out_the_padding_offset():
    from bertdistill.models.checks import usable_positions

    assert usable_positions({"model_type": "bert", "max_position_embeddings": 512}) == 512
    assert usable_positions({"model_type": "roberta", "max_position_embeddings": 514, "pad_token_id": 1}) == 512
    assert usable_positions({"model_type": "bilstm"}) is None


# ---- BiLSTM students -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def bilstm(d):
    from bertdistill.students.bilstm import BiLSTMClassifier, BiLSTMConfig, WordTokenizer, save_bilstm

    words = WordTokenizer.build(["a good movie", "a bad film", "great fun"])
    torch.manual_seed(3)
    config = BiLSTMConfig(vocab_size=len(words), num_labels=2, embedding_dim=8, hidden_size=6, mlp_size=5,
                          dropout=0.0, embeddings="random", id2label={0: "neg", 1: "pos"})
    model = BiLSTMClassifier(config)
    with torch.no_grad():  # a head that reads "good" as positive and "bad" as negative, for a checkable answer
        model.embeddings.weight[words.ids["good"]] = 3.0
        model.embeddings.weight[words.ids["bad"]] = -3.0
    return save_bilstm(model.eval(), words, d / "bilstm"), model.eval(), words


def test_bilstm_student_predicts_through_the_cli(capsys, bilstm):
    folder, model, words = bilstm
    code, out, err = call(capsys, ["predict", "--model", folder, "--text", "a good movie", "--text", "bad film"])
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    for row, text in zip(rows, ["a good movie", "bad film"]):
        with torch.no_grad():
            probs = model(torch.tensor([words.encode(text)])).logits.softmax(-1)[0]
        assert row["probabilities"]["neg"] == pytest.approx(float(probs[0]), abs=1e-6)
        assert row["label"] == ["neg", "pos"][int(probs.argmax())]
    assert rows[0]["probabilities"] != rows[1]["probabilities"]


@pytest.mark.parametrize("argv,expected", [
    (["distill", "--teacher", "{b}", "--data", "{csv}", "--label-column", "sentiment", "--output", "{d}/bd"],
     "is a word-level BiLSTM student"),
    (["mlm-head", "--model", "{b}", "--corpus", "{d}", "--output", "{d}/bm"], "is a word-level BiLSTM student"),
    (["export", "{b}", "--output", "{d}/be"], "there is no ONNX export for BiLSTM students yet"),
])
def test_bilstm_student_where_it_does_not_fit_says_so(capsys, d, bilstm, argv, expected):
    argv = [a.format(b=bilstm[0], csv=d / "reviews.csv", d=d) for a in argv]
    line = one_line_error(*call(capsys, argv)[::2])
    assert f"{bilstm[0]} " in line and expected in line
    assert "does not recognize this architecture" not in line


# ---- models of another task ----------------------------------------------------------------

def test_single_sentence_teacher_on_sentence_pairs_is_refused(capsys, d):
    argv = ["distill", "--teacher", d / "model", "--data", d / "pairs.csv", "--text-column", "text",
            "--text-pair-column", "other", "--output", d / "pair_student", "--max-steps", "1"]
    line = one_line_error(*call(capsys, argv)[::2])
    assert f"{d / 'model'} was trained for 'csv' on single sentences" in line and "gives sentence pairs" in line


def test_labels_in_another_order_are_refused_other_names_warned(capsys, d):
    base = ["evaluate", "--model", d / "model", "--data", d / "reviews.csv", "--label-column", "sentiment"]
    line = one_line_error(*call(capsys, base + ["--labels", "pos,neg"])[::2])
    assert "has the labels of task 'csv' in another order (neg, pos against pos, neg)" in line
    (d / "renamed.csv").write_text((d / "reviews.csv").read_text().replace(",neg", ",bad").replace(",pos", ",good"))
    renamed = ["evaluate", "--model", d / "model", "--data", d / "renamed.csv", "--label-column", "sentiment",
               "--labels", "bad,good"]
    with pytest.warns(UserWarning, match="with labels neg, pos, not the labels bad, good of task 'csv'"):
        code, out, err = call(capsys, renamed)
    assert code == 0, err


def test_model_without_a_trained_head_is_refused_by_evaluate(capsys, d, tiny_encoder_dir):
    argv = ["evaluate", "--model", tiny_encoder_dir, "--data", d / "reviews.csv", "--label-column", "sentiment"]
    line = one_line_error(*call(capsys, argv)[::2])
    assert f"{tiny_encoder_dir} has no trained task head (BertModel in config.json)" in line


# ---- input files and outputs ---------------------------------------------------------------

@pytest.mark.parametrize("content,expected", [
    ("hello\nworld\n".encode("utf-16"), "UTF-16 text (byte-order mark)"),
    (b"hello\n\x89PNG\x00\x00", ":2: binary file or UTF-16 text (NUL byte at offset 10)"),
    (b"ok\ncaf\xe9\n", ":2: not UTF-8 text (invalid byte 0xe9 at offset 6)"),
])
def test_predict_input_that_is_not_utf8_is_named(capsys, d, tmp_path, content, expected):
    path = tmp_path / "texts.txt"
    path.write_bytes(content)
    line = one_line_error(*call(capsys, ["predict", "--model", d / "model", "--input", path])[::2])
    assert f"{path}{expected}" in line if expected.startswith(":") else f"{path}: {expected}" in line


@pytest.fixture(scope="module")
def finetune_run(d):
    """A finished finetune run folder (results.json + best/), written by hand."""
    run = d / "run"
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(d / "model", run / "best")
    (run / "results.json").write_text(json.dumps({
        "task": "csv", "model": "minilm-l6", "best_dir": str(run / "best"), "dev": {"accuracy": 0.5},
        "config": {"task": None, "data": str(d / "reviews.csv"),
                   "data_options": {"label_column": "sentiment", "validation_split": 0.2}}}))
    return run


def test_report_refuses_a_file_as_output_before_benchmarking(capsys, d, finetune_run, tmp_path):
    taken = tmp_path / "report.txt"
    taken.write_text("not a folder")
    line = one_line_error(*call(capsys, ["report", finetune_run, "--output", taken, "--runs", "1"])[::2])
    assert f"--output {taken}: this is an existing file" in line
    assert not (finetune_run / "best-onnx").exists()  # nothing was exported or measured


def test_report_names_a_benchmark_file_that_is_not_json(capsys, finetune_run, tmp_path):
    bench = tmp_path / "bench.json"
    bench.write_text('{"rows": [\n  {"model": 1,}\n]}')
    line = one_line_error(*call(capsys, ["report", finetune_run, "--benchmark", bench,
                                         "--output", tmp_path / "r"])[::2])
    assert f"{bench}:2: not valid JSON" in line


def test_export_without_data_uses_the_runs_data(capsys, finetune_run, tmp_path):
    code, out, err = call(capsys, ["export", finetune_run / "best", "--output", tmp_path / "e", "--no-eval"])
    assert code == 0, err
    assert f"parity and dev data: the run's data {finetune_run.parent / 'reviews.csv'}" in out
    manifest = json.loads((tmp_path / "e" / "export.json").read_text())
    assert manifest["parity"]["inputs"] == "csv dev" and manifest["parity"]["compared"] == 6  # 20 % of 30 rows


# ---- benchmark notes -----------------------------------------------------------------------

def test_benchmark_says_why_bf16_is_not_timed_and_shows_progress(capsys, d, monkeypatch):
    from bertdistill.bench import runner

    monkeypatch.setattr(runner, "cpu_has_bf16", lambda: False)
    result = runner.run_benchmark([str(d / "model")], formats=["pytorch-fp32", "pytorch-bf16"], lengths=[8],
                                  runs=3, warmup=0, throughput_batch=2, throughput_runs=3, devices=["cpu"])
    err = capsys.readouterr().err
    assert "pytorch-bf16 on cpu is not timed: this CPU has no bf16 instructions" in err
    assert "6/6" in err  # (3 latency + 3 throughput rounds) x 1 candidate
    assert {r["format"] for r in result["rows"]} == {"pytorch-fp32"}


def test_held_out_dev_notice_is_printed_once_per_process(capsys, tmp_path):
    from bertdistill.data import load_task

    path = tmp_path / "single.csv"
    path.write_text("text,label\n" + "".join(f"row {i},{i % 2}\n" for i in range(20)))
    for _ in range(3):
        load_task(None, str(path), validation_split=0.1)
    assert capsys.readouterr().err.count("held out as dev") == 1


def test_default_max_length_is_cut_to_a_shorter_model(capsys, tmp_path):
    from tiny import make_tiny_bert, make_tiny_tokenizer

    tokenizer = make_tiny_tokenizer(tmp_path / "tok")
    folder = tmp_path / "short"
    make_tiny_bert(tokenizer, max_position_embeddings=16).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "labels.json").write_text(json.dumps(LABELS))
    long_text = " ".join(["the good movie"] * 20)  # 60 words: past 16 positions unless cut
    code, out, err = call(capsys, ["predict", "--model", folder, "--text", long_text])
    assert code == 0, err
    assert "--max-length 128 (the default) cut to 16" in err and json.loads(out)["label"] in ("neg", "pos")
    line = one_line_error(*call(capsys, ["predict", "--model", folder, "--text", "hi", "--max-length", "17"])[::2])
    assert "--max-length 17 is longer than" in line
