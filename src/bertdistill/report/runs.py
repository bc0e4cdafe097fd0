"""Reading finished runs: what a finetune or distill run folder says about its model."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .command import distill_command


@dataclass
class RunEntry:
    name: str
    kind: str                    # "teacher" | "student"
    model_dir: str               # the saved model (HF folder)
    run_dir: str | None          # None for a teacher known only through a student's results
    metrics: dict                # dev metrics of this model
    results: dict = field(default_factory=dict)
    teacher_metrics: dict | None = None   # students: the teacher's dev metrics in the same run

    @property
    def config(self) -> dict:
        return self.results.get("config") or {}

    def command(self) -> str | None:
        """The command that reproduces the run: as recorded, else rebuilt from the saved config."""
        if self.results.get("command"):
            return self.results["command"]
        if self.kind == "student" and self.config:
            return distill_command(self.config)
        return None


def _read_results(run_dir: Path) -> dict:
    path = run_dir / "results.json"
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {run_dir} does not exist")
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a finished run folder: {path.name} not found "
                                "(give the --output folder of `bertdistill finetune` or `distill`)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err


def read_run(run_dir: str | Path, split: str = "dev") -> RunEntry:
    """A RunEntry from a finetune run (``best_dir``) or a distill run (``student_dir``)."""
    run_dir = Path(run_dir)
    results = _read_results(run_dir)
    if "student_dir" in results:
        row = results.get(split) or {}
        if "student" not in row:
            raise ValueError(f"{run_dir}/results.json has no {split!r} scores of the student")
        return RunEntry(run_dir.name, "student", results["student_dir"], str(run_dir), row["student"], results,
                        row.get("teacher"))
    if "best_dir" in results:
        if split not in results:
            raise ValueError(f"{run_dir}/results.json has no {split!r} scores")
        return RunEntry(run_dir.name, "teacher", results["best_dir"], str(run_dir), results[split], results)
    raise ValueError(f"{run_dir}/results.json is neither a finetune nor a distill result "
                     "(no best_dir / student_dir)")


def loss_curves(run_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Each loss term's logged values from ``log.jsonl`` ('parts'), plus the weighted total ('total')."""
    path = Path(run_dir) / "log.jsonl"
    curves: dict[str, list[tuple[int, float]]] = {}
    if not path.is_file():
        return curves
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{number}: not valid JSON ({err})") from err
        if "loss" not in row:
            continue
        curves.setdefault("total", []).append((int(row["step"]), float(row["loss"])))
        for term, value in (row.get("parts") or {}).items():
            curves.setdefault(term, []).append((int(row["step"]), float(value)))
    return curves
