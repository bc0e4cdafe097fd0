"""CoNLL-2003: both real copies (IOB2 and original IOB1), IOB1 -> IOB2, and error paths."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bertdistill.data import DataError, get_task_spec, load_task
from bertdistill.data.conll import to_iob2
from bertdistill.paths import shared_data_dir

SIZES = {"train": 14_041, "dev": 3_250, "test": 3_453}
TOKENS = {"train": 203_621, "dev": 51_362, "test": 46_435}
ENTITIES = {  # B- tags per type (LOC, MISC, ORG, PER), from MANIFEST.md
    "train": {"LOC": 7_140, "MISC": 3_438, "ORG": 6_321, "PER": 6_600},
    "dev": {"LOC": 1_837, "MISC": 922, "ORG": 1_341, "PER": 1_842},
    "test": {"LOC": 1_668, "MISC": 702, "ORG": 1_661, "PER": 1_617},
}


@pytest.fixture(scope="module")
def conll_dir() -> Path:
    path = shared_data_dir() / "conll2003"
    if not path.exists():
        pytest.skip(f"shared CoNLL-2003 data not found at {path} (set BERTDISTILL_DATA)")
    return path


@pytest.fixture(scope="module")
def iob2(conll_dir):
    return load_task("conll2003", conll_dir / "iob2")


@pytest.fixture(scope="module")
def iob1(conll_dir):
    return load_task("conll2003", conll_dir / "iob1_original")


def entity_counts(examples, labels) -> dict:
    return dict(Counter(labels[t][2:] for e in examples for t in e.label if labels[t][0] == "B"))


@pytest.mark.parametrize("copy", ["iob2", "iob1"])
def test_sizes_tokens_and_entities(copy, request):
    data = request.getfixturevalue(copy)
    labels = data.task.labels
    for split, examples in data.splits.items():
        assert len(examples) == SIZES[split], split
        assert sum(len(e.text) for e in examples) == TOKENS[split], split
        assert all(len(e.text) == len(e.label) for e in examples)
        assert entity_counts(examples, labels) == ENTITIES[split], split
    assert set(data.splits) == set(SIZES)


def test_iob1_converted_equals_iob2(iob1, iob2):
    for split in SIZES:
        a, b = iob1.split(split), iob2.split(split)
        assert [e.text for e in a] == [e.text for e in b]
        assert [e.label for e in a] == [e.label for e in b]


def test_first_sentence_and_source(iob2, iob1, conll_dir):
    first = iob2.split("train")[0]
    assert " ".join(first.text) == "EU rejects German call to boycott British lamb ."
    tags = [iob2.task.labels[t] for t in first.label]
    assert tags == ["B-ORG", "O", "B-MISC", "O", "O", "O", "B-MISC", "O", "O"]
    assert first.source == f"{conll_dir / 'iob2' / 'train.txt'}:3"
    # the IOB1 copy starts with the sentence itself: its -DOCSTART- moved to the end
    assert iob1.split("train")[0].source == f"{conll_dir / 'iob1_original' / 'eng.train'}:1"


def test_spec():
    spec = get_task_spec("conll2003")
    assert spec.kind == "token_classification"
    assert spec.labels == "O B-PER I-PER B-ORG I-ORG B-LOC I-LOC B-MISC I-MISC".split()
    assert spec.metrics == ("entity_f1", "entity_precision", "entity_recall", "token_accuracy")


def test_to_iob2():
    assert to_iob2(["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-LOC", "I-ORG"]) == [
        "B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC", "B-ORG",
    ]
    iob2 = ["B-ORG", "I-ORG", "O", "B-PER", "B-PER", "I-PER"]
    assert to_iob2(iob2) == iob2
    assert to_iob2([]) == []


# ---- small files ----------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_small_iob1_file_with_docstart_at_end(tmp_path):
    write(
        tmp_path / "eng.train",
        "Peter NNP I-NP I-PER\nBlackburn NNP I-NP I-PER\nvisits VBZ I-VP O\nBonn NNP I-NP I-LOC\n"
        "\n"
        "Bonn\tI-LOC\n"  # two tab-separated columns: the tag is the last one
        "\n\n"
        "-DOCSTART- -X- O O",
    )
    data = load_task("conll2003", tmp_path)
    assert list(data.splits) == ["train"]
    a, b = data.split("train")
    tags = data.task.labels
    assert [tags[t] for t in a.label] == ["B-PER", "I-PER", "O", "B-LOC"]
    assert (b.text, [tags[t] for t in b.label]) == (["Bonn"], ["B-LOC"])
    assert b.source == f"{tmp_path / 'eng.train'}:6"


def test_docstart_ends_a_sentence_and_split_names(tmp_path):
    doc = "-DOCSTART- -X- -X- O\n"
    write(tmp_path / "train.txt", doc + "\nA x y O\n" + doc + "B x y B-ORG\n")
    write(tmp_path / "valid.txt", "C x y O\n")
    write(tmp_path / "test.txt", "D x y O\n")
    data = load_task("conll2003", tmp_path)
    assert [e.text for e in data.split("train")] == [["A"], ["B"]]
    assert sorted(data.splits) == ["dev", "test", "train"]


def test_missing_tag(tmp_path):
    path = write(tmp_path / "train.txt", "A x y O\nlonely\n")
    with pytest.raises(DataError, match="missing tag") as info:
        load_task("conll2003", tmp_path)
    assert (info.value.path, info.value.line) == (str(path), 2)


def test_unknown_tag_lists_known_tags(tmp_path):
    write(tmp_path / "train.txt", "A x y O\nB x y B-GPE\n")
    with pytest.raises(DataError, match=r"unknown tag 'B-GPE'.*'B-PER'") as info:
        load_task("conll2003", tmp_path)
    assert info.value.line == 2


def test_skip_bad_rows_skips_the_sentence(tmp_path):
    write(tmp_path / "train.txt", "A x y O\nB x y B-GPE\nC x y O\n\nD x y B-PER\n\nlonely\n")
    data = load_task("conll2003", tmp_path, skip_bad_rows=True)
    assert data.skipped == 2
    assert [e.text for e in data.split("train")] == [["D"]]


def test_missing_and_empty(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_task("conll2003", tmp_path / "nope")
    with pytest.raises(DataError, match="no CoNLL files"):
        load_task("conll2003", tmp_path)
    write(tmp_path / "train.txt", "-DOCSTART- -X- -X- O\n\n")
    with pytest.raises(DataError, match="no sentences"):
        load_task("conll2003", tmp_path)
