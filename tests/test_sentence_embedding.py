"""Sentence-embedding students: pooling read from a sentence-transformers folder, the
``sentence_embedding`` loss against hand-computed values, and `general-distill --recipe
general_embedding` saving a folder that sentence-transformers and transformers both load."""

from __future__ import annotations

import json
import math

import pytest
import torch
from transformers import AutoModel, BertModel

from bertdistill.cli import main
from bertdistill.distill.losses import build_loss
from bertdistill.distill.recipe import load_recipe
from bertdistill.embedding_eval import Embedder
from bertdistill.models.loading import resolve_model
from bertdistill.models.sentence_embedding import pool, read_sentence_config
from bertdistill.pipelines.embedding_student import with_teacher_pooling
from bertdistill.pipelines.general_distill import GeneralDistillConfig, GeneralDistillRecipe
from general_fixtures import prepare, save_tiny_mlm, write_text

HIDDEN = torch.tensor([[[1.0, 2.0], [3.0, -4.0], [100.0, 100.0]],
                       [[0.0, 1.0], [2.0, 2.0], [-1.0, 5.0]]])
MASK = torch.tensor([[1, 1, 0], [1, 1, 1]])


def test_pooling_by_hand():
    assert torch.allclose(pool(HIDDEN, MASK, "mean"), torch.tensor([[2.0, -1.0], [1 / 3, 8 / 3]]))
    assert torch.equal(pool(HIDDEN, MASK, "cls"), torch.tensor([[1.0, 2.0], [0.0, 1.0]]))
    assert torch.equal(pool(HIDDEN, MASK, "max"), torch.tensor([[3.0, 2.0], [2.0, 5.0]]))  # padding's 100 left out


def test_loss_by_hand():
    student = torch.zeros(1, 2, 2)
    student[0, 0] = torch.tensor([1.0, 0.0])
    student[0, 1] = torch.tensor([3.0, 0.0])  # mean [2, 0]
    teacher = torch.zeros(1, 2, 2)
    teacher[0, 0] = torch.tensor([0.0, 2.0])
    teacher[0, 1] = torch.tensor([99.0, 99.0])  # padding: mean [0, 2]
    mask = torch.tensor([[1, 0]])
    teacher_mask_two = torch.tensor([[1, 1]])
    plain = build_loss("sentence_embedding", pooling="mean", normalize=False)
    # student mean over its one real token is [1, 0]; teacher [0, 2]: MSE = (1 + 4) / 2
    assert plain(student, teacher, mask).item() == pytest.approx(2.5)
    # both real tokens: student [2, 0], teacher [49.5, 50.5]
    assert plain(student, teacher, teacher_mask_two).item() == pytest.approx(((47.5) ** 2 + 50.5 ** 2) / 2)
    # unit length: student [1, 0], teacher [0, 1]; MSE = (1 + 1) / 2, cosine term 1 - 0
    both = build_loss("sentence_embedding", pooling="mean", normalize=True, mse=2.0, cosine=0.5)
    assert both(student, teacher, mask).item() == pytest.approx(2.0 * 1.0 + 0.5 * 1.0)
    cls = build_loss("sentence_embedding", pooling="cls", normalize=False, mse=0.0, cosine=1.0)
    assert cls(student, teacher, teacher_mask_two).item() == pytest.approx(1.0)  # [1, 0] vs [0, 2]
    with pytest.raises(ValueError, match="pooling"):
        build_loss("sentence_embedding", pooling="weightedmean")
    with pytest.raises(ValueError, match="read from the teacher"):
        build_loss("sentence_embedding")(student, teacher, mask)  # 'teacher' left unresolved


def test_minilm_folder_config_and_bad_folders(tmp_path):
    config = read_sentence_config(resolve_model("minilm-l6"))
    assert (config.pooling, config.normalize, config.max_seq_length, config.has_dense) == ("mean", True, 256, False)
    assert read_sentence_config(tmp_path) is None  # no modules.json: a plain encoder
    (tmp_path / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 8, "pooling_mode_mean_sqrt_len_tokens": True}))
    with pytest.raises(ValueError, match=r"1_Pooling/config.json: pooling pooling_mode_mean_sqrt_len_tokens"):
        read_sentence_config(tmp_path)
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"embedding_dimension": 8, "pooling_mode": "cls"}))
    assert read_sentence_config(tmp_path).pooling == "cls"
    (tmp_path / "1_Pooling" / "config.json").write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_sentence_config(tmp_path)


def _sentence_teacher(folder, pooling: str, normalize: bool):
    """A tiny BERT encoder folder turned into a sentence-transformers folder by hand."""
    save_tiny_mlm(folder, seed=0, kind="base")
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 32, "pooling_mode_cls_token": pooling == "cls",
         "pooling_mode_mean_tokens": pooling == "mean", "pooling_mode_max_tokens": pooling == "max"}))
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 40, "do_lower_case": False}))
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("embedding")
    teacher = _sentence_teacher(root / "teacher", "cls", True)
    corpus = prepare(write_text(root / "train.txt", 120, 1), str(teacher), root / "corpus")
    return {"teacher": teacher, "corpus": corpus, "root": root}


def test_teacher_pooling_goes_into_the_recipe(data, tmp_path):
    recipe, sentence = with_teacher_pooling(load_recipe("general_embedding"), str(data["teacher"]))
    assert recipe.terms[0].params["pooling"] == "cls" and recipe.terms[0].params["normalize"] is True
    assert sentence.max_seq_length == 40
    plain = save_tiny_mlm(tmp_path / "plain", kind="base")
    with pytest.raises(ValueError, match="no sentence-transformers modules.json"):
        with_teacher_pooling(load_recipe("general_embedding"), str(plain))
    assert with_teacher_pooling(load_recipe("general_minilm"), str(plain))[1] is None


def _st_vectors(folder, texts):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu")
    return torch.as_tensor(model.encode(texts, convert_to_numpy=True, batch_size=4)), model


TEXTS = ["the movie was great", "a dull and boring film", "good"]


@pytest.mark.parametrize("shape", ["copied", "narrow"])
def test_general_embedding_student_is_a_sentence_transformers_folder(data, tmp_path, shape):
    pytest.importorskip("sentence_transformers")
    out = tmp_path / "run"
    extra = {"student_layers": 1} if shape == "copied" else {
        "student_config": {"hidden_size": 24, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 48}}
    recipe = GeneralDistillRecipe(GeneralDistillConfig(
        teacher=str(data["teacher"]), corpus=str(data["corpus"]), output=str(out), recipe="general_embedding",
        train={"lr": 3e-3, "batch_size": 8, "log_every": 1, "seed": 3, "epochs": 3}, **extra))
    result = recipe.run()
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    parts = [row["parts"]["sentence_embedding"] for row in log if "parts" in row]
    assert len(parts) > 20 and sum(parts[-5:]) < 0.5 * sum(parts[:5]), parts  # the vectors move to the teacher's
    folder = out / "student"
    assert type(AutoModel.from_pretrained(folder)) is BertModel
    modules = json.loads((folder / "modules.json").read_text())
    kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
    assert kinds == (["Transformer", "Pooling", "Normalize"] if shape == "copied"
                     else ["Transformer", "Pooling", "Dense", "Normalize"])
    vectors, st_model = _st_vectors(folder, TEXTS)
    assert st_model.max_seq_length == 40 and vectors.shape == (3, 32)  # the teacher's width, through the Dense
    assert torch.allclose(vectors.norm(dim=-1), torch.ones(3), atol=1e-5)
    ours = Embedder(str(folder), device="cpu").load().encode(TEXTS)
    assert torch.allclose(torch.as_tensor(ours), vectors, atol=1e-5)  # embed-eval computes what ST computes
    teacher_vectors, _ = _st_vectors(data["teacher"], TEXTS)
    teacher_ours = Embedder(str(data["teacher"]), device="cpu").load().encode(TEXTS)
    assert torch.allclose(torch.as_tensor(teacher_ours), teacher_vectors, atol=1e-5)
    cos = (vectors * teacher_vectors).sum(-1)
    assert result["student_dir"] == str(folder) and all(math.isfinite(c) for c in cos.tolist())


def test_max_pooling_narrow_student_refused_in_one_line(tmp_path, capsys):
    teacher = _sentence_teacher(tmp_path / "teacher", "max", False)
    corpus = prepare(write_text(tmp_path / "train.txt", 10, 1), str(teacher), tmp_path / "corpus")
    capsys.readouterr()
    rc = main(["general-distill", "--teacher", str(teacher), "--corpus", str(corpus), "--output",
               str(tmp_path / "run"), "--recipe", "general_embedding", "--student-config",
               '{"hidden_size": 24, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 48}'])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "max pooling does not commute" in err
