"""Experiment trackers beside the JSONL log (TensorBoard, W&B, MLflow, ... through accelerate).

``--log-with tensorboard`` (or any tracker accelerate supports, comma-separated) sends the loss,
each loss term, the learning rate, the throughput and the evaluation metrics to the trackers;
the JSONL log is always written. Tracker files go to ``<output>/trackers``.
"""

from __future__ import annotations

from collections.abc import Mapping


def parse_trackers(value: str | list[str] | None) -> list[str]:
    """Tracker names from ``--log-with``; ValueError naming the option for an unknown or missing one."""
    if not value:
        return []
    names = [v.strip() for v in (value.split(",") if isinstance(value, str) else value) if v.strip()]
    from accelerate.tracking import get_available_trackers
    from accelerate.utils import LoggerType

    known = [str(t) for t in LoggerType.list()] if hasattr(LoggerType, "list") else [t.value for t in LoggerType]
    available = {str(getattr(t, "value", t)) for t in get_available_trackers()}
    for name in names:
        if name not in known:
            raise ValueError(f"--log-with {name!r} is not a tracker accelerate knows; choose from {', '.join(known)}")
        if name != "all" and name not in available:
            hint = " (pip install 'bertdistill[trackers]')" if name == "tensorboard" else f" (pip install {name})"
            raise ValueError(f"--log-with {name}: the {name} package is not installed{hint}")
    return names


def tracker_values(row: Mapping) -> dict[str, float]:
    """A JSONL log row as flat scalar tracker values: loss, loss/<term>, lr, samples_per_s, eval/<metric>."""
    out: dict[str, float] = {}
    if "loss" in row:
        out["loss"] = float(row["loss"])
    for term, value in (row.get("parts") or {}).items():
        out[f"loss/{term}"] = float(value)
    for key in ("lr", "samples_per_s"):
        if key in row:
            out[key] = float(row[key])
    for key, value in (row.get("eval") or {}).items():
        if isinstance(value, (int, float)):
            out[f"eval/{key}"] = float(value)
    return out


def hparams(config: Mapping) -> dict:
    """The scalar settings of a TrainConfig, as trackers accept them."""
    return {k: v for k, v in config.items() if isinstance(v, (int, float, str, bool))}
