import random

import pytest
import torch

from bertdistill.data.encode import (
    Collator,
    encode,
    length_grouped_batches,
    padded_tokens,
    sequential_batches,
)
from bertdistill.data.errors import DataError
from bertdistill.data.examples import Example, TaskSpec
from tiny import make_tiny_tokenizer, tiny_task


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return make_tiny_tokenizer(tmp_path_factory.mktemp("vocab"))


def ids(tok, *pieces):
    return tok.convert_tokens_to_ids(list(pieces))


def test_ner_labels_on_first_word_piece_only(tok):
    task = tiny_task("token")  # O B-PER I-PER B-LOC I-LOC
    ex = Example(["John", "unbelievable", "walking", "Paris"], label=[1, 0, 0, 3])
    (f,) = encode(task, [ex], tok)
    assert f["input_ids"] == ids(
        tok, "[CLS]", "john", "un", "##believ", "##able", "walk", "##ing", "paris", "[SEP]"
    )
    assert f["labels"] == [-100, 1, 0, -100, -100, 0, -100, 3, -100]
    assert f["token_type_ids"] == [0] * 9


def test_ner_truncation_and_errors(tok):
    task = tiny_task("token")
    ex = Example(["john", "unbelievable", "paris"], label=[1, 0, 3])
    (f,) = encode(task, [ex], tok, max_length=4)  # [CLS] john un [SEP]
    assert f["labels"] == [-100, 1, 0, -100]
    with pytest.raises(DataError, match=r"train.txt:7: 2 words but 1 tags"):
        encode(task, [Example(["john", "paris"], label=[1], source="train.txt:7")], tok)
    with pytest.raises(DataError, match="list of words"):
        encode(task, [Example("john paris", label=[1, 3])], tok)
    with pytest.raises(DataError, match="tag id 9 out of range"):
        encode(task, [Example(["john"], label=[9])], tok)


def test_classification_pairs_regression_and_unlabelled(tok):
    cls = tiny_task("classification")
    feats = encode(cls, [Example("good movie", label=1), Example("bad film", label=None)], tok)
    assert feats[0]["input_ids"] == ids(tok, "[CLS]", "good", "movie", "[SEP]")
    assert feats[0]["labels"] == 1 and isinstance(feats[0]["labels"], int)
    assert "labels" not in feats[1]
    pair = TaskSpec("p", "regression", None, ("pearson",), pair=True)
    (f,) = encode(pair, [Example("good movie", "bad film", label=3)], tok)
    assert f["input_ids"] == ids(tok, "[CLS]", "good", "movie", "[SEP]", "bad", "film", "[SEP]")
    assert f["token_type_ids"] == [0, 0, 0, 0, 1, 1, 1]
    assert f["labels"] == 3.0 and isinstance(f["labels"], float)
    with pytest.raises(DataError, match="no second text"):
        encode(pair, [Example("good movie", None, label=1.0)], tok)
    with pytest.raises(DataError, match="class id 2 out of range"):
        encode(cls, [Example("good", label=2)], tok)
    long = encode(cls, [Example(" ".join(["good"] * 50), label=0)], tok, max_length=10)
    assert len(long[0]["input_ids"]) == 10 and long[0]["input_ids"][-1] == tok.sep_token_id


def test_encode_many_examples_in_chunks(tok):
    cls = tiny_task("classification")
    examples = [Example(" ".join(["good"] * (i % 7 + 1)), label=i % 2) for i in range(2500)]
    feats = encode(cls, examples, tok)
    assert len(feats) == 2500
    assert [len(f["input_ids"]) for f in feats[:8]] == [3, 4, 5, 6, 7, 8, 9, 3]
    assert [f["labels"] for f in feats[1998:2002]] == [0, 1, 0, 1]


def test_collator_pads_and_masks():
    feats = [
        {"input_ids": [2, 5, 3], "token_type_ids": [0, 0, 0], "labels": [-100, 1, -100]},
        {"input_ids": [2, 5, 6, 7, 3], "token_type_ids": [0, 0, 0, 1, 1], "labels": [-100, 0, 2, -100, -100]},
    ]
    batch = Collator(pad_token_id=0)(feats)
    assert batch["input_ids"].tolist() == [[2, 5, 3, 0, 0], [2, 5, 6, 7, 3]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert batch["token_type_ids"].tolist() == [[0, 0, 0, 0, 0], [0, 0, 0, 1, 1]]
    assert batch["labels"].tolist() == [[-100, 1, -100, -100, -100], [-100, 0, 2, -100, -100]]
    assert batch["labels"].dtype == torch.long

    batch = Collator(pad_token_id=9, pad_to_multiple_of=8)([{"input_ids": [2, 3], "labels": 2.5}])
    assert batch["input_ids"].tolist() == [[2, 3] + [9] * 6]
    assert batch["attention_mask"].sum().item() == 2
    assert "token_type_ids" not in batch
    assert batch["labels"].dtype == torch.float32 and batch["labels"].tolist() == [2.5]

    batch = Collator(0)([{"input_ids": [1], "labels": 1, "index": 4}, {"input_ids": [1, 2], "labels": 0, "index": 7}])
    assert batch["labels"].dtype == torch.long and batch["labels"].tolist() == [1, 0]
    assert batch["index"].tolist() == [4, 7]
    with pytest.raises(ValueError, match="1 of 2 features"):
        Collator(0)([{"input_ids": [1], "labels": 1}, {"input_ids": [1]}])


def test_length_grouping_reduces_padding_and_covers_everything():
    rng = random.Random(1)
    lengths = [rng.randint(5, 120) for _ in range(2000)]
    grouped = length_grouped_batches(lengths, 16, seed=3, megabatch_mult=20)
    assert sorted(i for b in grouped for i in b) == list(range(2000))
    assert len(grouped) == 125 and all(len(b) == 16 for b in grouped)
    order = list(range(2000))
    random.Random(3).shuffle(order)
    random_batches = [order[i : i + 16] for i in range(0, 2000, 16)]
    grouped_pad = padded_tokens(grouped, lengths)
    random_pad = padded_tokens(random_batches, lengths)
    assert grouped_pad < 0.7 * random_pad, (grouped_pad, random_pad)
    # the batch with the longest sequence goes first
    assert max(lengths[i] for i in grouped[0]) == max(lengths)


def test_length_grouping_is_deterministic_for_a_seed():
    lengths = [(i * 37) % 101 for i in range(500)]
    a = length_grouped_batches(lengths, 8, seed=5)
    b = length_grouped_batches(lengths, 8, seed=5)
    c = length_grouped_batches(lengths, 8, seed=6)
    assert a == b
    assert a != c
    assert sorted(i for x in c for i in x) == list(range(500))


def test_length_grouping_drop_last_and_no_shuffle():
    lengths = [3, 9, 1, 7, 5, 2, 8]
    batches = length_grouped_batches(lengths, 3, drop_last=True, seed=0)
    assert sorted(len(b) for b in batches) == [3, 3]
    kept = length_grouped_batches(lengths, 3, seed=0)
    assert sorted(len(b) for b in kept) == [1, 3, 3]
    assert length_grouped_batches(lengths, 3, shuffle=False) == [[1, 6, 3], [4, 0, 5], [2]]
    assert length_grouped_batches([], 4) == []
    with pytest.raises(ValueError):
        length_grouped_batches(lengths, 0)


def test_sequential_batches():
    assert sequential_batches(5, 2) == [[0, 1], [2, 3], [4]]
    assert sequential_batches(0, 3) == []
