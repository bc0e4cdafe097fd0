"""`bertdistill embed-eval`: the metrics on hand-computed cases, the command on a tiny model and
tiny STS-B / SQuAD files, and bad input refused in one line before any model loads."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import stats

import bertdistill.models.mlm as mlm
from bertdistill.cli import main
from bertdistill.embedding_eval import cosine_matrix, read_eval_data, retrieval_metrics, sts_spearman
from general_fixtures import save_tiny_mlm


def test_retrieval_metrics_by_hand():
    similarity = np.array([[0.9, 0.1, 0.3, 0.2],    # own item 0 ranked 1
                           [0.5, 0.4, 0.8, 0.6],    # own item 1: 0.5, 0.8, 0.6 above -> rank 4
                           [0.2, 0.7, 0.1, 0.3]])   # own item 3: 0.7 above -> rank 2
    scores = retrieval_metrics(similarity, [0, 1, 3], ks=(1, 2, 5))
    assert scores["recall@1"] == pytest.approx(1 / 3)
    assert scores["recall@2"] == pytest.approx(2 / 3)
    assert scores["recall@5"] == pytest.approx(1.0)
    assert scores["mrr"] == pytest.approx((1 + 1 / 4 + 1 / 2) / 3)
    with pytest.raises(ValueError, match="one relevant item per query"):
        retrieval_metrics(similarity, [0, 1])


def test_sts_spearman_is_spearman_of_cosine():
    first = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0], [3.0, 1.0]])
    second = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    cosines = [1.0, 1 / np.sqrt(2), 0.0, 4 / (np.sqrt(10) * np.sqrt(2))]
    gold = [4.0, 3.5, 0.5, 3.0]  # ranks 4 3 1 2 against the cosines' 4 2 1 3
    assert sts_spearman(first, second, gold) == pytest.approx(stats.spearmanr(cosines, gold)[0])
    assert sts_spearman(first, second, gold) == pytest.approx(1.0 - 6 * (0 + 1 + 0 + 1) / (4 * 15))


STS_HEADER = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
STS_ROWS = [("the movie was great", "the film was great", 4.5), ("a dull film", "bad and boring", 2.0),
            ("good", "terrible movie", 0.5), ("great acting", "the acting was great", 4.0)]


def _sts(folder):
    folder.mkdir(parents=True, exist_ok=True)
    rows = "".join(f"{i}\tmain\tf\t2012\t{i}\tnone\tnone\t{a}\t{b}\t{s}\n" for i, (a, b, s) in enumerate(STS_ROWS))
    (folder / "dev.tsv").write_text(STS_HEADER + rows)
    (folder / "test_with_labels.tsv").write_text(STS_HEADER + rows)
    return folder


def _squad(path):
    contexts = ["the movie was great and the acting was good", "a dull and boring film",
                "the film was bad"]
    data = {"version": "1.1", "data": [
        {"title": "a", "paragraphs": [
            {"context": contexts[0], "qas": [
                {"id": "q1", "question": "was the movie great", "answers": [{"text": "great", "answer_start": None}]},
                {"id": "q2", "question": "how was the acting", "answers": [{"text": "good", "answer_start": None}]}]},
            {"context": contexts[1], "qas": [
                {"id": "q3", "question": "what film", "answers": [{"text": "boring", "answer_start": None}]}]}]},
        {"title": "b", "paragraphs": [
            {"context": contexts[2], "qas": [
                {"id": "q4", "question": "was it bad", "answers": [{"text": "bad", "answer_start": None}]}]},
            {"context": contexts[0], "qas": [  # the same paragraph again: one candidate
                {"id": "q5", "question": "the movie", "answers": [{"text": "movie", "answer_start": None}]}]}]}]}
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                qa["answers"][0]["answer_start"] = paragraph["context"].index(qa["answers"][0]["text"])
    path.write_text(json.dumps(data))
    return path


def test_eval_data_has_distinct_paragraphs(tmp_path):
    data = read_eval_data(_sts(tmp_path / "sts"), _squad(tmp_path / "dev-v1.1.json"))
    assert len(data.paragraphs) == 3 and data.relevant == [0, 0, 1, 2, 0]
    assert data.sts["test"][2] == [4.5, 2.0, 0.5, 4.0] and set(data.sts) == {"dev", "test"}


def _mean_vectors(folder, texts):
    from transformers import AutoModel, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()
    rows = []
    for text in texts:  # one at a time: no padding
        with torch.no_grad():
            rows.append(model(**tokenizer(text, return_tensors="pt")).last_hidden_state[0].mean(0).numpy())
    return np.stack(rows)


def test_command_compares_two_models(tmp_path, capsys):
    a = save_tiny_mlm(tmp_path / "a", seed=0, kind="base")
    b = save_tiny_mlm(tmp_path / "b", seed=1, kind="base")
    out = tmp_path / "scores.json"
    capsys.readouterr()
    rc = main(["embed-eval", "--model", str(a), "--model", str(b), "--stsb", str(_sts(tmp_path / "sts")),
               "--squad", str(_squad(tmp_path / "dev-v1.1.json")), "--batch-size", "2", "--device", "cpu",
               "--output", str(out)])
    assert rc == 0
    result = json.loads(out.read_text())
    assert [row["model"] for row in result["models"]] == [str(a), str(b)]
    for row in result["models"]:
        assert row["squad_paragraphs"] == 3 and row["squad_questions"] == 5
        assert row["squad_recall@5"] == 1.0 and row["squad_recall@1"] <= row["squad_mrr"] <= 1.0
        assert -1.0 <= row["stsb_dev_spearman"] <= 1.0 and row["stsb_dev_spearman"] == row["stsb_test_spearman"]
        assert row["pooling"] == "mean" and "no modules.json" in row["pooling_from"]
    # the same scores from mean-pooled vectors computed here directly
    data = read_eval_data(tmp_path / "sts", tmp_path / "dev-v1.1.json")
    assert result["models"][1]["squad_mrr"] == pytest.approx(retrieval_metrics(
        cosine_matrix(_mean_vectors(b, data.questions), _mean_vectors(b, data.paragraphs)), data.relevant)["mrr"])
    first, second, gold = data.sts["dev"]
    assert result["models"][1]["stsb_dev_spearman"] == pytest.approx(
        sts_spearman(_mean_vectors(b, first), _mean_vectors(b, second), gold))
    table = capsys.readouterr().out
    assert "stsb_test_spearman" in table and str(b) in table


@pytest.mark.parametrize("case", ["model", "stsb", "squad"])
def test_bad_input_is_one_line_before_any_model_loads(tmp_path, capsys, monkeypatch, case):
    model = save_tiny_mlm(tmp_path / "m", kind="base")
    loaded = []
    monkeypatch.setattr(mlm, "load_encoder", lambda *a, **k: loaded.append(a) or (_ for _ in ()).throw(AssertionError))
    args = {"model": str(model), "stsb": str(_sts(tmp_path / "sts")), "squad": str(_squad(tmp_path / "dev.json"))}
    args[case] = str(tmp_path / "missing")
    capsys.readouterr()
    rc = main(["embed-eval", "--model", str(model), *(["--model", args["model"]] if case == "model" else []),
               "--stsb", args["stsb"], "--squad", args["squad"]])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "missing" in err and not loaded, err
    if case == "model":
        assert "--model" in err
