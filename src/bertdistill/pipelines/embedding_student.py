"""Sentence-embedding students in ``general-distill``: the teacher's pooling into the recipe, the
student saved as a sentence-transformers folder.

A recipe with a ``sentence_embedding`` term (``general_embedding``) compares pooled sentence
vectors. Its ``pooling: teacher`` / ``normalize: teacher`` params are replaced, before the
distiller is built, by what the teacher's folder says (``modules.json``,
``1_Pooling/config.json``, a ``Normalize`` module); a teacher folder without them is refused
unless the recipe names both. After training, the saved encoder folder gets the same modules
(and a ``Dense`` module holding the learned projection of a narrower student), so
``sentence_transformers.SentenceTransformer`` and ``transformers.AutoModel`` both load it.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

from ..distill.connectors import connector_key
from ..distill.sentence_loss import FROM_TEACHER
from ..distill.terms import term_pairs
from ..models.loading import resolve_model
from ..models.sentence_embedding import SentenceConfig, read_sentence_config, write_sentence_folder

LOSS = "sentence_embedding"


def embedding_terms(recipe) -> list:
    """The recipe's weighted ``sentence_embedding`` terms."""
    return [t for t in recipe.terms if t.loss == LOSS and t.weight]


def with_teacher_pooling(recipe, teacher: str):
    """``(recipe, SentenceConfig)`` with every ``teacher`` pooling / normalize param of a
    ``sentence_embedding`` term read from the teacher's folder; ``(recipe, None)`` for a recipe
    without such a term. ValueError (one line) when the teacher cannot say."""
    terms = embedding_terms(recipe)
    if not terms:
        return recipe, None
    if len(terms) > 1 or (isinstance(terms[0].layers, (list, tuple)) and len(terms[0].layers) != 1):
        raise ValueError(f"recipe {recipe.name}: a sentence-embedding student is trained by ONE "
                         f"{LOSS} term on one layer pair (the last layers: [[-1, -1]])")
    params = terms[0].params
    wanted = [k for k in ("pooling", "normalize") if params.get(k, FROM_TEACHER) == FROM_TEACHER]
    folder = Path(resolve_model(teacher))
    found = read_sentence_config(folder) if folder.is_dir() else None
    if found is not None and found.has_dense:
        raise ValueError(f"--teacher {teacher}: {folder / 'modules.json'} has a Dense module after pooling; "
                         "only Transformer + Pooling (+ Normalize) teachers are supported")
    if wanted and found is None:
        raise ValueError(f"--teacher {teacher}: no sentence-transformers modules.json in {folder}, so its pooling "
                         f"is unknown; set params pooling (mean, cls, max) and normalize (true, false) of the "
                         f"{LOSS} term in a copy of the recipe")
    base = found or SentenceConfig()
    pooling = base.pooling if "pooling" in wanted else params["pooling"]
    normalize = base.normalize if "normalize" in wanted else params["normalize"]
    sentence = dataclasses.replace(base, pooling=pooling, normalize=normalize,
                                   pooling_config=base.pooling_config if pooling == base.pooling else {})
    new = copy.deepcopy(recipe)
    new.terms = [dataclasses.replace(t, params={**t.params, "pooling": pooling, "normalize": normalize})
                 if t.loss == LOSS and t.weight else t for t in new.terms]
    return new, sentence


def save_sentence_student(folder: str | Path, sentence: SentenceConfig, student, distiller) -> Path:
    """Add the sentence-transformers modules to the saved student ``folder``; the term's learned
    projection (a student narrower than the teacher) becomes its ``Dense`` module."""
    term = next(t for t in distiller.terms if t.loss == LOSS)
    dense = None
    if term.projection:
        pair = term_pairs(term)[0]
        key = connector_key(term, pair)
        dense = distiller.connectors[key] if key in distiller.connectors else None
    return write_sentence_folder(folder, sentence, int(student.config.hidden_size),
                                 max_position_embeddings=getattr(student.config, "max_position_embeddings", None),
                                 dense=dense)
