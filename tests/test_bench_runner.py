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
    result = run_benchmark([str(tiny_teacher)], names=["t"], formats=["pytorch-fp32", "onnx-fp32", "onnx-int8"],
                           lengths=[8, 16], runs=6, warmup=1, throughput_batch=4, threads=1, devices=["cpu"])
    assert result["machine"]["threads"] == 1 and result["machine"]["cpu"]
    rows = result["rows"]
    assert {(r["format"], r["length"]) for r in rows} == {(f, n) for f in ("pytorch-fp32", "onnx-fp32", "onnx-int8")
                                                         for n in (8, 16)}
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
