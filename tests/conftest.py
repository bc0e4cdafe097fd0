"""Shared fixtures: a tiny BERT on disk and a small learnable sentiment task."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import torch

from bertdistill.paths import shared_data_dir

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
torch.set_num_threads(min(2, torch.get_num_threads()))

POSITIVE = ["good", "great", "nice", "fine", "best", "funny", "happy"]
NEGATIVE = ["bad", "terrible", "awful", "poor", "worst", "boring", "sad"]
FILLER = ["the", "movie", "film", "story", "plot", "was", "is", "very", "really", "quite", "a", "and",
          "music", "actor", "scene", "show", "it", "this", "that", "day", "night", "one", "two"]


def toy_sentences(n: int, seed: int) -> list[tuple[str, int]]:
    """Sentences whose label is decided by one sentiment word among filler words."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.randint(0, 1)
        words = rng.choices(FILLER, k=rng.randint(3, 12))
        words.insert(rng.randint(0, len(words)), rng.choice(POSITIVE if label else NEGATIVE))
        rows.append((" ".join(words), label))
    return rows


def write_toy_task(folder: Path, n_train: int = 400, n_dev: int = 100, n_test: int = 100) -> Path:
    """A TSV task folder (train/dev/test.tsv with a `sentence<TAB>label` header)."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, n, seed in (("train", n_train, 1), ("dev", n_dev, 2), ("test", n_test, 3)):
        lines = ["sentence\tlabel"] + [f"{s}\t{y}" for s, y in toy_sentences(n, seed)]
        (folder / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="session")
def toy_task_dir(tmp_path_factory) -> Path:
    return write_toy_task(tmp_path_factory.mktemp("toy_task"))


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory) -> Path:
    """A tiny random BERT encoder (no task head) with its tokenizer, like a pretrained checkpoint."""
    from tiny import save_tiny_bert

    return save_tiny_bert(tmp_path_factory.mktemp("tiny_encoder"), kind="base", seed=0)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.exists():
        pytest.skip(f"benchmark data not found at {path} (set BERTDISTILL_DATA)")
    return path


@pytest.fixture(scope="session")
def tiny_teacher(tiny_encoder_dir, toy_task_dir, tmp_path_factory) -> Path:
    """A tiny 2-layer BERT fine-tuned on the toy task (dev accuracy ~1.0)."""
    from bertdistill import api
    from bertdistill.training.engine import TrainConfig

    out = tmp_path_factory.mktemp("teacher")
    result = api.finetune("tsv", str(tiny_encoder_dir), str(out), str(toy_task_dir),
                          train=TrainConfig(epochs=6, lr=1e-3, batch_size=16, seed=1))
    assert result["dev"]["accuracy"] > 0.9
    return out / "best"
