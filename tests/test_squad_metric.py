"""The official SQuAD v1.1 exact match and F1, against numbers worked out by hand."""

from __future__ import annotations

import pytest

from bertdistill.data import get_task_spec
from bertdistill.metrics import compute_metrics, format_metrics
from bertdistill.metrics.squad import exact_match, normalize_answer, squad_metrics, token_f1


@pytest.mark.parametrize("raw, normal", [
    ("The  Quick, brown fox!", "quick brown fox"),     # lower case, punctuation, article, spaces
    ("An apple a day", "apple day"),
    ("theater of the absurd", "theater of absurd"),    # "the" inside a word stays
    ("U.S.-based", "usbased"),                         # punctuation goes without leaving a space
    ("  \tParis\n", "paris"),
])
def test_normalisation(raw, normal):
    assert normalize_answer(raw) == normal


def test_exact_match_and_f1_by_hand():
    assert exact_match("Denver Broncos!", "the Denver Broncos") == 1.0
    assert exact_match("Denver", "Denver Broncos") == 0.0
    # "cat sat on mat" against "cat on mat": 3 shared of 4 predicted and 3 gold: P 3/4, R 1, F1 6/7
    assert token_f1("the cat sat on the mat", "a cat on a mat") == pytest.approx(6 / 7)
    # repeated tokens count as often as both sides have them: {x:2, y:1} & {x:1, y:2} = 2 shared
    assert token_f1("x x y", "x y y") == pytest.approx(2 / 3)
    assert token_f1("", "Paris") == 0.0
    assert token_f1("the", "a") == 0.0  # both empty after normalising: the official script gives 0


def test_best_gold_answer_and_mean_over_questions():
    predictions = ["Paris", "the cat sat on the mat", "Carolina Panthers"]
    references = [["Rome", "paris."], ["a cat on a mat"], ["Panthers", "Denver Broncos"]]
    # EM: 1, 0, 0. F1: 1, 6/7, and "carolina panthers" vs "panthers": P 1/2, R 1 -> 2/3
    result = squad_metrics(predictions, references)
    assert result["exact_match"] == pytest.approx(1 / 3)
    assert result["f1"] == pytest.approx((1 + 6 / 7 + 2 / 3) / 3)  # 53/63 = 0.8413
    assert result["questions"] == 3


def test_compute_metrics_for_the_squad_task():
    task = get_task_spec("squad")
    result = compute_metrics(task, ["Denver Broncos", "no"], [["Denver Broncos"], ["yes"]])
    assert (result["exact_match"], result["f1"]) == (0.5, 0.5)
    table = format_metrics(task, result, title="squad dev")
    assert table.splitlines()[4].split() == ["exact_match", "0.5000"]  # the main metric on top
    with pytest.raises(ValueError, match="line up one to one"):
        squad_metrics(["a"], [["a"], ["b"]])
    with pytest.raises(ValueError, match="list of gold answer strings"):
        squad_metrics(["a"], ["a"])
