"""Where shared benchmark data lives (overridable with BERTDISTILL_DATA)."""

from __future__ import annotations

import os
from pathlib import Path


def shared_data_dir() -> Path:
    """The staged benchmark data: $BERTDISTILL_DATA, else ../shared/data beside the repo."""
    env = os.environ.get("BERTDISTILL_DATA")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent.parent / "shared" / "data"
        if (parent / "pyproject.toml").exists() and candidate.exists():
            return candidate
    return Path.cwd().parent / "shared" / "data"
