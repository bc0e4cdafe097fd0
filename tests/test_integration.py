"""Integration: the real MiniLM teacher on small subsets of real SST-2 and CoNLL-2003."""

from __future__ import annotations

import pytest

from bertdistill import api
from bertdistill.training.engine import TrainConfig

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sst2_teacher(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("sst2_teacher")
    result = api.finetune("sst2", "minilm-l6", str(out), str(shared_data / "sst2" / "glue"),
                          max_train_examples=800, max_eval_examples=300, max_length=64,
                          train=TrainConfig(epochs=1, lr=1e-4, batch_size=16, seed=0))
    return out, result


def test_minilm_teacher_learns_sst2_subset(sst2_teacher):
    _, result = sst2_teacher
    assert result["dev"]["accuracy"] > 0.65, result["dev"]  # chance is ~0.51


def test_distilbert_student_from_minilm_learns_sst2_subset(sst2_teacher, shared_data, tmp_path):
    teacher_dir, _ = sst2_teacher
    result = api.distill(str(teacher_dir / "best"), "sst2", str(tmp_path / "student"),
                         str(shared_data / "sst2" / "glue"), recipe="distilbert",
                         max_train_examples=800, max_eval_examples=300, max_length=64,
                         cache_dir=str(tmp_path / "cache"),
                         train={"epochs": 2, "lr": 1e-4, "batch_size": 16, "seed": 0})
    assert result["student"]["kept_layers"] == [0, 2, 4]
    assert result["dev"]["student"]["accuracy"] > 0.6, result["dev"]


def test_minilm_learns_conll_subset(shared_data, tmp_path):
    result = api.finetune("conll2003", "minilm-l6", str(tmp_path / "ner"), str(shared_data / "conll2003" / "iob2"),
                          max_train_examples=600, max_eval_examples=200, max_length=64, test_split=None,
                          train=TrainConfig(epochs=2, lr=2e-4, batch_size=16, seed=0))
    assert result["dev"]["entity_f1"] > 0.3, result["dev"]
    assert set(result["dev"]["per_entity"]) >= {"PER", "LOC", "ORG"}
