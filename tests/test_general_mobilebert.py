"""`general-distill --recipe general_mobilebert`: MobileBERT's progressive knowledge transfer on
raw text from an encoder without a masked-LM head (one stage per layer, the layers below frozen
or at a reduced learning rate, finished stages skipped), the saved plain MobileBERT encoder, and
task distillation from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import AutoModel, MobileBertForMaskedLM, MobileBertModel

import bertdistill
from bertdistill import api
from bertdistill.cli import main
from general_fixtures import prepare, save_tiny_mlm, write_text

# a 3-layer MobileBERT over the tiny 2-layer teacher (hidden 32, 2 heads): deeper than its teacher
TINY = {"preset": "mobilebert12", "num_hidden_layers": 3, "intra_bottleneck_size": 8,
        "intermediate_size": 16, "num_feedforward_networks": 2, "embedding_size": 8,
        "num_attention_heads": 2, "max_position_embeddings": 64}


@pytest.fixture(scope="module")
def corpus_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("general_mb")
    encoder = save_tiny_mlm(root / "encoder", seed=0, kind="base")  # a BertModel: no masked-LM head
    mlm = save_tiny_mlm(root / "mlm", seed=0, kind="mlm")
    corpus = prepare(write_text(root / "train.txt", 60, 1), str(encoder), root / "corpus")
    return {"encoder": encoder, "mlm": mlm, "corpus": corpus}


def _recipe(tmp_path: Path, *, lower_lr: float = 0.0, steps: int = 3) -> Path:
    shipped = Path(bertdistill.__file__).parent / "recipes" / "general_mobilebert.yaml"
    data = yaml.safe_load(shipped.read_text(encoding="utf-8"))
    data["student"]["shape"] = TINY
    data["strategy"] = {"name": "progressive", "lower_lr": lower_lr, "intermediate": {"max_steps": steps},
                        "prediction": {"max_steps": steps}}
    data["terms"][1]["params"] = {"head_reduce": "none"}  # 2 heads, as the tiny teacher
    path = tmp_path / f"general_mb_{lower_lr}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _final(out: Path, folder: str, saved: str = "final") -> dict:
    """A stage's student as the stage ended (the last stage's is its ``student/``)."""
    return load_file(str(out / folder / saved / "model.safetensors"))


def _changed(before: dict, after: dict) -> set[str]:
    return {k for k in before if not torch.equal(before[k], after[k])}


def _stamps(out: Path) -> dict:
    return {p.parent.name: p.stat().st_mtime_ns for p in sorted(out.glob("*/stage.json"))}


def test_progressive_general_stages_train_one_layer_each_and_resume(corpus_data, tmp_path):
    out = tmp_path / "run"
    argv = ["general-distill", "--teacher", str(corpus_data["encoder"]), "--corpus", str(corpus_data["corpus"]),
            "--recipe", str(_recipe(tmp_path, steps=30)), "--output", str(out), "--batch-size", "8",
            "--lr", "3e-3", "--log-every", "1"]
    assert main(argv) == 0
    result = json.loads((out / "results.json").read_text())
    # one sub-folder per layer stage; no masked-LM head, so no prediction stage after the last layer
    assert [s["stage"] for s in result["stages"]] == ["layer1", "layer2", "layer3"]
    assert sorted(p.name for p in out.iterdir() if p.is_dir() and p.name[:2].isdigit()) == [
        "01_layer1", "02_layer2", "03_layer3"]
    # repeat: student layers 2 and 3 both learn teacher layer 2 (hidden index 2; attention index 1)
    stage3 = yaml.safe_load((out / "03_layer3" / "recipe.yaml").read_text())
    assert [t["layers"] for t in stage3["terms"] if t["weight"]] == [[[3, 2]], [[2, 1]]]
    rows = [json.loads(line) for line in (out / "01_layer1" / "log.jsonl").read_text().splitlines()
            if '"parts"' in line]
    assert set(rows[0]["parts"]) == {"feature_map", "attention_kl"}
    fm = [row["parts"]["feature_map"] for row in rows]
    assert len(fm) == 30 and sum(fm[-5:]) / 5 < 0.7 * sum(fm[:5]) / 5, fm  # the student learns the feature map
    # in stage j only layer j's weights move: the embeddings and the layers below are frozen, the
    # layers above get no gradient
    one, two, three = _final(out, "01_layer1"), _final(out, "02_layer2"), _final(out, "03_layer3", "student")
    moved2, moved3 = _changed(one, two), _changed(two, three)
    assert moved2 and all(k.startswith("encoder.layer.1.") for k in moved2), sorted(moved2)
    assert moved3 and all(k.startswith("encoder.layer.2.") for k in moved3), sorted(moved3)
    # the published student: a plain MobileBERT encoder (AutoModel and MobileBertModel load it)
    assert result["student_dir"] == str(out / "student")
    student = AutoModel.from_pretrained(result["student_dir"])
    assert type(student) is MobileBertModel and student.config.num_hidden_layers == 3
    assert student.config.hidden_size == 32  # the inter-block width is the teacher's
    saved = load_file(str(out / "student" / "model.safetensors"))
    assert all(torch.equal(saved[k], three[k]) for k in three)
    MobileBertModel.from_pretrained(result["student_dir"])
    # run again: every finished stage is skipped (stage records and logs untouched)
    stamps, logged = _stamps(out), (out / "02_layer2" / "log.jsonl").read_text()
    assert main(argv) == 0
    assert _stamps(out) == stamps and (out / "02_layer2" / "log.jsonl").read_text() == logged
    # a run stopped during stage 3: stages 1 and 2 are skipped, stage 3 runs (from its checkpoint)
    (out / "03_layer3" / "stage.json").unlink()
    assert main(argv) == 0
    again = _stamps(out)
    assert again["01_layer1"] == stamps["01_layer1"] and again["02_layer2"] == stamps["02_layer2"]
    assert again["03_layer3"] != stamps["03_layer3"]


def test_reduced_lr_variant_trains_lower_layers_slowly(corpus_data, tmp_path):
    out = tmp_path / "lower"
    api.general_distill(str(corpus_data["encoder"]), str(corpus_data["corpus"]), str(out),
                        recipe=str(_recipe(tmp_path, lower_lr=0.1)), train={"batch_size": 8, "lr": 1e-3})
    one, two = _final(out, "01_layer1"), _final(out, "02_layer2")
    low = "encoder.layer.0.attention.self.query.weight"
    mine = "encoder.layer.1.attention.self.query.weight"
    moved_low = (two[low] - one[low]).abs().max().item()
    moved_mine = (two[mine] - one[mine]).abs().max().item()
    assert 0 < moved_low < 0.5 * moved_mine  # not frozen, but at 0.1 x lr
    assert torch.equal(one["encoder.layer.2.attention.self.query.weight"],
                       two["encoder.layer.2.attention.self.query.weight"])  # above: no gradient


def test_masked_lm_teacher_adds_the_pre_training_distillation_stage(corpus_data, tmp_path):
    out = tmp_path / "pd"
    result = api.general_distill(str(corpus_data["mlm"]), str(corpus_data["corpus"]), str(out),
                                 recipe=str(_recipe(tmp_path)), weights={"mlm_kd": 0.5, "mlm_ce": 0.5},
                                 eval_corpus=str(corpus_data["corpus"]), train={"batch_size": 8, "lr": 1e-3})
    assert [s["stage"] for s in result["stages"]] == ["layer1", "layer2", "layer3", "prediction"]
    # held-out masked-LM scores: the prediction stage only (the layer stages compare no logits)
    assert 0 <= result["held_out"]["student"]["mlm_accuracy"] <= 1
    evals = {folder: [row for row in map(json.loads, (out / folder / "log.jsonl").read_text().splitlines())
                      if row.get("eval")] for folder in ("01_layer1", "04_prediction")}
    assert not evals["01_layer1"] and evals["04_prediction"]
    rows = [json.loads(line) for line in (out / "04_prediction" / "log.jsonl").read_text().splitlines()
            if '"parts"' in line]
    assert set(rows[0]["parts"]) == {"mlm_kd", "mlm_ce"}
    student = AutoModel.from_pretrained(result["student_dir"])
    assert type(student) is MobileBertModel
    masked_lm = MobileBertForMaskedLM.from_pretrained(result["student_dir"])
    before = _final(out, "03_layer3")
    after = masked_lm.state_dict()
    # every weight trainable in the prediction stage: the embeddings and layer 1 move again
    assert not torch.equal(before["embeddings.word_embeddings.weight"],
                           after["mobilebert.embeddings.word_embeddings.weight"])
    assert not torch.equal(before["encoder.layer.0.attention.self.query.weight"],
                           after["mobilebert.encoder.layer.0.attention.self.query.weight"])


def test_general_student_starts_task_distillation(corpus_data, tiny_teacher, toy_task_dir, tmp_path):
    general = api.general_distill(str(corpus_data["encoder"]), str(corpus_data["corpus"]), str(tmp_path / "g"),
                                  recipe=str(_recipe(tmp_path, steps=2)), train={"batch_size": 8})
    out = tmp_path / "task"
    rc = main(["distill", "--teacher", str(tiny_teacher), "--task", "tsv", "--data", str(toy_task_dir),
               "--student", general["student_dir"], "--recipe", "mobilebert_task_from_general",
               "--output", str(out), "--epochs", "1", "--batch-size", "16", "--max-train-examples", "64",
               "--cache-dir", str(tmp_path / "cache"), "--latency-runs", "0"])
    assert rc == 0
    results = json.loads((out / "results.json").read_text())
    config = json.loads((Path(results["student_dir"]) / "config.json").read_text())
    assert config["architectures"] == ["MobileBertForSequenceClassification"]
    general_weights = load_file(str(Path(general["student_dir"]) / "model.safetensors"))
    task_weights = load_file(str(Path(results["student_dir"]) / "model.safetensors"))
    key = "encoder.layer.0.attention.self.query.weight"  # started from the general student, then trained
    assert task_weights["mobilebert." + key].shape == general_weights[key].shape
    assert not torch.equal(task_weights["mobilebert." + key], general_weights[key])


def test_bad_input_is_refused_in_one_line_before_any_work(corpus_data, tmp_path, capsys):
    base = ["general-distill", "--corpus", str(corpus_data["corpus"]), "--recipe", str(_recipe(tmp_path))]
    # held-out masked-LM scoring without any masked-LM stage
    rc = main([*base, "--teacher", str(corpus_data["encoder"]), "--eval-corpus", str(corpus_data["corpus"]),
               "--output", str(tmp_path / "a")])
    err = capsys.readouterr().err
    assert rc == 2 and "--eval-corpus" in err and "masked-LM" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "a").exists()
    # the pre-training distillation stage asked for, from an encoder without a masked-LM head
    rc = main([*base, "--teacher", str(corpus_data["encoder"]), "--weight", "mlm_kd=1",
               "--output", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert rc == 2 and "--teacher" in err and "mlm-head" in err and "Traceback" not in err
    assert not (tmp_path / "b").exists()
