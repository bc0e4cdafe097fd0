"""The data a saved model was trained on, read from the run folder that holds it.

``bertdistill distill --output RUN`` saves the student in ``RUN/student`` and its plan in
``RUN/run_config.json``; ``finetune --output RUN`` saves ``RUN/best`` and ``RUN/results.json``
(whose ``config`` holds the data flags of both). ``export`` and the exports ``benchmark``
makes on the way check parity on this data when no ``--data`` is given, instead of a few
built-in sentences.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

PLAN_FILE = "run_config.json"      # pipelines.plan.PLAN_FILE
RESULTS_FILE = "results.json"


@dataclass
class RunData:
    data: str                      # the --data the run read
    task: str | None               # its --task (None: from the file's extension)
    options: dict = field(default_factory=dict)  # load_task keywords: columns, labels, validation_split
    source: str = ""               # the file these came from, for the message

    def describe(self) -> str:
        return f"the run's data {self.data} (from {self.source})"


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def run_data(model_dir: str | os.PathLike) -> RunData | None:
    """The ``--data`` of the run whose output folder holds ``model_dir``, or None.

    None when the folder is not in a run folder, when the run read a task's default data (the
    model's task finds it again), or when the recorded file no longer exists.
    """
    run = Path(str(model_dir)).expanduser().resolve().parent
    plan = _read(run / PLAN_FILE) if (run / PLAN_FILE).is_file() else {}
    config = _read(run / RESULTS_FILE).get("config") or {} if (run / RESULTS_FILE).is_file() else {}
    recorded = (plan.get("data") or {}).get("source") or config.get("data")
    if not isinstance(recorded, str) or not recorded:
        return None
    if not recorded.startswith("hub:") and not Path(recorded).expanduser().exists():
        print(f"bertdistill: the run's data {recorded} (in {run}) is not found here; pass --data for the parity check")
        return None
    options = {k: v for k, v in (config.get("data_options") or {}).items() if v is not None}
    if config.get("skip_bad_rows"):
        options["skip_bad_rows"] = True
    task = config.get("task") or (plan.get("data") or {}).get("task")
    where = run / (PLAN_FILE if plan.get("data") else RESULTS_FILE)
    return RunData(recorded, task if isinstance(task, str) else None, options, str(where))
