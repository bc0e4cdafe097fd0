"""`export` writes into a partial folder beside the destination and renames it into place; what
killed exports left there is removed by the next export to the same destination, under a lock
that refuses a second export to it meanwhile."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from bertdistill.export import export_model, is_exported
from bertdistill.export.package import lock_path
from bertdistill.partials import host
from bertdistill.runlock import RunFolderBusy

KILLED_EXPORT = """
import sys, time
from pathlib import Path
from bertdistill.partials import partial_path
tmp = partial_path(Path(sys.argv[1]))
tmp.mkdir()
(tmp / "raw.onnx").write_bytes(b"\\0" * 1_000_000)
print("writing", flush=True)
time.sleep(120)
"""

HOLD = """
import sys, time
from bertdistill.runlock import lock_file
lock = lock_file(sys.argv[1], "an export")
print("locked", flush=True)
time.sleep(120)
"""


def _killed_midway(script: str, *args) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return proc, line


def _beside(out) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def test_rerun_removes_what_killed_exports_left(tiny_teacher, tmp_path, capsys):
    out = tmp_path / "fp32"
    proc, line = _killed_midway(KILLED_EXPORT, out)  # SIGKILLed while writing its partial folder
    assert line == "writing"
    assert _beside(out) == [f".fp32.partial-{host()}-{proc.pid}"]
    legacy = tmp_path / ".fp32.tmp-k3j2h1"  # what older versions named their temporary folder
    legacy.mkdir()
    (legacy / "model.onnx").write_bytes(b"\0" * 1000)
    export_model(str(tiny_teacher), "onnx", out, evaluate=False)
    assert is_exported(out)
    assert _beside(out) == []  # nothing beside the export (its lock file went with the lock)
    assert "removed 2 temporary folder(s) left by earlier exports" in capsys.readouterr().out


def test_failed_export_leaves_no_temporary_and_keeps_the_previous_export(tiny_teacher, tmp_path, monkeypatch):
    out = tmp_path / "fp32"
    aside = tmp_path / ".fp32.old-abc123" / "dir"  # an export moved aside by a replace killed half-way
    aside.mkdir(parents=True)
    (aside / "export.json").write_text('{"format": "onnx"}\n')
    (aside / "model.onnx").write_bytes(b"previous")

    def failing(model, family, path, **kw):
        path.write_bytes(b"\0" * 1000)
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr("bertdistill.export.package.export_onnx", failing)
    with pytest.raises(RuntimeError, match="exporter crashed"):
        export_model(str(tiny_teacher), "onnx", out, evaluate=False)
    assert (out / "model.onnx").read_bytes() == b"previous"  # put back before the export started
    assert _beside(out) == []


def test_second_export_to_one_destination_is_refused(tiny_teacher, tmp_path):
    out = tmp_path / "fp32"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(lock_path(out))], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunFolderBusy, match=rf"^--output {out} is in use by another bertdistill run \(pid "
                                                rf"{holder.pid}, started "):
            export_model(str(tiny_teacher), "onnx", out, evaluate=False)
        assert not out.exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
