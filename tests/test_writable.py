"""Output paths are checked for writing before any work: finetune, distill, evaluate, embed, predict.

Tests run as root, where permission bits do not stop writes (chmod 0o500 is no test), so the
faults here are ones root cannot write through either: a path whose parent is a regular file,
and a folder on sysfs (``/sys/kernel``), where even root cannot create files or folders.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bertdistill.cli import main
from bertdistill.writable import check_writable_file, check_writable_folder


@pytest.fixture(scope="module")
def read_only_dir() -> Path:
    """An existing folder in which nobody, root included, can create a file."""
    folder = Path("/sys/kernel")
    if not folder.is_dir():
        pytest.skip("no /sys/kernel here")
    try:
        fd = os.open(folder / "bertdistill-probe", os.O_CREAT | os.O_WRONLY)
    except OSError:
        return folder
    os.close(fd)
    os.unlink(folder / "bertdistill-probe")
    pytest.skip("/sys/kernel is writable here")


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_new_folder_is_checked_and_nothing_is_left_behind(tmp_path):
    check_writable_folder(tmp_path / "a" / "b" / "run")
    check_writable_folder(tmp_path)  # an existing folder: the probe file is removed
    assert _leftovers(tmp_path) == []


def test_an_existing_file_is_opened_for_writing_and_left_as_it_was(tmp_path):
    metrics = tmp_path / "metrics.json"
    metrics.write_text("old")
    check_writable_file(metrics)
    check_writable_file(tmp_path / "new" / "deeper" / "out.json")
    assert metrics.read_text() == "old" and _leftovers(tmp_path) == ["metrics.json"]


def test_a_parent_that_is_a_file_is_named(tmp_path):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("x")
    with pytest.raises(ValueError, match=f"--output {blocker}/run/sub: {blocker} is a file"):
        check_writable_folder(blocker / "run" / "sub")
    with pytest.raises(ValueError, match=f"--out {blocker}/m.json: {blocker} is a file"):
        check_writable_file(blocker / "m.json", flag="--out")
    with pytest.raises(ValueError, match="is a folder; give a file name"):
        check_writable_file(tmp_path)


def test_a_read_only_folder_is_named(read_only_dir):
    with pytest.raises(ValueError, match=f"--output {read_only_dir}/run: cannot create the folder"):
        check_writable_folder(read_only_dir / "run")
    with pytest.raises(ValueError, match=f"--output {read_only_dir}/m.json: cannot write in {read_only_dir}"):
        check_writable_file(read_only_dir / "m.json")
    with pytest.raises(ValueError, match=f"--output {read_only_dir}: cannot write in {read_only_dir}"):
        check_writable_folder(read_only_dir)


@pytest.mark.parametrize("command", [
    ["finetune", "--model", "minilm-l6"],
    ["distill", "--teacher", "minilm-l6", "--allow-untrained-teacher"],
])
def test_training_commands_refuse_a_read_only_output_before_reading_anything(read_only_dir, tmp_path, capsys,
                                                                             command):
    # the data does not exist either: the error names --output, so it came first
    code = main([*command, "--data", str(tmp_path / "missing.csv"), "--output", str(read_only_dir / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"--output {read_only_dir}/run: cannot create the folder" in err


@pytest.mark.parametrize("command", [
    ["evaluate", "--model", "minilm-l6"],
    ["embed", "--model", "minilm-l6"],
])
def test_evaluate_and_embed_refuse_an_unwritable_output_before_reading_anything(tmp_path, capsys, command):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = main([*command, "--data", str(tmp_path / "missing.csv"), "--output", str(blocker / "metrics.json")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"--output {blocker}/metrics.json: {blocker} is a file" in err


def test_predict_refuses_an_unwritable_output_before_loading_the_model(read_only_dir, tmp_path, capsys):
    code = main(["predict", "--model", str(tmp_path / "no-model"), "--text", "hello",
                 "--output", str(read_only_dir / "p.jsonl")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and f"--output {read_only_dir}/p.jsonl: cannot write in" in err, err
