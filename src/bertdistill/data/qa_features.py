"""Extractive QA features: question + context windows with start / end token labels.

As the reference SQuAD fine-tuning does it: each question is cut to ``max_question_length``
tokens, then the pair ``[CLS] question [SEP] context [SEP]`` is cut into windows of
``max_length`` tokens (only the context is truncated); consecutive windows of one context
share ``doc_stride`` tokens (the tokenizer's ``stride``). A window's labels are the tokens
where the (first) gold answer starts and ends, or both 0 ([CLS]) when the answer is not
wholly inside the window.

A feature is a dict: ``input_ids``, ``token_type_ids`` (when the tokenizer makes them),
``start_positions`` / ``end_positions`` (labelled examples), ``example_index`` (its question
in the list encoded) and ``context_offsets``: per token, the ``[start, end)`` characters it
covers in the context, or None for the question, special and padding tokens (what
post-processing and any loss masking read).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tqdm.auto import tqdm

from .examples import Example

_CHUNK = 1000  # questions per tokenizer call


@dataclass(frozen=True)
class QaOptions:
    """Windowing and answer-decoding settings (the reference's defaults)."""

    max_length: int = 384
    doc_stride: int = 128
    max_question_length: int = 64
    n_best: int = 20
    max_answer_length: int = 30

    def check(self, special_tokens: int = 3) -> None:
        """ValueError naming the flag when the windows cannot be built (before any model loads)."""
        for name, value in (("max_length", self.max_length), ("doc_stride", self.doc_stride),
                            ("max_question_length", self.max_question_length), ("n_best", self.n_best),
                            ("max_answer_length", self.max_answer_length)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be a whole number of at least 1, got {value!r}")
        room = self.max_length - self.max_question_length - special_tokens
        if room < 1:
            raise ValueError(f"--max-length {self.max_length} leaves no context tokens after a question of "
                             f"--max-question-length {self.max_question_length} and {special_tokens} special tokens")
        if self.doc_stride >= room:
            raise ValueError(f"--doc-stride {self.doc_stride} must be smaller than the context tokens of a window "
                             f"({room} = --max-length {self.max_length} - --max-question-length "
                             f"{self.max_question_length} - {special_tokens} special tokens)")


def check_qa_tokenizer(tokenizer, options: QaOptions) -> None:
    """A fast tokenizer (offsets) whose windows fit ``options`` (ValueError otherwise)."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"question answering needs a fast tokenizer (character offsets); "
                         f"{type(tokenizer).__name__} is not one")
    options.check(tokenizer.num_special_tokens_to_add(pair=True))


def cut_questions(questions: Sequence[str], tokenizer, max_tokens: int) -> list[str]:
    """Each question (leading spaces dropped) cut after its ``max_tokens``-th token."""
    questions = [q.lstrip() for q in questions]
    enc = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
    out = []
    for question, offsets in zip(questions, enc["offset_mapping"]):
        out.append(question[: offsets[max_tokens - 1][1]] if len(offsets) > max_tokens else question)
    return out


def encode_qa(examples: Sequence[Example], tokenizer, options: QaOptions = QaOptions(), *,
              desc: str = "QA features") -> list[dict]:
    """The windows of ``examples`` (see the module), in question order, with a progress bar."""
    check_qa_tokenizer(tokenizer, options)
    features: list[dict] = []
    bar = tqdm(total=len(examples), desc=desc, unit="q", disable=None, leave=False)
    try:
        for first in range(0, len(examples), _CHUNK):
            chunk = examples[first : first + _CHUNK]
            questions = cut_questions([ex.text for ex in chunk], tokenizer, options.max_question_length)
            enc = tokenizer(
                questions, [ex.text_pair for ex in chunk], truncation="only_second",
                max_length=options.max_length, stride=options.doc_stride,
                return_overflowing_tokens=True, return_offsets_mapping=True,
            )
            for i, sample in enumerate(enc["overflow_to_sample_mapping"]):
                features.append(_feature(enc, i, chunk[sample], first + sample))
            bar.update(len(chunk))
    finally:
        bar.close()
    return features


def _feature(enc, i: int, example: Example, index: int) -> dict:
    sequence = enc.sequence_ids(i)
    offsets = [list(o) if s == 1 else None for o, s in zip(enc["offset_mapping"][i], sequence)]
    feature = {"input_ids": list(enc["input_ids"][i])}
    if "token_type_ids" in enc:
        feature["token_type_ids"] = list(enc["token_type_ids"][i])
    if example.label:
        feature["start_positions"], feature["end_positions"] = answer_tokens(offsets, example.label[0])
    feature["example_index"] = index
    feature["context_offsets"] = offsets
    return feature


def answer_tokens(offsets: Sequence, answer) -> tuple[int, int]:
    """The first and last token of ``answer`` in a window whose context tokens have character
    ``offsets`` (None elsewhere); (0, 0), the [CLS] token, when it is not wholly inside."""
    inside = [t for t, o in enumerate(offsets) if o is not None]
    if not inside:
        return 0, 0
    first, last = inside[0], inside[-1]
    if offsets[first][0] > answer.start or offsets[last][1] < answer.end:
        return 0, 0
    start = next(t for t in range(last, first - 1, -1) if offsets[t][0] <= answer.start)
    end = next(t for t in range(first, last + 1) if offsets[t][1] >= answer.end)
    return start, end
