"""Augmentation as an option of any recipe: the ``augment:`` block of a YAML recipe.

Either an existing file written by ``bertdistill augment``::

    augment: {file: runs/sst2_tang.jsonl}

or a method applied to the train split when the recipe runs (the set is written to
``<output>/transfer_set.jsonl``)::

    augment:
      method: tang            # a name in AUGMENTERS
      copies: 20              # N >= 1 copies per example
      seed: 0
      subset: null            # augment only a seeded subset of this many examples
      pair_sides: both        # pairs: perturb both sides or one at random
      params: {p_mask: 0.1, p_pos: 0.1, p_ng: 0.25}
"""

from __future__ import annotations

from pathlib import Path

from ..data.examples import Example
from .registry import AUGMENTERS, check_positive_int, flag
from .transfer import PAIR_SIDES, build_transfer_set, read_transfer_set

SPEC_KEYS = ("file", "method", "copies", "seed", "subset", "pair_sides", "params")


def check_augment_spec(raw) -> dict:
    """A validated copy of an ``augment:`` block (names, counts; values are checked by the augmenter)."""
    if not isinstance(raw, dict):
        raise ValueError(f"must be a mapping with keys {', '.join(SPEC_KEYS)}")
    unknown = sorted(set(raw) - set(SPEC_KEYS))
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(map(str, unknown))}; allowed: {', '.join(SPEC_KEYS)}")
    if "file" in raw:
        if set(raw) != {"file"}:
            raise ValueError("'file' names a finished transfer set; give it alone")
        return {"file": str(raw["file"])}
    method = raw.get("method")
    if method not in AUGMENTERS:
        raise ValueError(f"method must be one of {', '.join(sorted(AUGMENTERS))}, got {method!r}")
    spec = {"method": method, "copies": check_positive_int("copies", raw.get("copies", 20)),
            "seed": raw.get("seed", 0), "subset": raw.get("subset"), "pair_sides": raw.get("pair_sides", "both"),
            "params": dict(raw.get("params") or {})}
    if spec["subset"] is not None:
        check_positive_int("augment_subset", spec["subset"])
    if spec["pair_sides"] not in PAIR_SIDES:
        raise ValueError(f"pair_sides must be one of {', '.join(PAIR_SIDES)}, got {spec['pair_sides']!r}")
    bad = sorted(set(spec["params"]) - set(AUGMENTERS[method].params))
    if bad:
        raise ValueError(f"{', '.join(f'{b} ({flag(b)})' for b in bad)} do(es) not apply to method {method}; "
                         f"its options: {', '.join(AUGMENTERS[method].params) or 'none'}")
    return spec


def transfer_examples(spec: dict, train: list[Example], output_dir: str | Path, *, task=None,
                      terms=()) -> tuple[list[Example], dict]:
    """The transfer set a recipe trains on: read from ``file`` or built from ``train`` now.

    Augmented copies have no gold label; a label loss on a regression task cannot skip them
    (NaN scores), so that combination is refused, as is token classification (word lists).
    """
    if task is not None and task.kind == "token_classification":
        raise ValueError("augment: the augmentation families rewrite sentences; token classification "
                         "(one tag per word) is not supported")
    if task is not None and task.kind == "regression" and any(t.loss == "hard" and t.weight > 0 for t in terms):
        raise ValueError("augment: augmented copies have no gold score; on a regression task set the label "
                         "term's weight to 0 (--weight hard=0)")
    if "file" in spec:
        return read_transfer_set(spec["file"])
    return build_transfer_set(train, spec["method"], copies=spec["copies"], seed=spec["seed"],
                              subset=spec["subset"], pair_sides=spec["pair_sides"],
                              output=Path(output_dir) / "transfer_set.jsonl", **spec["params"])


def fill_missing_labels(features: list[dict], ignore: int = -100) -> None:
    """Encoded copies without a label get the ignored class id, so batches mix them freely."""
    for f in features:
        f.setdefault("labels", ignore)


__all__ = ["SPEC_KEYS", "check_augment_spec", "fill_missing_labels", "flag", "transfer_examples"]
