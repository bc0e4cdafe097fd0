"""Serving extractive QA: ONNX export (fp32 / int8) with span parity, evaluate / predict on the
export, benchmarks at QA lengths, EM / F1 in the report."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from bertdistill import api
from bertdistill.cli import main
from bertdistill.export import ParityError, export_model, load_for_inference
from bertdistill.export.qa import trained_qa_options
from bertdistill.models.loading import save_model
from test_qa_finetune import write_folder

WINDOWS = {"max_length": 48, "doc_stride": 16, "max_question_length": 8}
FLAGS = ["--max-length", "48", "--doc-stride", "16", "--max-question-length", "8"]
# hand-made questions; the last context is long enough for several 48-token windows
QUESTIONS = [
    ("where is it ?", "the movie was good and london is very long"),
    ("where is it ?", "berlin and a car"),
    ("where is it ?", "a man and a woman in paris"),
    ("where is it ?", " ".join(["the film was long and the day was cold"] * 6 + ["we went to germany"]
                               + ["a man and a woman walk on the road at night"] * 4)),
]


@pytest.fixture(scope="module")
def qa_run(tiny_encoder_dir, tmp_path_factory):
    """A tiny BERT fine-tuned on synthetic questions, in 48-token windows with a stride of 16."""
    data = write_folder(tmp_path_factory.mktemp("qa_export_data"))
    out = tmp_path_factory.mktemp("qa_export_run")
    api.finetune("squad", str(tiny_encoder_dir), str(out), str(data), max_length=WINDOWS["max_length"],
                 qa_options={k: v for k, v in WINDOWS.items() if k != "max_length"},
                 train={"epochs": 12, "lr": 2e-3, "batch_size": 8, "seed": 3, "warmup_ratio": 0.0})
    return data, out


@pytest.fixture(scope="module")
def qa_fp32(qa_run, tmp_path_factory):
    data, out = qa_run
    return export_model(str(out / "best"), "onnx", tmp_path_factory.mktemp("qa_onnx") / "fp32", data=str(data))


def _answers(model, with_flags: bool):
    options = {"doc_stride": 16, "max_question_length": 8} if with_flags else None
    return api.answer(model, [q for q, _ in QUESTIONS], [c for _, c in QUESTIONS],
                      max_length=48 if with_flags else None, qa_options=options)


def test_fp32_export_carries_the_windows_and_answers_like_pytorch(qa_run, qa_fp32):
    _, out = qa_run
    manifest = json.loads(open(f"{qa_fp32['output']}/export.json").read())
    assert manifest["outputs"] == ["start_logits", "end_logits"] and manifest["task"] == "squad"
    assert {k: manifest["qa_options"][k] for k in WINDOWS} == WINDOWS  # the run's, from its results.json
    parity = manifest["parity"]
    assert parity["measure"] == "answer spans" and parity["ok"]
    assert parity["agreement"] == 1.0 and parity["answer_f1"] == 1.0 and parity["max_abs_diff"] < 1e-4
    assert parity["compared"] == 16 and parity["inputs"] == "squad dev"
    metrics = manifest["evaluation"]["metrics"]
    assert metrics["onnx"]["exact_match"] == metrics["pytorch"]["exact_match"] >= 0.75
    assert metrics["onnx"]["f1"] == pytest.approx(metrics["pytorch"]["f1"])
    # the export, read with its own window options, answers the hand-made questions as PyTorch does
    # when told the same windows; the long context really is cut into several windows
    from bertdistill.data.examples import Example
    from bertdistill.data.qa_features import QaOptions, encode_qa
    from bertdistill.models.loading import load_tokenizer

    windows = encode_qa([Example(*QUESTIONS[-1], None, "", "q")], load_tokenizer(str(out / "best")),
                        QaOptions(**WINDOWS))
    assert len(windows) >= 3
    onnx, pt = _answers(qa_fp32["output"], with_flags=False), _answers(str(out / "best"), with_flags=True)
    assert [(r["answer"], r["start"], r["end"]) for r in onnx] == [(r["answer"], r["start"], r["end"]) for r in pt]
    assert [r["score"] for r in onnx] == pytest.approx([r["score"] for r in pt], abs=1e-4)
    assert [r["answer"] for r in pt[:3]] == ["london", "berlin", "paris"]


def test_the_graph_outputs_start_and_end_logits_at_any_batch_and_length(qa_run, qa_fp32):
    _, out = qa_run
    exported, ref = load_for_inference(qa_fp32["output"]), load_for_inference(str(out / "best"))
    assert exported.output_names == ["start_logits", "end_logits"]
    for batch, length in ((1, 5), (3, 40)):
        ids = torch.randint(5, 100, (batch, length))
        mask, types = torch.ones_like(ids), torch.zeros_like(ids)
        types[:, length // 2:] = 1
        got = exported(input_ids=ids, attention_mask=mask, token_type_ids=types)
        with torch.no_grad():
            want = ref(input_ids=ids, attention_mask=mask, token_type_ids=types)
        for name in ("start_logits", "end_logits"):
            assert getattr(got, name).shape == (batch, length)
            assert torch.allclose(getattr(got, name), getattr(want, name), atol=1e-4)


def test_evaluate_and_predict_commands_on_the_export_equal_pytorch(qa_run, qa_fp32, tmp_path, capsys):
    data, out = qa_run
    export = qa_fp32["output"]
    assert main(["evaluate", "--task", "squad", "--data", str(data), "--model", export, "--split", "dev",
                 "--output", str(tmp_path / "onnx.json")]) == 0  # no window flags: the export's own
    assert main(["evaluate", "--task", "squad", "--data", str(data), "--model", str(out / "best"), "--split", "dev",
                 *FLAGS, "--output", str(tmp_path / "pt.json")]) == 0
    onnx = json.loads((tmp_path / "onnx.json").read_text())["metrics"]
    pt = json.loads((tmp_path / "pt.json").read_text())["metrics"]
    assert onnx == pytest.approx(pt) and pt["questions"] == 16
    capsys.readouterr()
    rows = []
    for model, flags in ((export, []), (str(out / "best"), FLAGS)):
        assert main(["predict", "--model", model, "--question", QUESTIONS[0][0], "--context", QUESTIONS[0][1],
                     *flags]) == 0
        rows.append(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))
    assert rows[0]["answer"] == rows[1]["answer"] == "london"
    assert rows[0]["score"] == pytest.approx(rows[1]["score"], abs=1e-4)


def test_the_exported_predict_script_answers_questions(qa_fp32):
    out = qa_fp32["output"]
    proc = subprocess.run([sys.executable, f"{out}/predict.py", "--question", "where is it ?", "--context",
                           "a man and a woman in paris"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (row["answer"], row["start"], row["end"]) == ("paris", 21, 26)


def test_int8_export_passes_its_span_rule_and_a_broken_export_is_refused(qa_run, tmp_path, monkeypatch, capsys):
    data, out = qa_run
    code = main(["export", str(out / "best"), "--format", "onnx-int8", "--data", str(data),
                 "--output", str(tmp_path / "int8")])
    assert code == 0
    manifest = json.loads((tmp_path / "int8" / "export.json").read_text())
    assert manifest["quantization"] and manifest["qa_options"]["max_length"] == 48
    assert manifest["parity"]["ok"] and manifest["parity"]["agreement"] >= 0.8
    assert manifest["parity"]["max_diff_bound"] == 5.0 and manifest["parity"]["min_agreement_bound"] == 0.8
    assert manifest["evaluation"]["metrics"]["onnx-int8"]["exact_match"] >= 0.6
    # an export whose end logits are shifted one token to the left: every span moves, none agrees
    from bertdistill.export import package
    from bertdistill.export.runtime import OnnxModel

    class ShiftedEnds(OnnxModel):
        def forward(self, input_ids, attention_mask=None, token_type_ids=None):
            out_ = super().forward(input_ids, attention_mask, token_type_ids)
            out_.end_logits = torch.roll(out_.end_logits, -1, dims=1)
            return out_

    monkeypatch.setattr(package, "OnnxModel", ShiftedEnds)
    with pytest.raises(ParityError, match=r"same answer span .* \(bound 99%\)"):
        export_model(str(out / "best"), "onnx", tmp_path / "broken", data=str(data), max_logit_diff=1e9)
    assert not (tmp_path / "broken").exists()


def test_window_flags_are_for_qa_exports_only(tiny_encoder_dir, tmp_path, capsys):
    from tiny import make_tiny_bert, make_tiny_tokenizer, tiny_task

    tok = make_tiny_tokenizer(tmp_path / "tok")
    task = tiny_task("classification")
    path = save_model(make_tiny_bert(tok), tok, tmp_path / "clf", task=task)
    code = main(["export", str(path), "--doc-stride", "16", "--output", str(tmp_path / "x")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--doc-stride: for question-answering models only" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "x").exists()


def test_the_run_window_options_of_a_distillation_are_read(tmp_path):
    (tmp_path / "student").mkdir()
    (tmp_path / "results.json").write_text(json.dumps(
        {"student_dir": str(tmp_path / "student"),
         "config": {"max_length": 256, "qa_options": {"doc_stride": 64, "max_question_length": 32, "n_best": 20,
                                                      "max_answer_length": 30, "other": 1}}}))
    assert trained_qa_options(tmp_path / "student") == {"max_length": 256, "doc_stride": 64,
                                                        "max_question_length": 32, "n_best": 20,
                                                        "max_answer_length": 30}
    assert trained_qa_options(tmp_path / "nowhere" / "model") == {}


@pytest.fixture(scope="module")
def random_qa_model(tmp_path_factory):
    """A tiny random BERT QA model with 512 positions (long enough for 384-token windows)."""
    from transformers import BertForQuestionAnswering
    from tiny import make_tiny_tokenizer, tiny_config

    from bertdistill.data import get_task_spec

    folder = tmp_path_factory.mktemp("qa_random")
    tok = make_tiny_tokenizer(folder / "tok")
    torch.manual_seed(0)
    model = BertForQuestionAnswering(tiny_config(tok, max_position_embeddings=512)).eval()
    return save_model(model, tok, folder / "qa", task=get_task_spec("squad"))


def test_benchmark_of_a_qa_model_runs_at_qa_lengths_with_pair_inputs(random_qa_model, tmp_path, capsys,
                                                                     monkeypatch):
    from bertdistill.bench.runner import token_inputs
    from bertdistill.models.loading import load_tokenizer

    monkeypatch.setenv("BERTDISTILL_DATA", str(tmp_path / "no-data"))  # parity on the built-in questions

    code = main(["benchmark", str(random_qa_model), "--formats", "pytorch-fp32,onnx-fp32", "--runs", "2",
                 "--warmup", "0", "--batch", "2", "--threads", "1", "--exports-dir", str(tmp_path / "exports"),
                 "--output", str(tmp_path / "bench.json")])
    printed = capsys.readouterr().out
    assert code == 0 and "question-answering model: timed at lengths 128,256,384" in printed
    result = json.loads((tmp_path / "bench.json").read_text())
    assert result["settings"]["lengths"] == [128, 256, 384]
    assert {(r["format"], r["length"]) for r in result["rows"]} == {
        (f, n) for f in ("pytorch-fp32", "onnx-fp32") for n in (128, 256, 384)}
    assert next(iter(result["models"].values()))["qa"] is True
    manifest = json.loads((tmp_path / "exports" / "qa-onnx" / "export.json").read_text())
    assert manifest["parity"]["inputs"].startswith("built-in questions") and manifest["parity"]["agreement"] == 1.0
    # the timed inputs are a question and a context: token types 0 then 1, exactly 384 real tokens
    arrays = token_inputs(load_tokenizer(str(random_qa_model)), 384, 1, pair=True)
    types = arrays["token_type_ids"][0]
    assert arrays["attention_mask"].sum() == 384 and types[0] == 0 and types[-1] == 1
    assert np.all(np.diff(types) >= 0)  # the question first, then the context
    code = main(["benchmark", str(random_qa_model), "--formats", "pytorch-fp32", "--lengths", "32", "--runs", "2",
                 "--warmup", "0", "--batch", "2", "--threads", "1", "--output", str(tmp_path / "b2.json")])
    assert code == 0 and json.loads((tmp_path / "b2.json").read_text())["settings"]["lengths"] == [32]


def test_report_of_a_qa_run_shows_exact_match_and_f1(qa_run, tmp_path, capsys):
    from bertdistill.report import build_report

    _, out = qa_run
    results = json.loads((out / "results.json").read_text())
    report = build_report([str(out)], tmp_path / "rep", runs=2, warmup=0, threads=1,
                          formats=["pytorch-fp32", "onnx-fp32"], exports_dir=str(tmp_path / "exports"))
    assert "lengths above 128 not timed" in capsys.readouterr().out  # QA lengths 128,256,384 cut to the model's
    assert report["main_metric"] == "exact_match" and report["extra_metrics"] == ["f1"]
    assert {r["length"] for r in report["speed"]} == {128} and report["plot_length"] == 128
    teacher = report["models"][0]
    assert teacher["metric"] == results["dev"]["exact_match"] and teacher["metrics"]["f1"] == results["dev"]["f1"]
    onnx = next(r for r in report["speed"] if r["format"] == "onnx-fp32")
    evaluation = json.loads((tmp_path / "exports" / "teacher-onnx" / "export.json").read_text())["evaluation"]
    assert onnx["metric"] == evaluation["metrics"]["onnx"]["exact_match"]
    assert onnx["f1"] == evaluation["metrics"]["onnx"]["f1"]
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "| model | kind | exact_match | retention | f1 | parameters |" in md
    assert f"| {results['dev']['f1']:.4f} |" in md and "| speed-up | exact_match | f1 |" in md


def test_evaluate_and_predict_start_from_the_windows_of_the_run_that_saved_the_model(qa_run):
    from bertdistill.export.qa import saved_qa_options
    from bertdistill.qa_prediction import checked_options

    _, out = qa_run
    options = checked_options(None, None, saved_qa_options(out / "best"))
    assert (options.max_length, options.doc_stride) == (WINDOWS["max_length"], WINDOWS["doc_stride"])
    assert checked_options(64, None, saved_qa_options(out / "best")).max_length == 64  # a flag still wins
