"""Plain-text metric tables (a CoNLL-style per-entity report for NER)."""

from __future__ import annotations

from collections.abc import Mapping

from ..data.examples import TaskSpec


def _fmt(value) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _grid(header: list[str], rows: list[list[str]], *, left_cols: int = 1) -> list[str]:
    """Rows aligned in columns: the first ``left_cols`` left-aligned, the rest right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        parts = [
            c.ljust(w) if i < left_cols else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths))
        ]
        return "  ".join(parts).rstrip()

    out = [line(header), "  ".join("-" * w for w in widths)]
    out.extend(line(r) for r in rows)
    return out


def _ner_table(metrics: Mapping) -> list[str]:
    per_entity = metrics.get("per_entity") or {}
    rows = []
    for name in sorted(per_entity):
        s = per_entity[name]
        rows.append([name, _fmt(s["precision"]), _fmt(s["recall"]), _fmt(s["f1"]), _fmt(s["support"])])
    support = metrics.get("entity_support")
    if support is None:
        support = sum(int(s["support"]) for s in per_entity.values())
    rows.append(
        [
            "overall",
            _fmt(metrics.get("entity_precision", float("nan"))),
            _fmt(metrics.get("entity_recall", float("nan"))),
            _fmt(metrics.get("entity_f1", float("nan"))),
            _fmt(support),
        ]
    )
    lines = _grid(["type", "precision", "recall", "f1", "support"], rows)
    # a rule above the overall row, as in the CoNLL evaluation report
    lines.insert(len(lines) - 1, lines[1])
    if "token_accuracy" in metrics:
        lines.append(f"token accuracy: {_fmt(metrics['token_accuracy'])}")
    if "entity_predicted" in metrics and "entity_correct" in metrics:
        lines.append(
            f"entities: {support} in references, {metrics['entity_predicted']} predicted, "
            f"{metrics['entity_correct']} correct"
        )
    return lines


def format_metrics(task: TaskSpec, metrics: Mapping, title: str | None = None) -> str:
    """A plain-text table of ``metrics`` (as returned by ``compute_metrics``) for ``task``.

    Sentence tasks give one ``metric  value`` row per scalar, the task's own metrics first
    (the main metric on top). NER gives a per-entity table (type, precision, recall, F1,
    support), then the overall row and token accuracy, like the CoNLL evaluation report.
    Other keys that are not numbers are left out.
    """
    lines: list[str] = []
    if title:
        lines += [title, "=" * len(title)]
    if task.kind == "token_classification" and (
        "per_entity" in metrics or "entity_f1" in metrics
    ):
        lines += _ner_table(metrics)
    else:
        names = [n for n in task.metrics if n in metrics]
        names += [n for n in metrics if n not in names]
        rows = [
            [n, _fmt(metrics[n])]
            for n in names
            if isinstance(metrics[n], (int, float)) and not isinstance(metrics[n], bool)
        ]
        lines += _grid(["metric", "value"], rows)
    return "\n".join(lines)
