"""Masking probabilities, the per-sequence MLM masker and the collator."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bertdistill.corpus import MlmCollator, MlmMasker, ShardDataset, TokenShards, masking_probabilities, prepare_corpus
from bertdistill.corpus.vocab import continuation_mask

from tiny import VOCAB, make_tiny_tokenizer

ID = {token: i for i, token in enumerate(VOCAB)}
PAD, UNK, CLS, SEP, MASK = (ID[t] for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"))
SPECIALS = [PAD, UNK, CLS, SEP, MASK]
V = len(VOCAB)


def masker(counts=None, **kw) -> MlmMasker:
    counts = np.ones(V, dtype=np.int64) if counts is None else counts
    probs = masking_probabilities(counts, special_ids=SPECIALS)
    return MlmMasker(probs, mask_token_id=MASK, vocab_size=V, **kw)


def batch(lengths: list[int], width: int | None = None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """[CLS] random words [SEP] rows, right-padded to ``width``."""
    g = torch.Generator().manual_seed(seed)
    width = width or max(lengths)
    ids = torch.full((len(lengths), width), PAD)
    attention = torch.zeros((len(lengths), width), dtype=torch.long)
    for row, n in enumerate(lengths):
        ids[row, 0], ids[row, n - 1] = CLS, SEP
        ids[row, 1 : n - 1] = torch.randint(5, V, (n - 2,), generator=g)
        attention[row, :n] = 1
    return ids, attention


def test_masking_probabilities_by_hand():
    counts = np.array([7, 0, 1, 8, 1000, 5], dtype=np.int64)
    probs = masking_probabilities(counts, smoothing=0.7, special_ids=[0])
    weights = np.array([0.0, 1.0, 1.0, 8 ** -0.7, 1000 ** -0.7, 5 ** -0.7])
    assert probs.dtype == torch.float32
    np.testing.assert_allclose(probs.numpy(), weights / weights.sum(), rtol=1e-6)
    assert masking_probabilities(counts, smoothing=0.0)[1:].unique().numel() == 1
    with pytest.raises(ValueError, match="outside the vocabulary"):
        masking_probabilities(counts, special_ids=[6])


def test_exact_budget_and_never_specials_or_padding():
    m = masker()
    lengths = [3, 7, 22, 40, 102, 128]
    ids, attention = batch(lengths, width=130)
    masked, labels = m(ids, attention, seeds=list(range(len(lengths))))
    for row, n in enumerate(lengths):
        chosen = labels[row] != -100
        assert int(chosen.sum()) == math.ceil(0.15 * (n - 2))
        assert not chosen[0] and not chosen[n - 1] and not chosen[n:].any()  # [CLS], [SEP], padding
        assert torch.equal(labels[row][chosen], ids[row][chosen])
        assert torch.equal(masked[row][~chosen], ids[row][~chosen])
    assert m.budget(20) == 3  # 0.15 x 20 is 3, not ceil(3.0000000000000004)


def test_80_10_10_proportions_on_a_large_sample():
    m = masker()
    ids, attention = batch([120] * 1500, seed=3)
    masked, labels = m(ids, attention, seeds=range(1500))
    chosen = labels != -100
    total = int(chosen.sum())
    assert total == 1500 * math.ceil(0.15 * 118)
    as_mask = (masked[chosen] == MASK).float().mean().item()
    unchanged = (masked[chosen] == labels[chosen]).float().mean().item()
    replaced = masked[chosen][(masked[chosen] != MASK) & (masked[chosen] != labels[chosen])]
    # 26,550 draws: the standard error of a share near 0.1 is 0.0018
    assert abs(as_mask - 0.8) < 0.01 and abs(unchanged - 0.1) < 0.01
    assert abs(replaced.numel() / total - 0.1) < 0.01
    assert not any(int(t) in SPECIALS for t in replaced)


def test_positions_are_drawn_by_token_weight_without_replacement():
    counts = np.full(V, 1000, dtype=np.int64)
    a, b, c = 10, 11, 12
    counts[[a, b, c]] = [1, 2 ** (1 / 0.7), 5 ** (1 / 0.7)]  # weights 1 : 1/2 : 1/5 before rounding
    m = masker(counts, mlm_probability=0.3)
    weights = masking_probabilities(counts, special_ids=SPECIALS)[[a, b, c]].double()
    expected = (weights / weights.sum()).numpy()
    ids = torch.tensor([[CLS, a, b, c, SEP]] * 6000)
    _, labels = m(ids, torch.ones_like(ids), seeds=range(6000))
    chosen = labels != -100
    assert (chosen.sum(1) == 1).all()  # ceil(0.3 x 3) = 1 position
    share = chosen[:, 1:4].double().mean(0).numpy()
    np.testing.assert_allclose(share, expected, atol=0.02)


def test_same_seed_same_mask_whatever_the_batch():
    m = masker()
    ids, attention = batch([50, 9, 31, 77], seed=5)
    seeds = [101, 202, 303, 404]
    together = m(ids, attention, seeds)
    for row in range(4):
        n = int(attention[row].sum())
        alone = m(ids[row : row + 1, :n], attention[row : row + 1, :n], [seeds[row]])
        for full, single in zip(together, alone):
            assert torch.equal(full[row, :n], single[0])
    # another order and more padding
    order = [3, 1, 0, 2]
    wide_ids = torch.nn.functional.pad(ids[order], (0, 20), value=PAD)
    wide_att = torch.nn.functional.pad(attention[order], (0, 20))
    shuffled = m(wide_ids, wide_att, [seeds[i] for i in order])
    for new, old in enumerate(order):
        assert torch.equal(shuffled[0][new, :77], together[0][old, :77])
    # another seed gives another mask
    assert not torch.equal(m(ids, attention, [1, 2, 3, 4])[1], together[1])


def test_seed_for_is_stable_and_distinct():
    assert MlmMasker.seed_for(0, 0, 0) == MlmMasker.seed_for(0, 0, 0)
    # pinned: changing the hash would change the masks of every run made so far
    assert MlmMasker.seed_for(0, 0, 0) == 9044811311333822937
    seeds = {MlmMasker.seed_for(s, e, i) for s in range(3) for e in range(3) for i in range(50)}
    assert len(seeds) == 450 and all(0 <= s < 2 ** 63 for s in seeds)


def test_whole_word_masking_takes_every_piece(tmp_path):
    tok = make_tiny_tokenizer(tmp_path)
    cont = continuation_mask(tok)
    assert cont[ID["##ing"]] and cont[ID["##believ"]] and not cont[ID["un"]] and not cont[ID["the"]]
    m = masker(whole_word=True, continuation=cont)
    text = "the unbelievable walking movie was boring and the talking actor loved unbelievable music " * 3
    row = tok(text.strip())["input_ids"]
    ids = torch.tensor([row] * 300)
    masked, labels = m(ids, torch.ones_like(ids), seeds=range(300))
    words, start = [], None
    for pos in range(1, len(row) - 1):  # group positions into words
        if not tok.convert_ids_to_tokens(row[pos]).startswith("##"):
            words.append([pos])
        else:
            words[-1].append(pos)
    budget = math.ceil(0.15 * (len(row) - 2))
    multi_piece_hit = 0
    for r in range(300):
        chosen = labels[r] != -100
        assert 0 < int(chosen.sum()) <= budget
        for word in words:
            states = {bool(chosen[p]) for p in word}
            assert len(states) == 1, f"row {r}: word {word} partly masked"
            multi_piece_hit += len(word) > 1 and states == {True}
    assert multi_piece_hit > 50
    with pytest.raises(ValueError, match="continuation"):
        masker(whole_word=True)


def test_collator_pads_masks_and_changes_mask_with_epoch(tmp_path):
    tok = make_tiny_tokenizer(tmp_path / "tok")
    lines = ["the movie was good and the music was great", "a long story about a city and a river",
             "i love paris", "they watch the show every night and every morning too"]
    (tmp_path / "t.txt").write_text("\n".join(lines) + "\n")
    prepare_corpus([tmp_path / "t.txt"], tok, tmp_path / "c", min_length=3, progress=False)
    shards = TokenShards(tmp_path / "c", tok)
    data = ShardDataset(shards)
    m = MlmMasker(masking_probabilities(shards.token_counts, special_ids=SPECIALS), mask_token_id=MASK, vocab_size=V)
    collate = MlmCollator(shards, PAD, m, base_seed=7)
    out = collate([data[3], data[1]], epoch=0)
    assert out["input_ids"].shape == out["labels"].shape == (2, len(shards[3]))
    assert out["index"].tolist() == [3, 1]
    assert out["attention_mask"][1].sum() == len(shards[1])
    assert out["original_input_ids"][1, : len(shards[1])].tolist() == shards[1].tolist()
    assert (out["original_input_ids"][1, len(shards[1]):] == PAD).all()
    # the mask of a sequence follows (base seed, epoch, index), not its batch
    alone = collate([1], epoch=0)  # bare indices are read from the shards
    n = len(shards[1])
    assert torch.equal(alone["labels"][0], out["labels"][1, :n])
    later = [collate([data[i]], epoch=e)["labels"] for i in range(4) for e in (1, 2)]
    assert any(not torch.equal(later[2 * i], later[2 * i + 1]) for i in range(4))
    collate.set_epoch(1)
    assert torch.equal(collate([data[0]])["labels"], later[0])


def _trained_tokenizer(kind: str):
    """A BPE tokenizer trained on the toy sentences: byte-level ('Ġ' starts a word), sentencepiece-style
    Metaspace ('▁' starts a word) or word-level (no marker at all)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from conftest import toy_sentences

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    if kind == "word":
        tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        trainer = trainers.WordLevelTrainer(special_tokens=specials, show_progress=False)
    else:
        tok = Tokenizer(models.BPE(unk_token="[UNK]"))
        tok.pre_tokenizer = (pre_tokenizers.ByteLevel(add_prefix_space=False) if kind == "bytelevel"
                             else pre_tokenizers.Metaspace())
        trainer = trainers.BpeTrainer(vocab_size=120, special_tokens=specials, show_progress=False)
    tok.train_from_iterator([s for s, _ in toy_sentences(300, 0)] + ["unbelievable walking"], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")


@pytest.mark.parametrize("kind,marker", [("bytelevel", "\u0120"), ("metaspace", "\u2581")])
def test_whole_word_masking_with_word_start_markers(kind, marker):
    from bertdistill.corpus.vocab import word_boundaries

    tok = _trained_tokenizer(kind)
    assert word_boundaries(tok) == ("start", marker)
    cont = continuation_mask(tok)
    vocab = tok.get_vocab()
    assert not any(cont[vocab[t]] for t in tok.all_special_tokens)
    assert all(bool(cont[i]) == (not t.startswith(marker)) for t, i in vocab.items() if t not in tok.all_special_tokens)
    text = "the unbelievable walking movie was boring and the talking actor loved unbelievable music " * 3
    row = [tok.cls_token_id] + tok(text.strip(), add_special_tokens=False)["input_ids"] + [tok.sep_token_id]
    pieces = tok.convert_ids_to_tokens(row)
    words = []
    for pos in range(1, len(row) - 1):  # a word starts at the first piece or at a marked one
        if pos == 1 or pieces[pos].startswith(marker):
            words.append([pos])
        else:
            words[-1].append(pos)
    assert max(len(w) for w in words) > 1  # some words are cut into several pieces
    n = len(vocab)
    m = MlmMasker(masking_probabilities(np.ones(n, dtype=np.int64), special_ids=tok.all_special_ids),
                  mask_token_id=tok.mask_token_id, vocab_size=n, whole_word=True, continuation=cont)
    ids = torch.tensor([row] * 200)
    _, labels = m(ids, torch.ones_like(ids), seeds=range(200))
    multi_piece_hit = 0
    for r in range(200):
        chosen = labels[r] != -100
        for word in words:
            states = {bool(chosen[p]) for p in word}
            assert len(states) == 1, f"row {r}: word {[pieces[p] for p in word]} partly masked"
            multi_piece_hit += len(word) > 1 and states == {True}
    assert multi_piece_hit > 20


def test_whole_word_is_refused_for_a_vocabulary_without_word_markers():
    from bertdistill.pipelines.mlm_batches import check_masking

    tok = _trained_tokenizer("word")
    check_masking(tok)  # plain masking is fine
    with pytest.raises(ValueError, match=r"--whole-word: the vocabulary of tokenizer .* marks neither .* "
                                         r"leave --whole-word out"):
        check_masking(tok, whole_word=True)
    with pytest.raises(ValueError, match="--whole-word"):
        continuation_mask(tok)
    assert continuation_mask(tok, prefix="##").sum() == 0  # an explicit prefix is taken as given
