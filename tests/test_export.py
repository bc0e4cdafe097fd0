"""ONNX export, int8 quantisation, parity bounds, exported folders in `evaluate`, bad input."""

from __future__ import annotations

import json
import subprocess
import sys

from pathlib import Path

import pytest
import torch

from bertdistill.cli import main
from bertdistill.export import ParityError, export_model, is_exported, load_for_inference
from bertdistill.models.loading import save_model


@pytest.fixture(scope="module")
def exported_fp32(tiny_teacher, toy_task_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("exp") / "fp32"
    return export_model(str(tiny_teacher), "onnx", out, data=str(toy_task_dir))


def _tiny_saved(tmp_path, kind="classification", arch="bert"):
    from tiny import make_tiny_tokenizer, tiny_task

    from bertdistill.students import student_from_config

    tok = make_tiny_tokenizer(tmp_path / "tok")
    task = tiny_task(kind)
    torch.manual_seed(0)
    model = student_from_config({"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                                 "intermediate_size": 64, "vocab_size": len(tok), "max_position_embeddings": 64},
                                task.kind, task.num_labels, arch=arch, tokenizer_vocab_size=len(tok),
                                id2label=task.id2label)
    return save_model(model, tok, tmp_path / f"{arch}-{kind}", task=task), task


def _own_csv(folder: Path, n: int = 200) -> Path:
    """The toy task as a user's single CSV: other column names, labels as words, an extra column."""
    from conftest import toy_sentences

    path = folder / "reviews.csv"
    path.write_text("id,review,sentiment\n" + "".join(
        f"{i},{text},{label}\n" for i, (text, label) in enumerate(toy_sentences(n, seed=5))))
    return path


def test_fp32_export_matches_pytorch_and_fuses(exported_fp32):
    out = exported_fp32["output"]
    assert is_exported(out)
    for name in ("model.onnx", "config.json", "labels.json", "predict.py", "export.json", "tokenizer.json"):
        assert Path(out, name).is_file(), name
    manifest = json.loads(open(f"{out}/export.json").read())
    assert manifest["parity"]["max_abs_diff"] < 1e-4 and manifest["parity"]["agreement"] == 1.0
    assert manifest["parity"]["inputs"] == "tsv dev"
    fused = manifest["fused_operators"]
    assert fused["Attention"] == 2 and fused["SkipLayerNormalization"] == 4 and fused["EmbedLayerNormalization"] == 1
    metrics = manifest["evaluation"]["metrics"]
    assert metrics["onnx"]["accuracy"] == pytest.approx(metrics["pytorch"]["accuracy"])


def test_dynamic_axes_any_batch_and_length(exported_fp32, tiny_teacher):
    model = load_for_inference(exported_fp32["output"])
    ref = load_for_inference(str(tiny_teacher))
    for batch, length in ((1, 3), (5, 40)):
        ids = torch.randint(5, 100, (batch, length))
        mask = torch.ones_like(ids)
        mask[0, length // 2:] = 0
        got = model(input_ids=ids, attention_mask=mask).logits
        with torch.no_grad():
            want = ref(input_ids=ids, attention_mask=mask).logits
        assert got.shape == (batch, 2)
        assert torch.allclose(got, want, atol=1e-4)


def test_evaluate_command_accepts_exported_folder(exported_fp32, tiny_teacher, toy_task_dir, tmp_path):
    for name, model in (("onnx", exported_fp32["output"]), ("pt", str(tiny_teacher))):
        assert main(["evaluate", "--model", model, "--task", "tsv", "--data", str(toy_task_dir),
                     "--output", str(tmp_path / f"{name}.json")]) == 0
    onnx = json.loads((tmp_path / "onnx.json").read_text())["metrics"]
    pt = json.loads((tmp_path / "pt.json").read_text())["metrics"]
    assert onnx["accuracy"] == pytest.approx(pt["accuracy"]) and pt["accuracy"] > 0.9


def test_predict_accepts_the_exported_folder(exported_fp32, tiny_teacher):
    from bertdistill.prediction import predict_texts

    texts = ["a great funny film", "a terrible boring plot"]
    onnx = predict_texts(exported_fp32["output"], texts)
    pt = predict_texts(str(tiny_teacher), texts)
    assert [r["label"] for r in onnx] == [r["label"] for r in pt]
    assert [r["score"] for r in onnx] == pytest.approx([r["score"] for r in pt], abs=1e-4)


def test_predict_example_runs(exported_fp32):
    out = exported_fp32["output"]
    proc = subprocess.run([sys.executable, f"{out}/predict.py", "a great funny film", "a terrible boring plot"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    labels = json.loads(open(f"{out}/labels.json").read())["labels"]
    assert [line.split("\t")[0] for line in lines] == [labels[1], labels[0]]  # toy task: 1 = positive


def test_int8_export_distilbert_and_token_model(tmp_path):
    path, task = _tiny_saved(tmp_path, arch="distilbert")
    manifest = export_model(str(path), "onnx-int8", tmp_path / "d8")
    assert manifest["inputs"] == ["input_ids", "attention_mask"]
    assert manifest["operators"]["QAttention"] + manifest["operators"]["DynamicQuantizeMatMul"] + \
        manifest["operators"]["MatMulInteger"] > 0
    assert manifest["parity"]["ok"] and manifest["parity"]["inputs"].startswith("built-in sentences")
    tok_path, _ = _tiny_saved(tmp_path, kind="token_classification")
    tok_manifest = export_model(str(tok_path), "onnx", tmp_path / "tok-onnx")
    model = load_for_inference(tok_manifest["output"])
    ids = torch.randint(5, 100, (2, 7))
    assert model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.shape == (2, 7, 5)


def _embedding_tables(onnx_path):
    """{input name: dtype name} of the initializers the embedding node (the one reading
    input_ids) takes, and that node's operator type."""
    import onnx

    graph = onnx.load(str(onnx_path)).graph
    dtypes = {i.name: onnx.TensorProto.DataType.Name(i.data_type) for i in graph.initializer}
    reads_ids = {"input_ids"} | {n.output[0] for n in graph.node if n.op_type == "Cast" and n.input[0] == "input_ids"}
    node = next(n for n in graph.node if set(n.input) & reads_ids and "Embed" in n.op_type)
    return node.op_type, {name: dtypes[name] for name in node.input if name in dtypes}


def test_int8_export_keeps_embeddings_fp32_when_asked(tmp_path, capsys):
    path, _ = _tiny_saved(tmp_path)
    default = export_model(str(path), "onnx-int8", tmp_path / "emb8")
    kept = export_model(str(path), "onnx-int8", tmp_path / "emb32", int8_embeddings=False)
    op, tables = _embedding_tables(tmp_path / "emb8" / "model.onnx")
    assert op == "QEmbedLayerNormalization"
    for part in ("word_embeddings", "position_embeddings", "token_type_embeddings", "embeddings.LayerNorm.weight"):
        quantised = [dtype for name, dtype in tables.items() if part in name and name.endswith("_quantized")]
        assert quantised and set(quantised) <= {"INT8", "UINT8"}, (part, tables)
    op, tables = _embedding_tables(tmp_path / "emb32" / "model.onnx")
    assert op == "EmbedLayerNormalization"
    assert not any("_quantized" in name for name in tables)
    for part in ("word_embeddings", "position_embeddings", "token_type_embeddings", "embeddings.LayerNorm.weight"):
        assert [dtype for name, dtype in tables.items() if part in name] == ["FLOAT"], (part, tables)
    for manifest in (default, kept):  # the MatMul / Attention weights are int8 either way
        ops = manifest["operators"]
        assert ops["QAttention"] + ops["MatMulInteger"] + ops["DynamicQuantizeMatMul"] > 0
        assert manifest["parity"]["ok"]
    assert default["quantization"]["embeddings"] != "fp32" and kept["quantization"]["embeddings"] == "fp32"
    assert {"Gather", "EmbedLayerNormalization"} <= set(default["quantization"]["op_types"])
    assert "MatMul" in kept["quantization"]["op_types"] and not (
        {"Gather", "EmbedLayerNormalization"} & set(kept["quantization"]["op_types"]))
    on_disk = json.loads((tmp_path / "emb32" / "export.json").read_text())
    assert on_disk["quantization"] == kept["quantization"]
    # the command line: --fp32-embeddings, and refused one line with exit 2 where it cannot apply
    capsys.readouterr()
    assert main(["export", str(path), "--format", "onnx-int8", "--fp32-embeddings", "--no-eval",
                 "--max-length", "32", "--output", str(tmp_path / "cli32")]) == 0
    assert json.loads((tmp_path / "cli32" / "export.json").read_text())["quantization"]["embeddings"] == "fp32"
    capsys.readouterr()
    assert main(["export", str(path), "--fp32-embeddings", "--max-length", "32", "--output", str(tmp_path / "no")]) == 2
    err = capsys.readouterr().err
    assert "--fp32-embeddings applies to --format onnx-int8 only" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "no").exists()


def test_parity_failure_is_loud_and_writes_nothing(tmp_path):
    path, _ = _tiny_saved(tmp_path)
    out = tmp_path / "never"
    with pytest.raises(ParityError, match="--max-logit-diff"):
        export_model(str(path), "onnx-int8", out, max_logit_diff=0.0)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".never")]


def test_bad_input_errors_name_the_folder_or_option(tmp_path, exported_fp32, monkeypatch, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["export", str(empty)]) == 2
    assert f"{empty}" in capsys.readouterr().err
    path, _ = _tiny_saved(tmp_path)
    assert main(["export", str(path), "--format", "tflite"]) == 2
    assert "--format 'tflite'" in capsys.readouterr().err
    assert main(["export", exported_fp32["output"], "--format", "onnx-int8"]) == 2
    assert "already an exported model" in capsys.readouterr().err
    config = json.loads((path / "config.json").read_text())
    other = tmp_path / "gpt"
    other.mkdir()
    (other / "config.json").write_text(json.dumps(config | {"model_type": "gpt2"}))
    (other / "labels.json").write_text((path / "labels.json").read_text())
    assert main(["export", str(other)]) == 2
    assert "model_type 'gpt2'" in capsys.readouterr().err
    import bertdistill.export.quantize as quantize

    monkeypatch.setattr(quantize, "quantizer_available", lambda: False)
    assert main(["export", str(path), "--format", "onnx-int8", "--output", str(tmp_path / "q")]) == 2
    err = capsys.readouterr().err
    assert "--format onnx-int8 needs onnxruntime.quantization" in err and not (tmp_path / "q").exists()


def test_export_reads_own_csv_with_the_shared_data_flags(tiny_teacher, tmp_path, capsys):
    data = _own_csv(tmp_path)
    out = tmp_path / "own"
    assert main(["export", str(tiny_teacher), "--output", str(out), "--data", str(data),
                 "--text-column", "review", "--label-column", "sentiment", "--parity-examples", "8"]) == 0
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["parity"]["inputs"] == "csv dev"  # the 10% held out of the single file
    evaluation = manifest["evaluation"]
    assert evaluation["examples"] == 20 and evaluation["metrics"]["pytorch"]["accuracy"] > 0.9
    assert evaluation["metrics"]["onnx"]["accuracy"] == pytest.approx(evaluation["metrics"]["pytorch"]["accuracy"])
    # the Python API takes the same options; a bad column is refused before any export work
    with pytest.raises(ValueError, match="no 'text' or 'sentence' column"):
        export_model(str(tiny_teacher), "onnx", tmp_path / "never", data=str(data),
                     data_options={"label_column": "sentiment"})
    assert not (tmp_path / "never").exists()
    capsys.readouterr()
    assert main(["export", str(tiny_teacher), "--output", str(tmp_path / "never"), "--data", str(data),
                 "--text-column", "review", "--label-column", "stars"]) == 2
    err = capsys.readouterr().err
    assert "no label column 'stars'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "never").exists()


def test_dynamo_exporter_matches_pytorch(tmp_path, capsys):
    path, _ = _tiny_saved(tmp_path)
    assert main(["export", str(path), "--exporter", "dynamo", "--opset", "17"]) == 2
    assert "--exporter dynamo needs opset 18" in capsys.readouterr().err
    manifest = export_model(str(path), "onnx", tmp_path / "dyn", exporter="dynamo", opset=18)
    assert manifest["exporter"] == "dynamo" and manifest["parity"]["max_abs_diff"] < 1e-4
    assert manifest["fused_operators"]["SkipLayerNormalization"] > 0
