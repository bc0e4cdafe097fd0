"""Students built from a teacher: layer selection, same-architecture copies, DistilBERT mapping.

Example::

    student, info = build_student(teacher, layers="every_other", arch="distilbert")
    print(describe_student(student, info))

Supported teachers: ``BertFor{SequenceClassification,TokenClassification,MaskedLM}`` and
``BertModel``, the same four RoBERTa classes (``arch="same"`` only) and the four DistilBERT ones
(either arch gives a shallower DistilBERT).
"""

from __future__ import annotations

from typing import Sequence

from transformers import PreTrainedModel

from .distilbert import build_distilbert
from .from_config import student_from_config
from .layers import StudentInfo, count_parameters, describe_student, select_layers, teacher_kind
from .same_arch import build_same_arch

ARCHS = ("same", "distilbert")


def build_student(
    teacher: PreTrainedModel,
    *,
    layers: str | int | Sequence[int] = "every_other",
    num_layers: int | None = None,
    arch: str = "same",
    attn_implementation: str | None = None,
) -> tuple[PreTrainedModel, StudentInfo]:
    """A shallower student initialised from the teacher's weights, and how it was made.

    ``layers`` / ``num_layers`` choose the teacher layers to copy (see ``select_layers``):
    student layer j is a copy of teacher layer ``info.kept[j]``.
    ``arch="same"``: a model of the teacher's own class (embeddings, kept layers, pooler and task
    head copied). ``arch="distilbert"``: a ``DistilBertFor*`` / ``DistilBertModel`` for the same
    task, mapped weight by weight from a BERT teacher (see ``bertdistill.students.distilbert``).
    ``attn_implementation`` ("eager", "sdpa", ...) is set on the student's config; by default
    the student uses the teacher's. Attention-map losses need "eager".
    The student gets the teacher's dtype, device and train/eval mode; it shares no storage
    with the teacher.
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown student arch {arch!r}: use one of {', '.join(ARCHS)}")
    teacher_kind(teacher)  # TypeError naming the class for an unsupported teacher
    teacher_layers = teacher.config.num_hidden_layers
    kept = select_layers(layers, teacher_layers, num_layers)
    if arch == "same":
        student = build_same_arch(teacher, kept, attn_implementation=attn_implementation)
    else:
        student = build_distilbert(teacher, kept, attn_implementation=attn_implementation)
    return student, StudentInfo(arch=arch, kept=kept, teacher_layers=teacher_layers)


__all__ = [
    "ARCHS",
    "StudentInfo",
    "build_distilbert",
    "build_same_arch",
    "build_student",
    "count_parameters",
    "describe_student",
    "select_layers",
    "student_from_config",
    "teacher_kind",
]
