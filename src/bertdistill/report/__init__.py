"""Reports: a teacher and its students compared (Markdown, JSON, plots) and model cards."""

from .plots import accuracy_latency_plot, loss_curves_plot, pareto_front
from .report import build_report
from .runs import RunEntry, loss_curves, read_run

__all__ = ["RunEntry", "accuracy_latency_plot", "build_report", "loss_curves", "loss_curves_plot", "pareto_front",
           "read_run"]
