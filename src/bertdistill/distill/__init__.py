"""The distiller, in four separate parts (after mmrazor).

* :mod:`~bertdistill.distill.features` — recorders: which outputs a model must produce and
  reading feature keys (``logits``, ``hidden:i``, ``attention:i``, ``cls:i``, ``embeddings``,
  ``qkv:i``: Q/K/V projections recorded by :mod:`~bertdistill.distill.qkv`);
* :mod:`~bertdistill.distill.connectors` — learned projections between widths;
* :mod:`~bertdistill.distill.losses` — comparison functions in the ``LOSSES`` registry
  (:mod:`~bertdistill.distill.sentence_loss` adds ``sentence_embedding``);
* :mod:`~bertdistill.distill.terms` — a distillation as data (``Term``, layer specs);

wired together by :class:`Distiller`, and read from YAML by :func:`load_recipe`.
"""

from bertdistill.distill.connectors import Projection, build_connectors, connector_key
from bertdistill.distill.distiller import Distiller
from bertdistill.distill.features import FeatureNeeds, extract, feature_key, needs, parse_key
from bertdistill.distill.losses import LOSSES, DistillLoss, build_loss, register_loss
from bertdistill.distill import qa_losses  # noqa: F401  (registers qa_kd, qa_hard)
from bertdistill.distill import feature_map  # noqa: F401  (registers feature_map)
from bertdistill.distill import sentence_loss  # noqa: E402,F401  registers the sentence_embedding loss
from bertdistill.distill.recipe import Recipe, RecipeError, list_recipes, load_recipe, parse_recipe
from bertdistill.distill.terms import (LAYER_SPECS, Term, check_term, name_terms, resolve_layers,
                                       resolve_term, term_keys)

__all__ = [
    "LAYER_SPECS", "LOSSES", "DistillLoss", "Distiller", "FeatureNeeds", "Projection", "Recipe",
    "RecipeError", "Term", "build_connectors", "build_loss", "check_term", "connector_key",
    "extract", "feature_key", "list_recipes", "load_recipe", "name_terms", "needs", "parse_key",
    "parse_recipe", "register_loss", "resolve_layers", "resolve_term", "term_keys",
]
