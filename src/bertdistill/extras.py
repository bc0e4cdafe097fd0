"""Optional dependencies, grouped by feature into the package's extras.

A feature whose packages are missing raises :class:`MissingExtra`, a ``ValueError``, so the
CLI reports it as one line with exit code 2, naming the feature and the install command::

    bertdistill distill: error: GloVe word vectors (BiLSTM students, GloVe augmentation) need
    the package pyarrow: pip install 'bertdistill[bilstm]'
"""

from __future__ import annotations

import importlib
from types import ModuleType

# extra name -> the feature it serves (the words of the error message)
EXTRAS = {
    "bilstm": "GloVe word vectors (BiLSTM students, GloVe augmentation)",
    "hub": "hub data sets (hub:<id>)",
    "trackers": "experiment trackers (--log-with)",
    "augment": "POS-guided augmentation",
    "docs": "the documentation site",
}


class MissingExtra(ValueError):
    """An optional package is not installed; the message says which extra brings it."""

    def __init__(self, extra: str, package: str, otherwise: str = ""):
        self.extra = extra
        self.package = package
        tail = f" ({otherwise})" if otherwise else ""
        super().__init__(f"{EXTRAS[extra]} need the package {package}: {install_hint(extra)}{tail}")


def install_hint(extra: str) -> str:
    """The one command that installs an extra, e.g. ``pip install 'bertdistill[bilstm]'``."""
    if extra not in EXTRAS:
        raise KeyError(f"unknown extra {extra!r}; known: {sorted(EXTRAS)}")
    return f"pip install 'bertdistill[{extra}]'"


def require(module: str, extra: str, package: str | None = None, otherwise: str = "") -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtra` naming ``extra``.

    ``package`` is the PyPI name when it differs from the module's; ``otherwise`` an
    alternative that needs no install, added to the message in brackets.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra(extra, package or module.split(".")[0], otherwise) from None
