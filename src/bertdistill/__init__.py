"""bertdistill: make BERT-family models smaller and faster by knowledge distillation.

The public functions live in ``bertdistill.api`` and are reachable from here::

    import bertdistill
    bertdistill.finetune(data="reviews.csv", output="runs/teacher")
    bertdistill.distill("runs/teacher/best", data="reviews.csv", output="runs/student")
    bertdistill.predict("runs/student/student", ["a great film"])

(No submodule is named like a function: ``bertdistill.predict`` is always the function.)
They are imported on first use, so ``import bertdistill`` (and ``bertdistill --help``)
stays fast; ``help(bertdistill.distill)`` shows each one's keywords and an example.
"""

from __future__ import annotations

import importlib
import importlib.util

__version__ = "0.1.0"

__all__ = ["TrainConfig", "demo", "distill", "embed", "evaluate", "finetune", "load_task", "predict"]


def __getattr__(name: str):
    if name.startswith("_") or importlib.util.find_spec(f"{__name__}.{name}") is not None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    api = importlib.import_module(".api", __name__)
    if hasattr(api, name):  # every public function of bertdistill.api, including later additions
        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
