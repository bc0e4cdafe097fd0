"""The report's figures (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats: lower latency (x) and higher metric (y).

    A point is dominated when another is at least as fast and at least as good, and strictly
    better in one of the two. Returned in order of increasing latency.
    """
    front = []
    for i, (x, y) in enumerate(points):
        dominated = any(
            (x2 <= x and y2 >= y) and (x2 < x or y2 > y) for j, (x2, y2) in enumerate(points) if j != i
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def accuracy_latency_plot(points: Sequence[dict], path: str | Path, *, metric: str, length: int) -> Path:
    """Scatter of ``points`` ({"label", "latency_ms", "metric"}) with the Pareto front drawn and ringed."""
    plt = _pyplot()
    xy = [(p["latency_ms"], p["metric"]) for p in points]
    front = pareto_front(xy)
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    ax.scatter([x for x, _ in xy], [y for _, y in xy], s=36, color="tab:blue", zorder=3)
    seen: dict[float, int] = {}
    for p, (x, y) in sorted(zip(points, xy), key=lambda item: item[1][0]):
        k = seen[round(y, 6)] = seen.get(round(y, 6), -1) + 1  # points of equal metric: labels above, below
        ax.annotate(p["label"], (x, y), textcoords="offset points", xytext=(5, 4 if k % 2 == 0 else -11), fontsize=7)
    ax.plot([xy[i][0] for i in front], [xy[i][1] for i in front], color="tab:red", lw=1.2, zorder=2,
            label="Pareto front")
    ax.scatter([xy[i][0] for i in front], [xy[i][1] for i in front], s=110, facecolors="none",
               edgecolors="tab:red", lw=1.4, zorder=4)
    ax.set_xscale("log")
    ax.set_xlabel(f"median latency, batch 1, {length} tokens (ms, log scale)")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} vs latency")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save(plt, fig, path)


def loss_curves_plot(curves: dict[str, dict[str, list[tuple[int, float]]]], path: str | Path) -> Path:
    """One panel per run: each loss term's value against the optimizer step."""
    plt = _pyplot()
    n = max(1, len(curves))
    fig, axes = plt.subplots(1, n, figsize=(5.0 * n, 3.6), dpi=120, squeeze=False)
    for ax, (run, terms) in zip(axes[0], curves.items()):
        for term, values in sorted(terms.items()):
            ax.plot([s for s, _ in values], [v for _, v in values], lw=1.0, label=term)
        ax.set_title(run, fontsize=9)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("loss term")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    return _save(plt, fig, path)


def _save(plt, fig, path: str | Path) -> Path:
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
