"""Flags of extractive question answering (``--task squad``): windows and answer decoding.

``finetune`` and ``evaluate`` take the window flags; ``predict`` also takes ``--question`` /
``--context``. Unset flags stay None so the defaults live in one place
(``bertdistill.data.qa_features.QaOptions``).
"""

from __future__ import annotations

import argparse

from .options import positive_int

#: ``--max-length`` help of the commands whose default depends on the task
MAX_LENGTH_DEFAULT = "128; 384-token windows for question answering (--task squad)"
FLAGS = ("doc_stride", "max_question_length", "n_best", "max_answer_length")


def add_qa_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("question answering (--task squad)")
    g.add_argument("--doc-stride", type=positive_int, default=None,
                   help="context tokens shared by consecutive windows of a long context (default: 128)")
    g.add_argument("--max-question-length", type=positive_int, default=None,
                   help="question tokens kept; longer questions are cut (default: 64)")
    g.add_argument("--n-best", type=positive_int, default=None,
                   help="start and end candidates paired per window (default: 20)")
    g.add_argument("--max-answer-length", type=positive_int, default=None,
                   help="longest answer, in tokens (default: 30)")


def qa_overrides(a: argparse.Namespace) -> dict:
    """The question-answering flags given, as ``QaOptions`` fields."""
    return {k: getattr(a, k) for k in FLAGS if getattr(a, k, None) is not None}
