"""Small-data training defaults, the end-of-run verdict and the label summary, on hand values."""

from __future__ import annotations

import pytest

from bertdistill.data import DataError
from bertdistill.data.examples import Example, TaskSpec
from bertdistill.pipelines.labels import check_labels, label_counts
from bertdistill.pipelines.small_data import MAX_EPOCHS, MIN_STEPS, optimizer_steps, small_data_training
from bertdistill.pipelines.verdict import advice, constant_baseline, judge, training_numbers, verdict
from bertdistill.training.engine import TrainConfig

BINARY = TaskSpec("csv", "classification", ["neg", "pos"], ("accuracy",))


def test_optimizer_steps_count_like_the_training_loop():
    assert optimizer_steps(180, 32, 1, 3) == 18  # ceil(180 / 32) = 6 batches an epoch
    assert optimizer_steps(180, 16, 2, 1) == 6  # 12 batches, 2 per step
    assert optimizer_steps(10, 32, 1, 0.5) == 1


@pytest.mark.parametrize("rows, given, batch, epochs", [
    (180, [], 16, 10),           # 12 steps an epoch at batch 16: 10 epochs reach 120
    (1000, [], 16, 3),           # 63 steps an epoch at batch 16: 3 epochs are enough
    (20, [], 16, MAX_EPOCHS),    # 2 steps an epoch: capped at 20 epochs (40 steps)
    (180, ["batch_size"], 32, MAX_EPOCHS),  # a given batch is kept: 6 steps an epoch, 20 epochs
    (180, ["lr", "seed"], 16, 10),  # other flags do not count
])
def test_small_data_gets_a_smaller_batch_then_more_epochs(rows, given, batch, epochs):
    config, note = small_data_training(TrainConfig(epochs=3, batch_size=32), rows, given)
    assert (config.batch_size, config.epochs) == (batch, epochs)
    assert note.startswith(f"small data: {rows} train rows give only {optimizer_steps(rows, 32, 1, 3)} optimizer")
    steps = optimizer_steps(rows, batch, 1, epochs)
    assert f": {steps} steps" in note and (steps >= MIN_STEPS or epochs == MAX_EPOCHS)
    assert ("batch size 32 -> 16" in note) == (batch == 16) and ("epochs 3 ->" in note) == (epochs != 3)


@pytest.mark.parametrize("config, rows, given", [
    (TrainConfig(epochs=3, batch_size=32), 10_000, []),         # enough steps already
    (TrainConfig(epochs=3, batch_size=32), 180, ["epochs"]),    # --epochs wins
    (TrainConfig(epochs=3, batch_size=32), 180, ["max_steps"]),  # --max-steps wins
    (TrainConfig(max_steps=5, batch_size=32), 180, []),         # a recipe's max_steps wins
    (TrainConfig(epochs=3, batch_size=8), 320, ["batch_size"]),  # 40 steps an epoch: 120 already
])
def test_small_data_leaves_chosen_or_long_enough_runs_alone(config, rows, given):
    assert small_data_training(config, rows, given) == (config, None)


def test_the_constant_baseline_is_the_best_single_class_answer():
    refs = [0, 0, 1, 1, 1]
    assert constant_baseline(BINARY, refs) == {"label": "pos", "score": pytest.approx(0.6)}
    cola = TaskSpec("cola", "classification", ["0", "1"], ("matthews", "accuracy"))
    assert constant_baseline(cola, refs)["score"] == 0.0
    mrpc = TaskSpec("mrpc", "classification", ["0", "1"], ("f1", "accuracy"))
    # always "1" on [0, 1, 1]: precision 2/3, recall 1, F1 0.8
    assert constant_baseline(mrpc, [0, 1, 1]) == {"label": "1", "score": pytest.approx(0.8)}
    assert constant_baseline(TaskSpec("stsb", "regression", None, ("pearson",)), [0.5, 1.0]) is None


def test_judge_on_hand_values():
    majority = {"label": "neg", "score": 0.55}
    assert judge("accuracy", 0.85, baseline=majority, teacher=0.9) == []  # 94 % of the teacher
    collapsed = judge("accuracy", 0.55, baseline=majority, teacher=0.9)
    assert len(collapsed) == 2
    assert "no better than always answering 'neg' (0.5500)" in collapsed[0]
    assert "61.1% of the teacher's (0.9000), below 90%" in collapsed[1]
    low = judge("accuracy", 0.80, baseline=majority, teacher=0.9)  # 0.80 < 0.81
    assert low == ["the student's accuracy (0.8000) is 88.9% of the teacher's (0.9000), below 90%"]
    assert judge("accuracy", 0.56, baseline=majority) == []  # fine-tuning: no teacher to compare with
    assert "no better" in judge("matthews", 0.0, baseline={"label": "0", "score": 0.0}, who="model")[0]
    both = judge("accuracy", 0.55, baseline=majority, teacher=0.55)
    assert len(both) == 2 and "teacher's accuracy (0.5500) is no better" in both[1]


def test_advice_names_the_flags_with_values_from_the_run():
    numbers = training_numbers(TrainConfig(epochs=3, batch_size=32, lr=5e-5), steps=18, rows=180)
    text = advice(numbers)
    assert text.startswith("it trained for 18 optimizer steps on 180 rows (3 epochs, batch 32, lr 5e-05)")
    assert "--epochs 8" in text and "--batch-size 16" in text and "--lr 0.0001" in text
    fixed = advice(training_numbers(TrainConfig(max_steps=50, batch_size=8, lr=1e-4), steps=50, rows=90))
    assert "--max-steps 100" in fixed and "--batch-size" not in fixed and "--lr 0.0002" in fixed


def test_verdict_warns_on_stderr_and_is_json_ready(capsys):
    numbers = training_numbers(TrainConfig(epochs=3, batch_size=32), steps=18, rows=180)
    bad = verdict(BINARY, 0.45, [0] * 9 + [1] * 11, numbers, teacher=0.95)
    err = capsys.readouterr().err
    assert bad["ok"] is False and bad["constant_baseline"] == {"label": "pos", "score": pytest.approx(0.55)}
    assert bad["retention"] == pytest.approx(0.45 / 0.95) and bad["student"] == 0.45 and len(bad["problems"]) == 2
    assert err.startswith("bertdistill: WARNING: on dev, the student's accuracy (0.4500) is no better")
    assert "--batch-size 16" in err and "results.json" in err
    good = verdict(BINARY, 0.9, [0] * 9 + [1] * 11, numbers, teacher=0.95, who="student")
    assert good["ok"] is True and good["advice"] is None and capsys.readouterr().err == ""


def _examples(labels):
    return [Example(f"text {i}", None, label) for i, label in enumerate(labels)]


def test_labels_are_summarised_with_counts_and_single_label_data_is_refused(capsys):
    assert label_counts(BINARY, _examples([0, 1, 1, None])) == {"neg": 1, "pos": 2}
    assert check_labels(BINARY, _examples([0, 1, 1])) == "labels (2, train rows): neg 1, pos 2"
    assert capsys.readouterr().err == ""
    with pytest.raises(DataError, match=r"reviews.csv: the train split has only label 'pos' among 3 rows"):
        check_labels(BINARY, _examples([1, 1, 1]), "reviews.csv")
    three = TaskSpec("csv", "classification", ["a", "b", "c"], ("accuracy",))
    assert check_labels(three, _examples([0] * 100 + [1])) == "labels (3, train rows): a 100, b 1, c 0"
    err = capsys.readouterr().err
    assert "label(s) 'c' have no train rows" in err and "label(s) 'b' have under 2%" in err
    ner = TaskSpec("ner", "token_classification", ["O", "B-PER"], ("entity_f1",))
    assert check_labels(ner, [Example(["a", "b"], None, [0, 1])]) == "labels (2, train words): O 1, B-PER 1"
    stsb = TaskSpec("stsb", "regression", None, ("pearson",))
    assert check_labels(stsb, _examples([0.5, 4.0])) == "scores: 2 train rows, from 0.5 to 4"
