"""Entity-level NER metrics with seqeval (conlleval-compatible default mode)."""

from __future__ import annotations

from collections.abc import Sequence

from seqeval.metrics.sequence_labeling import get_entities, precision_recall_fscore_support


def _as_sentences(name: str, tags: Sequence[Sequence[str]]) -> list[list[str]]:
    sentences = []
    for i, sentence in enumerate(tags):
        if isinstance(sentence, str):
            raise ValueError(f"{name}[{i}] is a string; expected a list of tag names per sentence")
        sentences.append([str(t) for t in sentence])
    return sentences


def ner_metrics(
    predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]]
) -> dict[str, float | int | dict]:
    """Entity precision / recall / F1 (micro over entities), token accuracy, per-type scores.

    Tags are IOB strings (``B-PER``, ``I-PER``, ``O``). seqeval's default mode is used, which
    counts entities the way conlleval.pl does: an entity is correct only when its type and
    both boundaries match exactly, so a partial overlap is one false positive plus one false
    negative.
    """
    y_pred = _as_sentences("predictions", predictions)
    y_true = _as_sentences("references", references)
    if len(y_pred) != len(y_true):
        raise ValueError(
            f"got {len(y_pred)} predicted sentences but {len(y_true)} reference sentences"
        )
    if not y_true:
        raise ValueError("cannot compute metrics on an empty set of sentences")
    tokens = correct_tokens = 0
    for i, (p, t) in enumerate(zip(y_pred, y_true)):
        if len(p) != len(t):
            raise ValueError(
                f"sentence {i}: {len(p)} predicted tags but {len(t)} reference tags"
            )
        tokens += len(t)
        correct_tokens += sum(a == b for a, b in zip(p, t))

    true_entities = {(s, *e) for s, sent in enumerate(y_true) for e in get_entities(sent)}
    pred_entities = {(s, *e) for s, sent in enumerate(y_pred) for e in get_entities(sent)}
    types = sorted({e[1] for e in true_entities} | {e[1] for e in pred_entities})

    per_entity: dict[str, dict[str, float | int]] = {}
    if types:
        # seqeval orders per-type rows by sorted type name, as computed above
        p, r, f, s = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
        for name, pv, rv, fv, sv in zip(types, p, r, f, s):
            per_entity[name] = {
                "precision": float(pv),
                "recall": float(rv),
                "f1": float(fv),
                "support": int(sv),
            }
    n_correct = len(true_entities & pred_entities)
    if types:
        precision, recall, f1, _ = precision_recall_fscore_support(
            y_true, y_pred, average="micro", zero_division=0
        )
    else:  # no entity anywhere: nothing to find, nothing found
        precision = recall = f1 = 0.0
    return {
        "entity_f1": float(f1),
        "entity_precision": float(precision),
        "entity_recall": float(recall),
        "token_accuracy": correct_tokens / tokens if tokens else 0.0,
        "entity_support": len(true_entities),
        "entity_predicted": len(pred_entities),
        "entity_correct": n_correct,
        "per_entity": per_entity,
    }
