import random

import numpy as np
import pytest

from bertdistill.data.examples import Example, TaskData
from bertdistill.embedding import embed_baseline, pooled_features
from bertdistill.models import load_tokenizer
from tiny import WORDS, make_tiny_bert, save_tiny_bert, tiny_task

FILLER = [w for w in WORDS if w not in ("good", "bad")]


def word_task(n_train: int, n_dev: int, seed: int = 0) -> TaskData:
    """Label 1 when the sentence holds "good", 0 when it holds "bad"; the rest is noise."""
    rng = random.Random(seed)

    def make(n):
        out = []
        for i in range(n):
            words = rng.sample(FILLER, rng.randint(3, 8))
            label = i % 2
            words.insert(rng.randint(0, len(words)), "good" if label else "bad")
            out.append(Example(" ".join(words), label=label, source=f"synthetic:{i}"))
        return out

    return TaskData(tiny_task("classification"), {"train": make(n_train), "dev": make(n_dev)})


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("enc"), kind="base", seed=0)


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_baseline_beats_chance_on_a_word_decided_label(tiny_dir, pooling):
    data = word_task(300, 100)
    result = embed_baseline(str(tiny_dir), data, pooling=pooling, batch_size=32, max_train=250)
    assert result["train_examples"] == 250 and result["eval_examples"] == 100
    assert result["eval_split"] == "dev" and result["feature_dim"] == 32
    assert {"accuracy", "f1", "matthews"} <= set(result)
    assert result["accuracy"] > 0.75, result  # chance is 0.5
    assert set(result["timings"]) == {"load_s", "embed_train_s", "embed_eval_s", "fit_s", "total_s"}
    assert all(v >= 0 for v in result["timings"].values())


def test_pooled_features_do_not_depend_on_batching(tiny_dir):
    tok = load_tokenizer(tiny_dir)
    model = make_tiny_bert(tok, task_kind="base")
    examples = word_task(12, 2).splits["train"]
    task = tiny_task("classification")
    one = pooled_features(model, tok, task, examples, pooling="mean", batch_size=1)
    many = pooled_features(model, tok, task, examples, pooling="mean", batch_size=5)
    assert one.shape == (12, 32)
    np.testing.assert_allclose(one, many, atol=1e-5)
    # mean pooling of a one-example batch equals the plain mean over its tokens
    enc = tok(examples[0].text, return_tensors="pt")
    states = model(**enc).last_hidden_state[0].detach().numpy()
    np.testing.assert_allclose(one[0], states.mean(0), atol=1e-5)


def test_baseline_rejects_other_task_kinds(tiny_dir):
    data = TaskData(tiny_task("regression"), {"train": [Example("good", label=1.0)]})
    with pytest.raises(ValueError, match="only classification"):
        embed_baseline(str(tiny_dir), data)
    nodev = word_task(10, 0)
    del nodev.splits["dev"]
    with pytest.raises(ValueError, match="no labelled dev or test split"):
        embed_baseline(str(tiny_dir), nodev)
