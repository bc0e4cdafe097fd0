"""benchmarks/run.sh: one entry point for named benchmarks. --list names them; a dry run of every
one prints commands whose scripts exist; benchmarks/ holds only the suite's scripts; the README
table and RESULTS.md's commands name only listed benchmarks; RESULTS.md has its fixed sections."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
SECTIONS = ["How to read this file", "Demo: Rotten Tomatoes", "SST-2: teacher and DistilBERT-style student",
            "SST-2: export and speed", "SST-2: against TextBrewer", "SST-2: TinyBERT, PKD and layer-wise strategies",
            "SST-2: BiLSTM students", "General distillation", "CoNLL-2003 NER", "SQuAD v1.1: extractive question answering",
            "Performance options", "Reliability"]

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="the suite's entry point is a bash script")


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(BENCH / "run.sh"), *args], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)


@pytest.fixture(scope="module")
def listed() -> dict[str, str]:
    done = _run("--list")
    assert done.returncode == 0, done.stderr
    rows = [line.split(None, 1) for line in done.stdout.splitlines() if line.strip()]
    assert all(len(row) == 2 and len(row[1]) > 20 for row in rows), rows  # a name and a description
    return dict(rows)


def test_list_names_the_benchmarks(listed):
    assert {"demo", "sst2-teacher", "sst2-student", "sst2-export", "sst2-speed", "textbrewer", "tinybert",
            "bilstm", "general", "conll", "peak-flops"} <= set(listed)


def test_every_benchmark_has_commands_whose_scripts_exist(listed):
    for name in listed:
        done = _run("--dry-run", name)
        assert done.returncode == 0, (name, done.stderr)
        commands = [line[2:] for line in done.stdout.splitlines() if line.startswith("+ ")]
        assert commands, name
        for script in re.findall(r"benchmarks/[\w./-]+\.(?:py|sh)", " ".join(commands)):
            assert (ROOT / script).is_file(), (name, script)


def test_unknown_benchmark_or_option_is_refused_in_one_line():
    for args, words in ((["nope"], "unknown benchmark 'nope'"), (["--fast"], "unknown option --fast"), ([], "usage")):
        done = _run(*args)
        assert done.returncode == 2 and words in done.stderr and len(done.stderr.splitlines()) == 1, done.stderr


def test_benchmarks_folder_holds_only_the_suite(listed):
    """Every script in benchmarks/ is run by a named benchmark (directly, or by a script it runs),
    or summarises one (named in README.md's table)."""
    dry = _run("--dry-run", *listed).stdout
    readme = (BENCH / "README.md").read_text()
    used = set(re.findall(r"benchmarks/([\w-]+\.(?:py|sh))", dry))
    for script in list(used):
        used |= set(re.findall(r"benchmarks/([\w-]+\.(?:py|sh))", (BENCH / script).read_text()))
    for path in BENCH.glob("*"):
        if path.suffix in (".py", ".sh") and path.name != "run.sh":
            assert path.name in used or f"`{path.name}`" in readme, f"{path.name} belongs to no named benchmark"


def test_readme_and_results_name_only_listed_benchmarks(listed):
    readme = (BENCH / "README.md").read_text()
    in_table = re.findall(r"^\| `([\w-]+)` \|", readme, flags=re.M)
    assert sorted(in_table) == sorted(listed)
    results = (BENCH / "RESULTS.md").read_text()
    named = set()
    for command in re.findall(r"run\.sh ((?:[a-z][\w-]* ?)+)", results):
        named |= set(command.split())
    assert named and named <= set(listed), named - set(listed)


def test_results_has_the_fixed_sections_and_no_issue_numbers():
    text = (BENCH / "RESULTS.md").read_text()
    assert re.findall(r"^## (.+)$", text, flags=re.M) == SECTIONS
    for doc in (text, (BENCH / "README.md").read_text()):
        assert not re.search(r"\bissue \d|\bsession of\b", doc, flags=re.I)
