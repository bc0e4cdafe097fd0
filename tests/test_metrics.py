import math

import pytest

from bertdistill.data.examples import TaskSpec
from bertdistill.metrics import compute_metrics, format_metrics

BINARY = TaskSpec("toy", "classification", ["neg", "pos"], ("accuracy", "f1"))
COLA = TaskSpec("cola", "classification", ["bad", "good"], ("mcc",))
THREE = TaskSpec("nli", "classification", ["e", "n", "c"], ("accuracy",))
STSB = TaskSpec("stsb", "regression", None, ("pearson", "spearman"))
NER = TaskSpec(
    "ner", "token_classification",
    ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-MISC", "I-MISC"],
    ("entity_f1", "f1"),
)


def test_binary_classification_golden():
    # TP=2 (0, 3), FP=1 (2), TN=1 (1), FN=0
    m = compute_metrics(BINARY, [1, 0, 1, 1], [1, 0, 0, 1])
    assert m["accuracy"] == pytest.approx(3 / 4)
    assert m["f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 0))  # 0.8
    # MCC = (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = 2 / sqrt(3*2*2*1)
    assert m["matthews"] == pytest.approx(2 / math.sqrt(12))


def test_mcc_of_a_small_confusion_matrix_and_alias():
    # TP=3, TN=2, FP=1, FN=2
    refs = [1, 1, 1, 0, 0, 1, 1, 0]
    preds = [1, 1, 1, 0, 0, 0, 0, 1]
    m = compute_metrics(COLA, preds, refs)
    expected = (3 * 2 - 1 * 2) / math.sqrt((3 + 1) * (3 + 2) * (2 + 1) * (2 + 2))
    assert m["matthews"] == pytest.approx(expected)  # 4 / sqrt(240)
    assert m["mcc"] == m["matthews"]
    assert m["accuracy"] == pytest.approx(5 / 8)


def test_constant_predictions_give_zero_mcc_and_zero_f1():
    m = compute_metrics(BINARY, [0, 0, 0, 0], [1, 0, 1, 0])
    assert m["accuracy"] == 0.5
    assert m["f1"] == 0.0
    assert m["matthews"] == 0.0


def test_multiclass_uses_macro_f1():
    # class 0: P=1 R=1/2 F=2/3; class 1: P=1/2 R=1 F=2/3; class 2: P=R=F=1
    m = compute_metrics(THREE, [0, 1, 1, 2], [0, 0, 1, 2])
    assert m["accuracy"] == pytest.approx(3 / 4)
    assert m["f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)


def test_regression_golden():
    # x=[1,2,3], y=[1,2,4]: cov sum = 3, sum dx^2 = 2, sum dy^2 = 14/3
    m = compute_metrics(STSB, [1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
    assert m["pearson"] == pytest.approx(3 / math.sqrt(2 * 14 / 3))
    assert m["spearman"] == pytest.approx(1.0)
    assert m["mse"] == pytest.approx(1 / 3)
    m = compute_metrics(STSB, [1, 2, 3, 4], [4.0, 3.0, 2.5, 1.0])
    assert m["spearman"] == pytest.approx(-1.0)


def test_regression_constant_prediction_is_zero_not_nan():
    m = compute_metrics(STSB, [2.0, 2.0, 2.0], [1.0, 2.0, 4.0])
    assert m["pearson"] == 0.0 and m["spearman"] == 0.0


def test_ner_golden_partial_match_counts_wrong():
    refs = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    preds = [["B-PER", "O", "O", "B-LOC"], ["B-ORG", "B-MISC"]]
    m = compute_metrics(NER, preds, refs)
    # true: PER(0-1) LOC ORG; predicted: PER(0) LOC ORG MISC; correct: LOC ORG
    assert m["entity_precision"] == pytest.approx(2 / 4)
    assert m["entity_recall"] == pytest.approx(2 / 3)
    assert m["entity_f1"] == pytest.approx(4 / 7)
    assert m["f1"] == m["entity_f1"]
    assert m["token_accuracy"] == pytest.approx(4 / 6)
    assert (m["entity_support"], m["entity_predicted"], m["entity_correct"]) == (3, 4, 2)
    pe = m["per_entity"]
    assert set(pe) == {"LOC", "MISC", "ORG", "PER"}
    assert pe["PER"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert pe["LOC"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    assert pe["MISC"]["support"] == 0 and pe["MISC"]["precision"] == 0.0


def test_ner_default_mode_is_conlleval_lenient():
    # conlleval (seqeval default mode) starts an entity at an I- tag after O
    m = compute_metrics(NER, [["O", "I-PER", "I-PER"]], [["O", "B-PER", "I-PER"]])
    assert m["entity_f1"] == 1.0
    assert m["token_accuracy"] == pytest.approx(2 / 3)


def test_ner_without_entities():
    m = compute_metrics(NER, [["O", "O"]], [["O", "O"]])
    assert m["entity_f1"] == 0.0 and m["per_entity"] == {} and m["token_accuracy"] == 1.0


def test_errors():
    with pytest.raises(ValueError, match="3 predictions but 2 references"):
        compute_metrics(BINARY, [0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="sentence 0: 1 predicted tags but 2"):
        compute_metrics(NER, [["O"]], [["O", "O"]])
    bad = TaskSpec("x", "classification", ["a", "b"], ("bleu",))
    with pytest.raises(ValueError, match="'bleu'.*known: .*accuracy"):
        compute_metrics(bad, [0], [0])
    with pytest.raises(ValueError, match="no references"):
        compute_metrics(BINARY, [0], None)


def test_format_metrics_sentence_task():
    m = compute_metrics(BINARY, [1, 0, 1, 1], [1, 0, 0, 1])
    text = format_metrics(BINARY, m, title="toy dev")
    lines = text.splitlines()
    assert lines[0] == "toy dev" and set(lines[1]) == {"="}
    assert lines[2].split() == ["metric", "value"]
    # the task's metrics first, in order, then the extras
    assert [ln.split()[0] for ln in lines[4:]] == ["accuracy", "f1", "matthews"]
    assert lines[4].split() == ["accuracy", "0.7500"]
    assert lines[5].split() == ["f1", "0.8000"]


def test_format_metrics_ner_report():
    refs = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    preds = [["B-PER", "O", "O", "B-LOC"], ["B-ORG", "B-MISC"]]
    text = format_metrics(NER, compute_metrics(NER, preds, refs))
    rows = [ln.split() for ln in text.splitlines()]
    assert rows[0] == ["type", "precision", "recall", "f1", "support"]
    assert rows[2] == ["LOC", "1.0000", "1.0000", "1.0000", "1"]
    assert rows[5] == ["PER", "0.0000", "0.0000", "0.0000", "1"]
    assert rows[7] == ["overall", "0.5000", "0.6667", "0.5714", "3"]
    assert rows[8] == ["token", "accuracy:", "0.6667"]
