"""The teacher cache key covers the teacher's configuration, and a damaged entry (cut short,
bytes overwritten, a bad meta.json) is never read: a run rebuilds it with a warning naming it,
and `bertdistill cache list` reports it."""

from __future__ import annotations

import functools
import json
import logging
import os
import random
import subprocess
import sys

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from bertdistill.cli import main
from bertdistill.distill import cache as cache_mod
from bertdistill.distill.cache import TeacherCache, fingerprint
from bertdistill.partials import host

KEYS = ["logits", "hidden:2"]


def _teacher(**config):
    torch.manual_seed(0)
    base = dict(vocab_size=60, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                max_position_embeddings=40, num_labels=3, attn_implementation="eager")
    return BertForSequenceClassification(BertConfig(**{**base, **config})).eval()


def _features(n: int = 40) -> list[dict]:
    rng = random.Random(0)
    return [{"input_ids": [2] + [rng.randint(5, 59) for _ in range(rng.randint(1, 14))] + [3]} for _ in range(n)]


@pytest.fixture()
def forwards(monkeypatch):
    calls = {"n": 0}
    original = BertForSequenceClassification.forward

    @functools.wraps(original)  # the same signature: the inputs are chosen from it
    def counting(self, *args, **kwargs):
        calls["n"] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(BertForSequenceClassification, "forward", counting)
    return calls


def test_key_covers_the_teacher_config_but_not_its_names():
    feats = _features(5)
    base = _teacher()
    key = fingerprint(base, feats, KEYS, torch.float16)
    assert fingerprint(_teacher(), feats, KEYS, torch.float16) == key  # same weights and config
    for change in ({"hidden_act": "relu"}, {"hidden_act": "gelu_new"}, {"layer_norm_eps": 1e-5}):
        other = _teacher(**change)  # the very same weights (same seed, same shapes), another config
        mine, theirs = base.state_dict(), other.state_dict()
        assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
        assert fingerprint(other, feats, KEYS, torch.float16) != key, change
    named = _teacher(id2label={0: "neg", 1: "neu", 2: "pos"}, label2id={"neg": 0, "neu": 1, "pos": 2})
    named.config._name_or_path = "/somewhere/else"
    assert fingerprint(named, feats, KEYS, torch.float16) == key  # label names and paths compute nothing


def _entry(cache_dir):
    [folder] = [p for p in cache_dir.iterdir() if not p.name.startswith(".")]
    return folder


def test_truncated_and_overwritten_entries_are_rebuilt_with_a_warning(tmp_path, forwards, caplog):
    teacher, feats = _teacher(), _features()
    fresh = TeacherCache.load_or_build(teacher, feats, KEYS, cache_dir=tmp_path / "fresh")
    root = tmp_path / "cache"
    TeacherCache.load_or_build(teacher, feats, KEYS, cache_dir=root)
    folder = _entry(root)
    meta = json.loads((folder / "meta.json").read_text())
    file = folder / "features.safetensors"
    assert meta["bytes"] == file.stat().st_size and len(meta["sha256"]) == 64

    forwards["n"] = 0
    TeacherCache.load_or_build(teacher, feats, KEYS, cache_dir=root)
    assert forwards["n"] == 0  # a whole entry is read, not rebuilt

    data = file.read_bytes()
    damages = {
        "truncated": lambda: file.write_bytes(data[: len(data) // 2]),
        "overwritten": lambda: file.write_bytes(data[: len(data) // 2] + bytes(64) + data[len(data) // 2 + 64:]),
    }
    for what, damage in damages.items():
        damage()
        assert file.stat().st_size == (len(data) if what == "overwritten" else len(data) // 2)
        forwards["n"] = 0
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="bertdistill.distill.cache"):
            again = TeacherCache.load_or_build(teacher, feats, KEYS, cache_dir=root)
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and str(folder) in warnings[0] and "damaged" in warnings[0], warnings
        assert ("bytes" in warnings[0]) if what == "truncated" else ("checksum" in warnings[0])
        assert forwards["n"] > 0, what  # the teacher ran again
        assert file.read_bytes() == data  # the rebuilt entry is byte for byte a fresh build
        for key in KEYS:
            for i in range(len(feats)):
                assert torch.equal(again.example(key, i), fresh.example(key, i)), (what, key, i)


def test_cache_list_reports_each_damage_and_names_a_bad_meta(tmp_path, capsys):
    teacher = _teacher()
    ok, short, changed, bad_meta = (TeacherCache.load_or_build(teacher, _features(n), KEYS, cache_dir=tmp_path).path
                                    for n in (10, 11, 12, 13))  # four entries (other data each)
    file = short / "features.safetensors"
    file.write_bytes(file.read_bytes()[:-10])
    file = changed / "features.safetensors"
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    file.write_bytes(bytes(data))
    (bad_meta / "meta.json").write_text('{"keys": ["logits"], "examp')
    assert main(["cache", "list", "--cache-dir", str(tmp_path)]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.startswith("  ")}
    assert "  ok  " in rows[ok.name] and "10 examples, keys logits,hidden:2" in rows[ok.name]
    assert "damaged:" in rows[short.name] and "bytes" in rows[short.name]
    assert "damaged:" in rows[changed.name] and "checksum" in rows[changed.name]
    assert f"damaged: {bad_meta / 'meta.json'} is not valid JSON" in rows[bad_meta.name]
    # a run needing the bad-meta entry rebuilds it instead of failing
    TeacherCache.load_or_build(teacher, _features(13), KEYS, cache_dir=tmp_path)
    assert json.loads((bad_meta / "meta.json").read_text())["examples"] == 13


def test_partial_folders_of_killed_builds_are_removed_by_the_next_build(tmp_path):
    teacher, feats = _teacher(), _features(8)
    key = fingerprint(teacher, feats, KEYS, torch.float16)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its pid is gone
    killed = tmp_path / f".{key}.partial-{host()}-{dead.pid}"
    running = tmp_path / f".{key}.partial-{host()}-{os.getppid()}"  # a build still running elsewhere
    for folder in (killed, running):
        folder.mkdir(parents=True)
        (folder / "features.safetensors").write_bytes(b"half")
    TeacherCache.load_or_build(teacher, feats, KEYS, cache_dir=tmp_path)
    assert not killed.exists() and running.exists()
    assert cache_mod.check_entry(tmp_path / key) is None
