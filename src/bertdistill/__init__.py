"""bertdistill: make BERT-family models smaller and faster by knowledge distillation.

The public functions live in ``bertdistill.api`` and are reachable from here::

    import bertdistill
    bertdistill.finetune(data="reviews.csv", output="runs/teacher")
    bertdistill.distill("runs/teacher/best", data="reviews.csv", output="runs/student")
    bertdistill.predict("runs/student/student", ["a great film"])
    bertdistill.general_distill("runs/mlm-teacher/model", "runs/corpus", output="runs/general")

They are imported on first use, so ``import bertdistill`` (and ``bertdistill --help``)
stays fast; ``help(bertdistill.distill)`` shows each one's keywords and an example.
``bertdistill.distill`` is the function even though a subpackage has that name; its
attributes are the subpackage's (``import bertdistill.distill.cache`` keeps working).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
import types

__version__ = "0.1.0"

__all__ = ["TrainConfig", "answer", "demo", "distill", "embed", "embed_eval", "evaluate", "finetune", "general_distill",
           "load_task", "mlm_head", "predict"]


class _Package(types.ModuleType):
    """This package's module type: a subpackage import never replaces a public function name."""

    def __setattr__(self, name: str, value) -> None:
        if name in __all__ and isinstance(value, types.ModuleType):
            return  # the import system records the subpackage in sys.modules; the name stays the function
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


class _FunctionAndPackage:
    """A public function whose name is also a subpackage's (``distill``): calling it calls the
    function, attributes are the subpackage's, so ``bertdistill.distill(...)`` and
    ``import bertdistill.distill.cache as cache`` both work."""

    def __init__(self, function, package: str):
        functools.update_wrapper(self, function)  # __doc__, __module__, __wrapped__ (signature)
        self._package = package

    def __call__(self, *args, **kwargs):
        return self.__wrapped__(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(importlib.import_module(self._package), name)

    def __repr__(self) -> str:
        return f"<function {self.__qualname__} (and package {self._package})>"


def __getattr__(name: str):
    public = name in __all__
    if not public and (name.startswith("_") or importlib.util.find_spec(f"{__name__}.{name}") is not None):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    api = importlib.import_module(".api", __name__)
    if not hasattr(api, name):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(api, name)  # every public function of bertdistill.api, including later additions
    if public and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = _FunctionAndPackage(value, f"{__name__}.{name}")
        globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
