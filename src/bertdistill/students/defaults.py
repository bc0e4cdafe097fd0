"""Which student architecture a run gets when the user did not say.

A DistilBERT-architecture student has no token-type embeddings: on a sentence-pair task it
cannot tell which segment a token belongs to (only the [SEP] between them). So on pair tasks
a recipe's ``arch: distilbert`` falls back to the teacher's own architecture (which keeps
the token types) with a warning, unless the user asked for ``--student-arch distilbert``
explicitly (then it is honoured, with a warning). The measured difference is in
benchmarks/RESULTS.md ("Reliability").
"""

from __future__ import annotations


def choose_arch(requested: str | None, recipe_arch: str, pair: bool) -> tuple[str, str | None]:
    """(arch to build, warning or None) for ``--student-arch`` ``requested`` (None: not given)."""
    if not pair:
        return requested or recipe_arch, None
    if requested == "distilbert":
        return "distilbert", (
            "--student-arch distilbert on a sentence-pair task: a DistilBERT student has no token-type "
            "embeddings and cannot tell the two segments apart (only by the [SEP] between them); "
            "--student-arch same keeps them")
    if requested is None and recipe_arch == "distilbert":
        return "same", (
            "sentence-pair task: using a student of the teacher's architecture (--student-arch same) instead of "
            "the recipe's DistilBERT student, which has no token-type embeddings; pass --student-arch distilbert "
            "to insist")
    return requested or recipe_arch, None
