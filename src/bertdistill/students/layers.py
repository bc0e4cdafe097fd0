"""Which teacher layers a student keeps, what kind of teacher we were given, and a summary line.

Index convention: every index here is a 0-based teacher LAYER index (``0 .. L - 1``;
layer ``i`` is the ``(i + 1)``-th transformer block, 1-based). It is not a hidden-state
index: hidden state ``i + 1`` is the output of layer ``i`` (hidden state 0 is the embeddings).

Layer presets (``select_layers``) for a teacher of ``L`` layers and a student of ``n``
layers (``n`` defaults to ``L // 2`` where it is asked for):

``"every_other"``
    ``0, 2, 4, ...`` below ``L``: 6 -> ``[0, 2, 4]`` (1-based: 1, 3, 5), 12 -> ``[0, 2, ..., 10]``.
    The DistilBERT paper's wording ("taking one layer out of two"). With an even ``L`` it
    drops the teacher's LAST layer, the one its task head was trained on.
    The student has ``ceil(L / 2)`` layers; ``num_layers`` may only repeat that number.
``"every_other_last"``
    One layer out of two, counted back from the last one so that the last layer is kept:
    ``(L - 1) % 2, ..., L - 3, L - 1``. 6 -> ``[1, 3, 5]`` (1-based: 2, 4, 6), 12 ->
    ``[1, 3, ..., 11]``; for an odd ``L`` the same as ``"every_other"``. Same depth as
    ``"every_other"``. Measured against ``"every_other"`` on SST-2 (benchmarks/RESULTS.md,
    "Reliability": 3-layer DistilBERT students of the 6-layer MiniLM teacher, two seeds), it was
    lower with both seeds (dev 0.8429 / 0.8383 vs 0.8463 / 0.8509), so ``"every_other"`` stays
    the default of the shipped recipes.
``"skip"``
    ``n`` evenly spaced layers ending with the last one: index ``(i + 1) * L // n - 1``
    for ``i`` in ``0..n-1``. 12 -> 6: ``[1, 3, 5, 7, 9, 11]``; 12 -> 4: ``[2, 5, 8, 11]``;
    12 -> 3: ``[3, 7, 11]``. The name follows BERT-PKD's "PKD-skip" pattern
    (Sun et al., 2019), whose student learns from every k-th teacher layer. Note that in that
    paper the student is *initialised* from the teacher's first ``n`` layers and "skip" names the
    layers that supervise it; here the preset names the layers the student *copies*
    (use ``"first"`` for the paper's initialisation).
``"last"``
    The last ``n`` layers: ``L - n .. L - 1`` (the layers of BERT-PKD's "PKD-last").
``"first"``
    The first ``n`` layers: ``0 .. n - 1`` (BERT-PKD's initialisation).
an int ``n``
    ``n`` evenly spaced layers starting at 0 with stride ``L / n``: index ``i * L // n``.
    12, 4 -> ``[0, 3, 6, 9]``; 12, 6 -> ``[0, 2, 4, 6, 8, 10]``.
an explicit list
    Used as given after validation: non-empty, every index an int in ``0 .. L - 1``,
    strictly increasing.

A string of digits is read as an int (``"4"``), and a comma-separated string as an explicit list
(``"0,5,11"``), so that command-line values can be passed straight through.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Sequence

from torch import nn

PRESETS = ("every_other", "every_other_last", "skip", "last", "first")
EVERY_OTHER = ("every_other", "every_other_last")


@dataclass
class StudentInfo:
    """How a student was made.

    ``arch`` is the ``arch`` asked of ``build_student`` ("same" or "distilbert"), or
    "bert" / "distilbert" for a randomly initialised student from ``student_from_config``.
    ``kept[j]`` is the teacher layer that student layer ``j`` was copied from (None when the
    student was not copied from a teacher). ``teacher_layers`` is the teacher's depth (0 when
    there was no teacher).
    """

    arch: str
    kept: list[int] | None
    teacher_layers: int

    def to_dict(self) -> dict:
        return asdict(self)


def _check_count(n: object, teacher_layers: int, given: str = "--student-layers ") -> int:
    """A student depth the teacher allows; ``given`` says how it was given (the flag, or
    ``num_layers=`` of the Python API)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise ValueError(f"{given}{n!r}: the number of student layers must be a whole number")
    if not 1 <= n <= teacher_layers:
        raise ValueError(
            f"{given}{n} is not possible for a teacher with {teacher_layers} layers "
            f"(a student keeps between 1 and {teacher_layers} of them)"
        )
    return n


def _parse_string(spec: str) -> object:
    text = spec.strip().lower()
    if text.replace("-", "_") in PRESETS:
        return text.replace("-", "_")
    if re.fullmatch(r"\d+", text):
        return int(text)
    if re.fullmatch(r"\s*-?\d+\s*(,\s*-?\d+\s*)+,?\s*", text):
        return [int(part) for part in text.split(",") if part.strip()]
    raise ValueError(
        f"--student-layers: unknown layer selection {spec!r}: use one of {', '.join(PRESETS)}, "
        "a number of layers, or a list of teacher layer indices like 0,2,4"
    )


def select_layers(
    spec: str | int | Sequence[int] = "every_other",
    teacher_layers: int = 12,
    num_layers: int | None = None,
) -> list[int]:
    """Return the 0-based teacher layer indices a student keeps (student layer j <- result[j]).

    See the module docstring for the presets. ``num_layers`` sets the student depth for
    "skip", "last" and "first"; with an int or a list it may only repeat their length.
    Raises ValueError for an unknown preset, a bad count, or a bad explicit list.
    """
    if isinstance(teacher_layers, bool) or not isinstance(teacher_layers, int) or teacher_layers < 1:
        raise ValueError(f"teacher_layers must be a positive int, got {teacher_layers!r}")
    L = teacher_layers
    if isinstance(spec, str):
        spec = _parse_string(spec)
    if num_layers is not None and num_layers != spec:  # the CLI's --student-layers N gives both as N
        _check_count(num_layers, L, "--student-layers: num_layers=")

    if isinstance(spec, str):
        if spec in EVERY_OTHER:
            kept = list(range(0 if spec == "every_other" else (L - 1) % 2, L, 2))
            if num_layers is not None and num_layers != len(kept):
                raise ValueError(
                    f"--student-layers: {spec!r} keeps {len(kept)} of {L} teacher layers, but num_layers={num_layers}; "
                    "use 'skip', 'first', 'last' or a number of layers for another depth"
                )
            return kept
        n = num_layers if num_layers is not None else max(1, L // 2)
        if spec == "skip":
            return [(i + 1) * L // n - 1 for i in range(n)]
        if spec == "last":
            return list(range(L - n, L))
        return list(range(n))  # "first"

    if isinstance(spec, bool):
        raise ValueError(f"--student-layers: expected a preset, a number or a list, got {spec!r}")
    if isinstance(spec, int):
        n = _check_count(spec, L)
        if num_layers is not None and num_layers != n:
            raise ValueError(f"--student-layers {n} contradicts num_layers={num_layers}")
        return [i * L // n for i in range(n)]

    if not isinstance(spec, Sequence):
        raise ValueError(f"--student-layers: expected a preset, a number or a list, got {spec!r}")
    kept = list(spec)
    if not kept:
        raise ValueError(f"--student-layers: the list of teacher layers to keep is empty (the teacher has {L} layers)")
    for pos, index in enumerate(kept):
        if isinstance(index, bool) or not isinstance(index, int):
            raise ValueError(f"--student-layers: teacher layer index {index!r} (position {pos}) is not a whole number")
        if not 0 <= index < L:
            raise ValueError(
                f"--student-layers: teacher layer index {index} is out of range: the teacher has {L} layers "
                f"(valid indices 0..{L - 1})"
            )
        if pos and index <= kept[pos - 1]:
            raise ValueError(
                f"--student-layers: teacher layer index {index} (position {pos}) does not come after {kept[pos - 1]}: "
                f"indices must be strictly increasing (the teacher has {L} layers)"
            )
    if num_layers is not None and num_layers != len(kept):
        raise ValueError(f"--student-layers: the list {kept} keeps {len(kept)} layers, but num_layers={num_layers}")
    return kept


# ----------------------------------------------------------------------------------------------
# Teacher kinds


def _teacher_table() -> list[tuple[type, str, str]]:
    """(class, family, kind) for every teacher class a student can be built from."""
    import transformers as tf

    return [
        (tf.BertForSequenceClassification, "bert", "sequence_classification"),
        (tf.BertForTokenClassification, "bert", "token_classification"),
        (tf.BertForQuestionAnswering, "bert", "question_answering"),
        (tf.BertForMaskedLM, "bert", "masked_lm"),
        (tf.BertModel, "bert", "base"),
        (tf.RobertaForSequenceClassification, "roberta", "sequence_classification"),
        (tf.RobertaForTokenClassification, "roberta", "token_classification"),
        (tf.RobertaForQuestionAnswering, "roberta", "question_answering"),
        (tf.RobertaForMaskedLM, "roberta", "masked_lm"),
        (tf.RobertaModel, "roberta", "base"),
        (tf.DistilBertForSequenceClassification, "distilbert", "sequence_classification"),
        (tf.DistilBertForTokenClassification, "distilbert", "token_classification"),
        (tf.DistilBertForQuestionAnswering, "distilbert", "question_answering"),
        (tf.DistilBertForMaskedLM, "distilbert", "masked_lm"),
        (tf.DistilBertModel, "distilbert", "base"),
    ]


def teacher_kind(teacher: nn.Module) -> tuple[str, str]:
    """Return (family, kind) of a supported teacher: family "bert" | "roberta" | "distilbert",
    kind "sequence_classification" | "token_classification" | "question_answering" | "masked_lm" | "base".

    Raises TypeError naming the class for anything else.
    """
    table = _teacher_table()
    for cls, family, kind in table:
        if isinstance(teacher, cls):
            return family, kind
    names = ", ".join(cls.__name__ for cls, _, _ in table)
    raise TypeError(
        f"cannot build a student from a {type(teacher).__name__}: supported teachers are {names}"
    )


# ----------------------------------------------------------------------------------------------
# Summary


def count_parameters(model: nn.Module) -> int:
    """Number of distinct parameter values (tied weights counted once)."""
    return sum(p.numel() for p in model.parameters())  # parameters() yields a shared one once


def _human(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1e6:.1f}M"
    if n >= 1_000:
        return f"{n / 1e3:.1f}K"
    return str(n)


def describe_student(model: nn.Module, info: StudentInfo | None = None) -> str:
    """One line: class, how it was made, depth, width and parameter count."""
    config = getattr(model, "config", None)
    layers = getattr(config, "num_hidden_layers", "?")
    hidden = getattr(config, "hidden_size", "?")
    if info is None:
        origin = "no record of how it was made"
    elif info.kept is None:
        origin = f"{info.arch}, randomly initialised"
    else:
        origin = f"arch={info.arch}, kept teacher layers {info.kept} of {info.teacher_layers}"
    return (
        f"{type(model).__name__} ({origin}): {layers} layers, hidden {hidden}, "
        f"{_human(count_parameters(model))} parameters"
    )
