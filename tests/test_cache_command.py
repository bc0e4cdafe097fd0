"""`bertdistill cache list|clear` and the model-source flags (--revision, --trust-remote-code)."""

from __future__ import annotations

import json

from bertdistill.cli import main
from bertdistill.models.loading import hub_options, pretrained_kwargs, resolve_model


def _entry(root, name, size):
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "features.safetensors").write_bytes(b"x" * size)
    (folder / "meta.json").write_text(json.dumps({"keys": ["logits"], "examples": 7, "dtype": "torch.float16"}))


def test_cache_list_and_clear_touch_only_cache_entries(tmp_path, capsys, monkeypatch):
    _entry(tmp_path, "aaa111", 2_000_000)
    _entry(tmp_path, "bbb222", 1_000_000)
    (tmp_path / ".ccc333.partial").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("not a cache entry")
    assert main(["cache", "list", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"teacher cache: {tmp_path} (3 entries, 3.0 MB)" in out
    assert "aaa111" in out and "7 examples, keys logits" in out and "notes" not in out
    assert main(["cache", "clear", "--cache-dir", str(tmp_path)]) == 0
    assert "removed 3 entries (3.0 MB)" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes"]
    monkeypatch.setenv("BERTDISTILL_CACHE", str(tmp_path / "env"))  # the default location follows the variable
    assert main(["cache", "list"]) == 0
    assert f"{tmp_path / 'env' / 'teacher'} (0 entries" in capsys.readouterr().out


def test_hub_ids_without_an_organisation_and_loading_options(monkeypatch, capsys, tmp_path):
    assert resolve_model("bert-base-uncased") == "bert-base-uncased"
    assert resolve_model("google-bert/bert-base-uncased") == "google-bert/bert-base-uncased"
    assert pretrained_kwargs() == {"trust_remote_code": False}
    with hub_options(revision="v2", trust_remote_code=True):
        assert pretrained_kwargs() == {"trust_remote_code": True, "revision": "v2"}
    assert pretrained_kwargs() == {"trust_remote_code": False}

    seen = {}

    def fake_predict(model, texts, **kw):
        seen.update(model=model, texts=texts, **pretrained_kwargs())
        return [{"text": t, "label": "x", "score": 1.0} for t in texts]

    monkeypatch.setattr("bertdistill.prediction.predict_texts", fake_predict)
    assert main(["predict", "--model", "someone/model", "--text", "hi", "--revision", "abc123",
                 "--trust-remote-code"]) == 0
    assert seen == {"model": "someone/model", "texts": ["hi"], "trust_remote_code": True, "revision": "abc123"}
    seen.clear()
    assert main(["predict", "--model", "someone/model", "--text", "hi"]) == 0
    assert seen["trust_remote_code"] is False and "revision" not in seen
