"""Run folders: one run at a time per --output (a lock the kernel drops with its process), and
nothing written into the folder before the run is known to fit the checkpoint it holds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bertdistill import api
from bertdistill.cli import main
from bertdistill.runlock import LOCK_FILE, RunFolderBusy, lock_run_folder

HOLD = """
import sys, time
from bertdistill.runlock import lock_run_folder
lock = lock_run_folder(sys.argv[1])
print("locked", flush=True)
time.sleep(120)
"""


def _hold(folder: Path) -> subprocess.Popen:
    """Another process that takes ``folder``'s lock and keeps it."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder), "--flag"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes (the lock file aside: it names its last holder)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != LOCK_FILE}


def test_second_run_is_refused_naming_the_first_and_a_killed_holder_frees_the_folder(
        tmp_path, tiny_encoder_dir, toy_task_dir, capsys):
    out = tmp_path / "run"
    holder = _hold(out)
    try:
        with pytest.raises(RunFolderBusy) as err:
            lock_run_folder(out)
        message = str(err.value)
        assert message.startswith(f"{out} is in use by another bertdistill run (pid {holder.pid}, started 20")
        assert "command python" in message and "-c " in message and "--flag)" in message and "\n" not in message
        # the command line: one line, exit code 2, before any data or model is read
        code = main(["finetune", "--task", "tsv", "--model", str(tiny_encoder_dir), "--data", str(toy_task_dir),
                     "--output", str(out), "--max-steps", "1"])
        err_lines = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err_lines) == 1
        assert err_lines[0].startswith(f"bertdistill finetune: error: {out} is in use by another bertdistill run "
                                       f"(pid {holder.pid}")
        assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]  # the refused run wrote nothing
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    lock = lock_run_folder(out)  # the kernel dropped the killed holder's lock
    info = json.loads((out / LOCK_FILE).read_text())
    assert info["pid"] == os.getpid() and info["command"]
    lock.release()
    assert not lock.held


def test_lock_is_shared_within_a_process_and_taken_by_the_main_rank_only(tmp_path, monkeypatch):
    out = tmp_path / "run"
    first = lock_run_folder(out)
    again = lock_run_folder(out)  # the same process again (a repeated run): no refusal
    assert again is first
    again.release()
    assert first.held  # the first claim still holds it
    monkeypatch.setenv("RANK", "1")
    assert lock_run_folder(tmp_path / "other") is None and not (tmp_path / "other").exists()
    monkeypatch.setenv("RANK", "0")
    first.release()
    assert not first.held
    holder = _hold(out)  # released: another process can take it now
    holder.send_signal(signal.SIGKILL)
    holder.wait()


KD = dict(recipe="kd", max_train_examples=64, max_eval_examples=16, test_split=None, latency_runs=0)


def _no_loading(monkeypatch):
    """Fail the test if the distillation loads a model or a tokenizer."""
    def refuse(*args, **kwargs):
        raise AssertionError("loaded a model before refusing")

    monkeypatch.setattr("bertdistill.pipelines.distill.load_tokenizer", refuse)
    monkeypatch.setattr("bertdistill.pipelines.distill.load_task_model", refuse)


def test_refused_resume_leaves_every_file_as_it_was(tiny_teacher, toy_task_dir, tmp_path, monkeypatch):
    out = tmp_path / "d"
    kw = dict(KD, cache_dir=str(tmp_path / "cache"))
    api.distill(str(tiny_teacher), "tsv", str(out), str(toy_task_dir), train={"max_steps": 2, "batch_size": 16}, **kw)
    before = _files(out)
    assert "run_config.json" in before and "results.json" in before
    with monkeypatch.context() as m:
        _no_loading(m)  # a changed setting is refused before the models load
        with pytest.raises(ValueError) as err:
            api.distill(str(tiny_teacher), "tsv", str(out), str(toy_task_dir),
                        train={"max_steps": 2, "batch_size": 8, "lr": 1e-3}, **kw)
    lines = str(err.value).splitlines()
    assert "  batch_size (--batch-size): 16 (checkpoint) vs 8 (now);" in lines
    assert any(line.startswith("  lr (--lr): ") and line.endswith(" vs 0.001 (now);") for line in lines)
    assert _files(out) == before
    # other data (a smaller subset): known only once the data is read, still refused before any write
    with pytest.raises(ValueError, match=r"data \(--data / --max-train-examples / --max-length\): \w+ "
                                         r"\(checkpoint\) vs \w+ \(now\);"):
        api.distill(str(tiny_teacher), "tsv", str(out), str(toy_task_dir), train={"max_steps": 2, "batch_size": 16},
                    **{**kw, "max_train_examples": 48})
    assert _files(out) == before


def test_distilling_into_a_finetuning_folder_is_refused_and_writes_nothing(
        tiny_teacher, tiny_encoder_dir, toy_task_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "ft"
    api.finetune("tsv", str(tiny_encoder_dir), str(out), str(toy_task_dir), train={"max_steps": 2, "batch_size": 16},
                 max_train_examples=64, max_eval_examples=16)
    before = _files(out)
    capsys.readouterr()
    _no_loading(monkeypatch)
    code = main(["distill", "--teacher", str(tiny_teacher), "--task", "tsv", "--data", str(toy_task_dir),
                 "--output", str(out), "--recipe", "kd", "--max-steps", "2", "--batch-size", "16",
                 "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "recipe (--recipe): finetune (checkpoint) vs kd (now); " in err[0]
    assert "teacher: (absent) (checkpoint) vs " in err[0]
    assert _files(out) == before and not (out / "run_config.json").exists()


def test_known_fields_and_the_whole_fingerprint_agree_with_the_engine(tiny_teacher, toy_task_dir, tmp_path):
    """What the pipeline compares before loading and before writing is what the engine stores."""
    from bertdistill.pipelines.distill import DistillConfig, DistillRecipe
    from bertdistill.pipelines.runfolder import distill_fields, known_fingerprint
    from bertdistill.training.engine import TrainLoop
    from bertdistill.training.fingerprint import run_fingerprint

    for extra in ({}, {"dropout_draws": "fast", "mixed_precision": "bf16"}):
        recipe = DistillRecipe(DistillConfig(teacher=str(tiny_teacher), task="tsv", data=str(toy_task_dir),
                                             output=str(tmp_path / f"r{len(extra)}"), recipe="kd",
                                             max_train_examples=32, cache_teacher=False,
                                             train={"max_steps": 1, **extra}))
        recipe.setup()
        loop = TrainLoop(recipe.module, recipe.train_features, recipe.collate, recipe.loss_step,
                         config=recipe.train_config, output_dir=recipe.output, accelerator=recipe.accelerator,
                         fingerprint=recipe.fingerprint())
        full = run_fingerprint(recipe.train_config, recipe.accelerator.num_processes, recipe.train_features,
                               recipe.fingerprint())
        assert full == loop.fingerprint
        known = known_fingerprint(recipe.train_config, **distill_fields(recipe.config, recipe.recipe))
        assert {k: full.get(k) for k in known} == known and len(known) >= 15


def test_staged_run_with_other_settings_is_refused_before_a_stage_recipe_is_rewritten(
        tiny_teacher, toy_task_dir, tmp_path):
    out = tmp_path / "tb"
    kw = dict(recipe="tinybert_task", student_config={"hidden_size": 16, "num_hidden_layers": 2,
                                                      "num_attention_heads": 2, "intermediate_size": 32},
              cache_dir=str(tmp_path / "cache"), latency_runs=0, max_train_examples=64, max_eval_examples=16,
              test_split=None, train={"max_steps": 2, "batch_size": 16})
    api.distill(str(tiny_teacher), "tsv", str(out), str(toy_task_dir), **kw)
    (out / "02_prediction" / "stage.json").unlink()  # as if the run had been stopped during stage 2
    before = _files(out)
    with pytest.raises(ValueError, match=r"terms \(--recipe / --weight / --temperature\): .* \(checkpoint\) vs "):
        api.distill(str(tiny_teacher), "tsv", str(out), str(toy_task_dir), temperature=3.0, **kw)
    assert _files(out) == before
    again = api.distill(str(tiny_teacher), "tsv", str(out), str(toy_task_dir), **kw)  # the same settings resume
    assert [s["stage"] for s in again["stages"]] == ["intermediate", "prediction"]


def test_run_refused_after_taking_the_lock_removes_the_folder_it_created(tmp_path, toy_task_dir, capsys):
    out = tmp_path / "new" / "run"
    code = main(["finetune", "--task", "tsv", "--data", str(toy_task_dir), "--model", str(tmp_path / "no_model"),
                 "--output", str(out), "--max-steps", "1"])
    assert code == 2 and "no_model" in capsys.readouterr().err
    assert not out.exists() and (tmp_path / "new").is_dir()  # only the folder the run created for its lock
    kept = tmp_path / "kept"
    kept.mkdir()
    lock_run_folder(kept).release()
    assert kept.is_dir() and (kept / LOCK_FILE).is_file()  # a folder that existed before is left alone
