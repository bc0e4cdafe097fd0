"""The user guide builds as a site with ``mkdocs build --strict``: a broken link, a missing
anchor or an API reference that does not resolve fails the build, and so this test. The
guide and the README speak of the software, not of its history."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bertdistill.extras import install_hint

ROOT = Path(__file__).resolve().parents[1]
# the files of the product this test holds to the no-history rule
GUIDE_FILES = [ROOT / "README.md", ROOT / "mkdocs.yml", *sorted((ROOT / "docs").rglob("*.md")),
               *sorted((ROOT / "docs").rglob("*.py")), *sorted((ROOT / "src").rglob("*.py")),
               *sorted((ROOT / "src").rglob("*.yaml"))]
# an issue number, a work session ("session of ...", "this session"), a date of the work log
HISTORY = re.compile(r"\bissues?\s*#?\d+|\bsessions?\s+(of|on)\b|\b(this|that|earlier|later|previous|each|one)"
                     r"\s+sessions?\b|\b20\d\d-[01]\d\b", re.I)


def mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess:
    try:
        import mkdocs  # noqa: F401
        import mkdocstrings  # noqa: F401
    except ImportError:
        pytest.fail(f"the site build needs mkdocs and mkdocstrings: {install_hint('docs')}")
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config),
                           "--site-dir", str(site)], capture_output=True, text=True, timeout=120,
                          cwd=config.parent)


def test_the_guide_builds_strictly_and_fast(tmp_path):
    started = time.monotonic()
    built = mkdocs_build(ROOT / "mkdocs.yml", tmp_path / "site")
    elapsed = time.monotonic() - started
    assert built.returncode == 0, built.stderr[-4000:]
    assert elapsed < 30, f"the site build took {elapsed:.0f} s"
    site = tmp_path / "site"
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    for name in ("finetune", "distill", "evaluate", "predict", "general_distill"):
        assert f'id="bertdistill.api.{name}"' in api, name  # the reference generated from the docstrings
    assert "Distil a fine-tuned" in api  # distill's docstring, rendered
    results = (site / "benchmarks" / "RESULTS" / "index.html").read_text(encoding="utf-8")
    assert "<h1" in results  # benchmarks/RESULTS.md is a page of the site, read where it lives
    assert not list(site.rglob("hooks"))  # the build's hook is not published
    for page in site.rglob("*.html"):  # offline: nothing is loaded from another host
        html = page.read_text(encoding="utf-8")
        assert not re.search(r'<(script|link)[^>]+(src|href)="https?://', html), page


def _copy_site_sources(tmp_path: Path) -> Path:
    """mkdocs.yml, docs/ and the RESULTS file in a scratch folder (src/ stays where it is)."""
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    (tmp_path / "benchmarks").mkdir()
    shutil.copy(ROOT / "benchmarks" / "RESULTS.md", tmp_path / "benchmarks" / "RESULTS.md")
    (tmp_path / "src").symlink_to(ROOT / "src")
    return tmp_path / "mkdocs.yml"


@pytest.mark.parametrize("page,added,expected", [
    ("docs/own-data.md", "\nSee [the recipes](recipes.md).\n", "'recipes.md'"),
    ("docs/index.md", "\nSee [extras](own-data.md#no-such-heading).\n", "'#no-such-heading'"),
    ("docs/api.md", "\n::: bertdistill.api.no_such_function\n", "bertdistill.api.no_such_function"),
    ("docs/results.md", "\n[gone](../benchmarks/NO_SUCH_FILE.md)\n", "NO_SUCH_FILE.md"),
])
def test_the_strict_build_fails_on_a_broken_reference(tmp_path, page, added, expected):
    config = _copy_site_sources(tmp_path)
    with open(tmp_path / page, "a", encoding="utf-8") as fh:
        fh.write(added)
    built = mkdocs_build(config, tmp_path / "site")
    assert built.returncode != 0 and expected in built.stderr, built.stderr[-2000:]


@pytest.mark.parametrize("path", GUIDE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_guide_speaks_of_the_software_not_its_history(path):
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        found = HISTORY.search(line)
        assert not found, f"{path.relative_to(ROOT)}:{number}: {found.group(0)!r} (history, not the software)"
