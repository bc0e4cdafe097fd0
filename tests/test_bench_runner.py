"""The benchmark runner and command: statistics, parameter counts, formats, interleaved rows, errors."""

from __future__ import annotations

import json

import pytest

from bertdistill.bench.runner import format_table, parameter_counts, percentile, run_benchmark, token_inputs
from bertdistill.cli import main
from bertdistill.export import load_for_inference


def test_percentile_interpolates_between_order_statistics():
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    assert percentile(values, 50) == pytest.approx(5.5)
    assert percentile(values, 90) == pytest.approx(9.1)   # position 8.1 between 9 and 10
    assert percentile(values, 99) == pytest.approx(9.91)
    assert percentile([3.0], 99) == 3.0


def test_parameter_counts_exclude_embedding_tables(tiny_teacher):
    model = load_for_inference(str(tiny_teacher))
    total, no_emb = parameter_counts(model)
    cfg = model.config
    embeddings = (cfg.vocab_size + cfg.max_position_embeddings + cfg.type_vocab_size) * 32 + 2 * 32  # + LayerNorm
    assert total - no_emb == embeddings
    assert total == sum(p.numel() for p in model.parameters())


def test_inputs_are_identical_real_tokens_of_the_exact_length(tiny_teacher):
    from bertdistill.models.loading import load_tokenizer

    arrays = token_inputs(load_tokenizer(str(tiny_teacher)), 16, 3)
    assert arrays["input_ids"].shape == (3, 16) and (arrays["input_ids"] == arrays["input_ids"][0]).all()
    assert arrays["attention_mask"].all()


def test_benchmark_measures_every_format_interleaved(tiny_teacher, tmp_path):
    from bertdistill.bench.machine import cpu_has_bf16

    formats = ["pytorch-fp32", "onnx-fp32", "onnx-int8"] + (["pytorch-bf16"] if cpu_has_bf16() else [])
    result = run_benchmark([str(tiny_teacher)], names=["t"], formats=formats,
                           lengths=[8, 16], runs=6, warmup=1, throughput_batch=4, threads=1, devices=["cpu"])
    assert result["machine"]["threads"] == 1 and result["machine"]["cpu"]
    rows = result["rows"]
    assert {(r["format"], r["length"]) for r in rows} == {(f, n) for f in formats for n in (8, 16)}
    for r in rows:
        lat = r["latency"]
        assert lat["runs"] == 6 and 0 < lat["median_ms"] <= lat["p90_ms"] <= lat["p99_ms"]
        assert r["throughput"]["samples_per_s"] > 0 and r["bytes"] > 0
    sizes = result["models"]["t"]["sizes"]
    assert sizes["onnx-int8 cpu"] < sizes["onnx-fp32 cpu"]
    assert "median ms" in format_table(result)
    # the exports made on the way are reused, and an exported folder can be benchmarked directly
    again = run_benchmark([f"{tiny_teacher}-onnx-int8"], formats=["onnx-int8"], lengths=[8], runs=3, warmup=0,
                          throughput_batch=2, devices=["cpu"])
    assert [r["format"] for r in again["rows"]] == ["onnx-int8"]


def test_benchmark_command_writes_json_and_refuses_bad_input(tiny_teacher, tmp_path, capsys):
    out = tmp_path / "b.json"
    assert main(["benchmark", str(tiny_teacher), "--lengths", "8", "--runs", "3", "--warmup", "1", "--batch", "2",
                 "--formats", "pytorch-fp32", "--threads", "1", "--output", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["rows"][0]["format"] == "pytorch-fp32"
    assert "threads: 1" in capsys.readouterr().out
    not_a_model = tmp_path / "notes"
    not_a_model.mkdir()
    assert main(["benchmark", str(not_a_model)]) == 2
    assert str(not_a_model) in capsys.readouterr().err
    assert main(["benchmark", str(tiny_teacher), "--formats", "tensorrt"]) == 2
    assert "--formats" in capsys.readouterr().err
    assert main(["benchmark", str(tiny_teacher), "--lengths", "a,b"]) == 2
    assert "--lengths" in capsys.readouterr().err


def test_benchmark_exports_on_the_way_read_own_csv_with_the_data_flags(tiny_teacher, tmp_path, capsys,
                                                                      monkeypatch):
    from conftest import toy_sentences

    data = tmp_path / "reviews.csv"
    data.write_text("review,sentiment\n" + "".join(f"{t},{y}\n" for t, y in toy_sentences(100, seed=6)))
    exports = tmp_path / "exports"
    assert main(["benchmark", str(tiny_teacher), "--names", "t", "--formats", "onnx-fp32", "--lengths", "8",
                 "--runs", "2", "--warmup", "0", "--batch", "2", "--threads", "1", "--devices", "cpu",
                 "--exports-dir", str(exports), "--data", str(data), "--text-column", "review",
                 "--label-column", "sentiment"]) == 0
    manifest = json.loads((exports / "t-onnx" / "export.json").read_text())
    assert manifest["parity"]["inputs"] == "csv dev" and manifest["evaluation"]["examples"] == 10
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)
    assert main(["benchmark", "nothere"]) == 2  # a bare name: a hub id to resolve_model, no local folder
    err = capsys.readouterr().err
    assert "nothere is not a model folder" in err and "Errno" not in err


def test_bilstm_student_is_benchmarked_in_pytorch_formats(tmp_path):
    """The word-level BiLSTM student is timed like the transformers (its own word vocabulary gives
    inputs of the exact length); ONNX formats, which it has no export for, are left out."""
    from bertdistill.bench.machine import cpu_has_bf16
    from bertdistill.bench.runner import TEXT
    from bertdistill.students import bilstm as B

    words = B.WordTokenizer.build([TEXT])
    model = B.BiLSTMClassifier(B.BiLSTMConfig(vocab_size=len(words), num_labels=2, embedding_dim=8, hidden_size=6,
                                              mlp_size=5, embeddings="random"))
    folder = B.save_bilstm(model, words, tmp_path / "bilstm")
    formats = ["pytorch-fp32", "onnx-int8"] + (["pytorch-bf16"] if cpu_has_bf16() else [])
    result = run_benchmark([str(folder)], names=["b"], formats=formats, lengths=[8, 16], runs=4, warmup=1,
                           throughput_batch=3, threads=1, devices=["cpu"])
    assert {r["format"] for r in result["rows"]} == set(formats) - {"onnx-int8"}
    assert {r["length"] for r in result["rows"]} == {8, 16}
    info = result["models"]["b"]
    assert info["model_type"] == "bilstm"
    assert info["params"] == sum(p.numel() for p in model.parameters())
    assert info["params_without_embeddings"] == info["params"] - model.embeddings.weight.numel()
    arrays = token_inputs(words, 16, 3)
    assert arrays["input_ids"].shape == (3, 16) and arrays["attention_mask"].all()


def test_benchmark_onnx_sessions_do_not_spin(tiny_teacher):
    """Timed interleaved with PyTorch on the same cores, an ONNX Runtime session whose idle
    threads busy-wait slows the PyTorch candidate timed after it: the benchmark's sessions sleep."""
    from bertdistill.bench.runner import load_candidates

    candidates, _ = load_candidates(str(tiny_teacher), "t", ["onnx-fp32"], ["cpu"], threads=1)
    options = candidates[0].call.__self__.session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.get_session_config_entry("session.inter_op.allow_spinning") == "0"
