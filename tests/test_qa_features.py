"""QA windows (labels, [CLS] outside, offsets) and the n-best span post-processing, on a tiny tokenizer."""

from __future__ import annotations

import numpy as np
import pytest
from tiny import make_tiny_tokenizer

from bertdistill.data.examples import Answer, Example
from bertdistill.data.qa_features import QaOptions, check_qa_tokenizer, encode_qa
from bertdistill.data.qa_spans import best_spans

FILLER = "the movie was good and the film was bad".split()  # one token each in the tiny vocabulary
ANSWER = "john walk to paris"
OPTIONS = QaOptions(max_length=32, doc_stride=8, max_question_length=6)


def long_context() -> tuple[str, int]:
    """60 one-token words; the answer's 4 words are context tokens 20..23. Returns (context, answer char)."""
    words = [FILLER[i % len(FILLER)] for i in range(56)]
    words[20:20] = ANSWER.split()
    context = " ".join(words)
    return context, context.index(ANSWER)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return make_tiny_tokenizer(tmp_path_factory.mktemp("tok"))


@pytest.fixture(scope="module")
def windows(tokenizer):
    context, at = long_context()
    examples = [Example("where did john go ?", context, [Answer(ANSWER, at)], "", "long"),
                Example("what was good ?", "the movie was good", [Answer("movie", 4)], "", "short")]
    return examples, encode_qa(examples, tokenizer, OPTIONS)


def test_long_context_is_cut_into_overlapping_windows(tokenizer, windows):
    examples, features = windows
    # [CLS] + 5 question tokens + [SEP] + 24 context tokens + [SEP] = 32; windows start 16 context
    # tokens apart (24 - doc_stride 8): context tokens [0,24) [16,40) [32,56) [48,60)
    assert [f["example_index"] for f in features] == [0, 0, 0, 0, 1]
    assert [len(f["input_ids"]) for f in features] == [32, 32, 32, 20, 11]
    first, second = features[0], features[1]
    assert first["context_offsets"][:7] == [None] * 7 and first["context_offsets"][-1] is None
    # the shared tokens are the same context characters
    assert first["context_offsets"][7 + 16:31] == second["context_offsets"][7:7 + 8]
    context = examples[0].text_pair
    start, end = second["context_offsets"][7], second["context_offsets"][7 + 23]
    assert context[start[0]:end[1]].split() == context.split()[16:40]


def test_answer_labelled_in_each_window_that_holds_it(tokenizer, windows):
    _, features = windows
    # context tokens 20..23 -> token 7 + 20 = 27..30 in window 0, 7 + 4 = 11..14 in window 1
    assert [(f["start_positions"], f["end_positions"]) for f in features] == [(27, 30), (11, 14), (0, 0), (0, 0),
                                                                               (7, 7)]
    tokens = tokenizer.convert_ids_to_tokens(features[1]["input_ids"][11:15])
    assert " ".join(tokens) == ANSWER
    assert tokenizer.convert_ids_to_tokens(features[4]["input_ids"][7]) == "movie"


def test_answer_cut_by_a_window_edge_is_labelled_at_cls(tokenizer):
    context, at = long_context()
    # context tokens 22..25 cross the end of window 0 (23) and lie inside window 1 [16, 40)
    answer = Answer(" ".join(context.split()[22:26]), len(" ".join(context.split()[:22])) + 1)
    assert context[answer.start:answer.end] == answer.text
    features = encode_qa([Example("where did john go ?", context, [answer], "", "edge")], tokenizer, OPTIONS)
    assert [(f["start_positions"], f["end_positions"]) for f in features][:2] == [(0, 0), (13, 16)]


def test_long_question_is_cut_and_unlabelled_examples_get_no_positions(tokenizer):
    question = "who what when where why how there here then now"  # 10 tokens, cut to 6
    features = encode_qa([Example(question, "the movie was good", None, "", "u")], tokenizer, OPTIONS)
    assert len(features) == 1 and "start_positions" not in features[0]
    assert features[0]["token_type_ids"].count(0) == 1 + 6 + 1


def test_options_are_checked_before_any_window():
    with pytest.raises(ValueError, match=r"--doc-stride 24 must be smaller than the context tokens of a window \(23"):
        QaOptions(max_length=32, doc_stride=24, max_question_length=6).check()
    with pytest.raises(ValueError, match="--max-length 8 leaves no context tokens"):
        QaOptions(max_length=8, doc_stride=1, max_question_length=6).check()
    with pytest.raises(ValueError, match="--n-best must be a whole number"):
        QaOptions(n_best=0).check()

    class Slow:
        is_fast = False

    with pytest.raises(ValueError, match="needs a fast tokenizer"):
        check_qa_tokenizer(Slow(), OPTIONS)


def logits_for(features):
    return [np.zeros(len(f["input_ids"])) for f in features], [np.zeros(len(f["input_ids"])) for f in features]


def test_postprocessing_recovers_the_answer_text(windows):
    examples, features = windows
    starts, ends = logits_for(features)
    starts[1][0], starts[1][2], ends[1][3] = 100.0, 50.0, 50.0  # [CLS] and question tokens: never answers
    starts[1][11], ends[1][14], ends[1][12] = 5.0, 5.0, 4.0      # window 1: the answer, score 10
    starts[0][27], ends[0][30] = 3.0, 3.0                        # window 0: the same span, score 6
    ends[1][9] = 8.0                                             # an end before the start: not a span
    starts[4][7], ends[4][7] = 2.0, 2.0
    answers = best_spans(examples, features, starts, ends, n_best=20, max_answer_length=30)
    assert [a["text"] for a in answers] == [ANSWER, "movie"]
    first = answers[0]
    assert first["score"] == 10.0 and examples[0].text_pair[first["start"]:first["end"]] == ANSWER
    assert 0 < first["probability"] < 1
    # at most 2 tokens: the best pair becomes (11, 12), score 5 + 4
    short = best_spans(examples, features, starts, ends, n_best=20, max_answer_length=2)[0]
    assert (short["text"], short["score"]) == ("john walk", 9.0)
    # n_best 1: only the top start (11) and top end (9, before it) per window -> window 0's span
    top = best_spans(examples, features, starts, ends, n_best=1, max_answer_length=30)[0]
    assert (top["text"], top["score"]) == (ANSWER, 6.0)


def test_probability_is_start_times_end_softmax_over_context(tokenizer):
    features = encode_qa([Example("what ?", "good bad", None, "", "p")], tokenizer, OPTIONS)
    # [CLS] what ? [SEP] good bad [SEP]: context tokens 4 and 5
    starts, ends = [np.array([9.0, 9, 9, 9, 1, 0, 9])], [np.array([9.0, 9, 9, 9, 0, 1, 9])]
    answer = best_spans([Example("what ?", "good bad", None, "", "p")], features, starts, ends)[0]
    e = np.e
    assert answer["text"] == "good bad"
    assert answer["probability"] == pytest.approx((e / (e + 1)) ** 2)
