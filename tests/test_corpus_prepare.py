"""Corpus preparation: shards, cutting, drops, counts, re-runs, kills, workers, bad input, CLI."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from bertdistill.corpus import TokenShards, dtype_for_vocab, prepare_corpus
from bertdistill.corpus.shards import ShardWriter
from bertdistill.data.errors import DataError

from tiny import VOCAB, make_tiny_tokenizer

ID = {token: i for i, token in enumerate(VOCAB)}
CLS, SEP, UNK = ID["[CLS]"], ID["[SEP]"], ID["[UNK]"]


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return make_tiny_tokenizer(tmp_path_factory.mktemp("tok"))


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def ids(text: str) -> list[int]:
    return [ID[w] for w in text.split()]


def prepare(texts, tok, out, **kw):
    kw.setdefault("progress", False)
    return prepare_corpus(texts, tok, out, **kw)


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name != "meta.json"}


def test_dtype_choice_and_overflow_refused(tmp_path):
    assert dtype_for_vocab(30522) == np.uint16
    assert dtype_for_vocab(65536) == np.uint16
    assert dtype_for_vocab(65537) == np.uint32
    with pytest.raises(ValueError, match="does not fit"):
        dtype_for_vocab((1 << 32) + 1)
    writer = ShardWriter(tmp_path, np.uint16, 100)
    writer.add(np.array([1, 65535]), np.array([2]))
    with pytest.raises(OverflowError, match="65536 does not fit in uint16"):
        writer.add(np.array([3, 65536]), np.array([2]))
    writer.abort()


def test_sequences_round_trip_across_shards(tmp_path, tok):
    lines = ["the movie was good", "a very long story about a city", "i love paris and london in the morning"]
    text = write(tmp_path / "t.txt", lines * 7)
    summary = prepare([text], tok, tmp_path / "c", min_length=3, shard_tokens=20)
    shards = TokenShards(tmp_path / "c", tok)
    expected = [[CLS] + ids(line) + [SEP] for line in lines * 7]
    assert len(shards) == len(expected) == summary["sequences"]
    assert summary["shards"] > 3 and len(shards.meta["shards"]) == summary["shards"]
    for i, seq in enumerate(expected):
        assert shards[i].dtype == np.int64 and shards[i].tolist() == seq
    assert shards[-1].tolist() == expected[-1]
    assert shards.lengths.dtype == np.int32
    assert shards.lengths.tolist() == [len(s) for s in expected]
    assert shards.meta["dtype"] == "uint16" and shards.vocab_size == len(VOCAB)
    with pytest.raises(IndexError):
        shards[len(expected)]
    blob = pickle.dumps(shards)  # sent to spawned workers as folder + meta, not as token data
    assert len(blob) < 4000
    copy = pickle.loads(blob)
    assert len(copy) == len(shards) and copy[5].tolist() == expected[5]


def test_long_documents_are_cut_with_specials(tmp_path, tok):
    words = (VOCAB[5:30])  # 25 one-piece words
    text = write(tmp_path / "t.txt", [" ".join(words)])
    prepare([text], tok, tmp_path / "c", max_length=10, min_length=3)
    shards = TokenShards(tmp_path / "c")
    body = [ID[w] for w in words]
    assert [shards[i].tolist() for i in range(len(shards))] == [
        [CLS] + body[0:8] + [SEP], [CLS] + body[8:16] + [SEP], [CLS] + body[16:24] + [SEP], [CLS] + body[24:] + [SEP]]
    assert shards.lengths.max() <= 10


def test_short_and_unknown_sequences_are_dropped_and_counted(tmp_path, tok):
    text = write(tmp_path / "t.txt", [
        "the movie was very good",                 # 5 pieces + 2 specials: kept
        "good",                                   # 3 tokens: too short
        "qwx zzq the vvk kkq",                    # 4 of 5 unknown: dropped
        "qwx the movie was good",                 # 1 of 5 unknown: kept
        "",                                       # blank: skipped, not a document
        "! !",                                    # 4 tokens: too short
    ])
    summary = prepare([text], tok, tmp_path / "c", min_length=5, max_unk_ratio=0.5)
    assert summary["documents"] == 5
    assert summary["sequences"] == 2
    assert summary["dropped"] == {"too_short": 2, "too_many_unknown": 1}
    shards = TokenShards(tmp_path / "c")
    assert shards.meta["dropped"] == summary["dropped"]
    assert shards[1].tolist() == [CLS, UNK] + ids("the movie was good") + [SEP]


def test_token_counts_exact(tmp_path, tok):
    text = write(tmp_path / "t.txt", ["the movie the film", "a good movie ! ! !"])
    prepare([text], tok, tmp_path / "c", min_length=3)
    counts = TokenShards(tmp_path / "c").token_counts
    expected = np.zeros(len(VOCAB), dtype=np.int64)
    for token, n in {"[CLS]": 2, "[SEP]": 2, "the": 2, "movie": 2, "film": 1, "a": 1, "good": 1, "!": 3}.items():
        expected[ID[token]] = n
    assert counts.dtype == np.int64
    np.testing.assert_array_equal(counts, expected)


def test_rerun_is_a_noop_until_inputs_or_options_change(tmp_path, tok):
    text = write(tmp_path / "t.txt", ["the movie was good and the music was great"] * 5)
    out = tmp_path / "c"
    first = prepare([text], tok, out, min_length=3)
    assert first["skipped"] is False
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = prepare([text], tok, out, min_length=3)
    assert again["skipped"] is True and again["sequences"] == first["sequences"]
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps
    assert prepare([text], tok, out, min_length=4)["skipped"] is False  # an option changed
    write(text, ["the movie was bad"] * 3)  # the input changed
    changed = prepare([text], tok, out, min_length=4)
    assert changed["skipped"] is False and changed["sequences"] == 3


def test_killed_run_is_refused_then_completed_by_a_rerun(tmp_path, tok, monkeypatch):
    text = write(tmp_path / "t.txt", [f"the movie {w} was good" for w in VOCAB[10:60]])
    clean = tmp_path / "clean"
    prepare([text], tok, clean, min_length=3, shard_tokens=40, batch_size=7)
    out = tmp_path / "c"
    calls = {"n": 0}
    original = ShardWriter._write_chunk

    def dying(self, chunk):
        calls["n"] += 1
        if calls["n"] == 5:
            original(self, chunk[: len(chunk) // 2])  # half a chunk reaches the disk
            raise KeyboardInterrupt("killed")
        original(self, chunk)

    monkeypatch.setattr(ShardWriter, "_write_chunk", dying)
    with pytest.raises(KeyboardInterrupt):
        prepare([text], tok, out, min_length=3, shard_tokens=40, batch_size=7)
    assert any(p.name.startswith("shard-") for p in out.iterdir())  # finished shards are there...
    with pytest.raises(DataError, match="meta.json.*did not finish"):
        TokenShards(out)  # ...but the folder is not read as whole
    monkeypatch.setattr(ShardWriter, "_write_chunk", original)
    assert prepare([text], tok, out, min_length=3, shard_tokens=40, batch_size=7)["skipped"] is False
    assert folder_bytes(out) == folder_bytes(clean)
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_damaged_shard_is_refused_naming_the_file(tmp_path, tok):
    text = write(tmp_path / "t.txt", ["the movie was good and the music was great"] * 5)
    out = tmp_path / "c"
    prepare([text], tok, out, min_length=3)
    ids_file = out / "shard-00000.ids"
    ids_file.write_bytes(ids_file.read_bytes()[:-2])
    with pytest.raises(DataError, match="shard-00000.ids.*truncated"):
        TokenShards(out)
    assert prepare([text], tok, out, min_length=3)["skipped"] is False  # damaged: prepared again
    assert len(TokenShards(out)) == 5


def test_worker_count_does_not_change_output_bytes(tmp_path, tok):
    lines = [" ".join(VOCAB[5 + (i * 7) % 200: 5 + (i * 7) % 200 + 3 + i % 40]) for i in range(300)]
    text = write(tmp_path / "t.txt", lines)
    prepare([text], tok, tmp_path / "one", max_length=16, min_length=4, shard_tokens=500, batch_size=64)
    prepare([text], tok, tmp_path / "two", max_length=16, min_length=4, shard_tokens=500, batch_size=13, workers=2)
    assert folder_bytes(tmp_path / "one") == folder_bytes(tmp_path / "two")
    assert len(folder_bytes(tmp_path / "one")) > 3


def test_bad_inputs_named_before_tokenizing(tmp_path, tok):
    good = write(tmp_path / "good.txt", ["the movie was good"])
    out = tmp_path / "c"
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        prepare([good, tmp_path / "missing.txt"], tok, out)
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(DataError, match="empty.txt: empty file"):
        prepare([good, tmp_path / "empty.txt"], tok, out)
    (tmp_path / "blank.txt").write_text("\n  \n\n")
    with pytest.raises(DataError, match="blank.txt: only blank lines"):
        prepare([tmp_path / "blank.txt"], tok, out)
    (tmp_path / "model.bin").write_bytes(b"PK\x03\x04\x00\x00binary")
    with pytest.raises(DataError, match="model.bin: binary file"):
        prepare([tmp_path / "model.bin"], tok, out)
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    with pytest.raises(DataError, match="latin1.txt: not UTF-8"):
        prepare([tmp_path / "latin1.txt"], tok, out)
    assert not out.exists()  # refused before anything was written
    late = tmp_path / "late.txt"
    late.write_bytes(b"the movie was good\n" * 100 + b"caf\xe9\n")  # bad byte after the first KB
    with pytest.raises(DataError, match="late.txt:101: not UTF-8"):
        prepare([late], tok, out, min_length=3)
    with pytest.raises(DataError, match="meta.json"):
        TokenShards(out)  # the aborted run left no folder that reads as complete
    with pytest.raises(ValueError, match="--max-length"):
        prepare([good], tok, out, max_length=2)
    with pytest.raises(ValueError, match="--min-length"):
        prepare([good], tok, out, max_length=16, min_length=20)
    assert not any(out.iterdir())


def test_corpus_with_no_long_enough_sequence(tmp_path, tok):
    text = write(tmp_path / "short.txt", ["good", "the movie", "bad"])
    with pytest.raises(DataError, match=r"short.txt.*no sequence left.*--min-length 8"):
        prepare([text], tok, tmp_path / "c")
    with pytest.raises(DataError, match="meta.json"):
        TokenShards(tmp_path / "c")


def test_output_folder_with_other_files_is_refused(tmp_path, tok):
    text = write(tmp_path / "t.txt", ["the movie was good and the music was great"])
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "notes.md").write_text("mine")
    with pytest.raises(ValueError, match="--output .*notes.md"):
        prepare([text], tok, tmp_path / "c", min_length=3)
    assert (tmp_path / "c" / "notes.md").read_text() == "mine"


def test_shards_of_another_tokenizer_are_refused(tmp_path, tok):
    text = write(tmp_path / "t.txt", ["the movie was good and the music was great"])
    prepare([text], tok, tmp_path / "c", min_length=3)
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    (other_dir / "vocab.txt").write_text("\n".join(VOCAB[:-1] + ["zebra", VOCAB[-1]]) + "\n")
    from transformers import BertTokenizer

    other = BertTokenizer(str(other_dir / "vocab.txt"), do_lower_case=True)
    other.name_or_path = "other-tokenizer"
    with pytest.raises(ValueError, match=r"token shards .*[/\\]c were made with tokenizer .*other-tokenizer"):
        TokenShards(tmp_path / "c", other)
    TokenShards(tmp_path / "c", tok)  # the same vocabulary is accepted


def test_cli_prepare_and_info(tmp_path, tiny_encoder_dir, capsys):
    from bertdistill.cli import main

    text = write(tmp_path / "t.txt", ["the movie was good and the music was great"] * 4)
    prepare_args = ["corpus", "prepare", "--tokenizer", str(tiny_encoder_dir), "--min-length", "4", "--no-progress"]
    assert main(prepare_args + ["--text", str(text), "--output", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "sequences 4" in out and "tokens 44" in out
    assert main(prepare_args + ["--text", str(text), "--output", str(tmp_path / "c")]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert main(["corpus", "info", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "4 sequences" in out and "uint16" in out
    assert main(prepare_args + ["--text", str(tmp_path / "nope.txt"), "--output", str(tmp_path / "d")]) == 2
    assert "nope.txt" in capsys.readouterr().err
    assert main(["corpus", "info", str(tmp_path / "d")]) == 2
    meta = json.loads((tmp_path / "c" / "meta.json").read_text())
    assert meta["tokenizer"] == str(tiny_encoder_dir)


@pytest.mark.integration
def test_minilm_on_wikitext_and_task_sentences(tmp_path, shared_data):
    wiki = shared_data / "wikitext2" / "raw" / "wiki.valid.raw"
    summary = prepare([wiki, "task:rotten_tomatoes:dev"], "minilm-l6", tmp_path / "c", max_length=64)
    shards = TokenShards(tmp_path / "c", "minilm-l6")
    assert len(shards) == summary["sequences"] > 3000
    assert shards.lengths.max() == 64 and shards.lengths.min() >= 8
    assert shards[0][0] == 101 and shards[0][-1] == 102
    assert len(shards.meta["inputs"]) == 2 and "sha256" in shards.meta["inputs"][1]
