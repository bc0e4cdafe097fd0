"""Resume refuses a checkpoint of a different run, listing what differs; --no-resume starts
afresh (fresh log, old checkpoints not reused)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bertdistill import api
from bertdistill.training.checkpoint import checkpoint_step, latest_checkpoint, read_fingerprint
from bertdistill.training.engine import TrainConfig, TrainLoop


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Linear(2, 1)


def _feats(shift: float = 0.0, first_ids=(1, 2)):
    feats = [{"input_ids": [1, 2, 3][: 1 + i % 3], "x": [i / 8 + shift, 1.0], "labels": i % 2} for i in range(16)]
    feats[0]["input_ids"] = list(first_ids)
    return feats


def _collate(items):
    return {"x": torch.tensor([f["x"] for f in items]), "y": torch.tensor([float(f["labels"]) for f in items])}


def _loss(module, batch):
    return (module.w(batch["x"]).squeeze(-1) - batch["y"]).pow(2).mean(), {}


def _loop(out: Path, feats=None, fingerprint=None, **cfg) -> TrainLoop:
    torch.manual_seed(0)
    config = TrainConfig(**{"max_steps": 4, "batch_size": 4, "seed": 1, "lr": 0.1, "save_every": 2, "log_every": 1,
                             **cfg})
    return TrainLoop(Net(), feats or _feats(), _collate, _loss, config=config, output_dir=out,
                     fingerprint=fingerprint)


@pytest.mark.parametrize("change, expected", [
    ({"batch_size": 8}, r"batch_size \(--batch-size\): 4 \(checkpoint\) vs 8 \(now\);"),
    ({"seed": 2}, r"seed \(--seed\): 1 \(checkpoint\) vs 2 \(now\);"),
    ({"grad_accum": 2}, r"grad_accum \(--grad-accum\): 1 \(checkpoint\) vs 2 \(now\);"),
    ({"max_steps": 9}, r"max_steps \(--max-steps\): 4 \(checkpoint\) vs 9 \(now\);"),
    ({"group_by_length": False}, r"group_by_length \(--no-length-grouping\): true \(checkpoint\) vs false \(now\);"),
])
def test_changed_option_is_refused_with_the_difference(tmp_path, change, expected):
    _loop(tmp_path).train()
    with pytest.raises(ValueError, match=expected) as err:
        _loop(tmp_path, **change).train()
    assert "--no-resume" in str(err.value) and "--output" in str(err.value)


def test_dropout_draws_are_part_of_the_run_and_the_allocator_is_not(tmp_path):
    """fast draws are another random stream: resuming their checkpoint with torch's is refused; the
    allocator only changes speed, so a checkpoint resumes under either setting."""
    _loop(tmp_path, dropout_draws="fast").train()
    assert read_fingerprint(latest_checkpoint(tmp_path / "checkpoints"))["dropout_draws"] == "fast"
    with pytest.raises(ValueError, match=r"dropout_draws \(--dropout-draws\): fast \(checkpoint\) vs \(absent\) \(now\);"):
        _loop(tmp_path).train()
    _loop(tmp_path / "plain").train()
    assert "dropout_draws" not in read_fingerprint(latest_checkpoint(tmp_path / "plain" / "checkpoints"))
    again = _loop(tmp_path / "plain", cpu_allocator="system")
    again.train()
    assert again.state.step == 4


def test_changed_data_and_recipe_fields_are_listed_together(tmp_path):
    _loop(tmp_path, fingerprint={"recipe": "kd", "max_length": 64}).train()
    stored = read_fingerprint(latest_checkpoint(tmp_path / "checkpoints"))
    assert stored["batch_size"] == 4 and stored["world_size"] == 1 and len(stored["data"]) == 16
    with pytest.raises(ValueError) as err:
        _loop(tmp_path, feats=_feats(first_ids=(1, 3)), fingerprint={"recipe": "pkd_skip", "max_length": 64},
              lr=0.2).train()
    message = str(err.value)
    assert "data (" in message and "recipe (--recipe): kd (checkpoint) vs pkd_skip (now);" in message
    assert "lr (--lr): 0.1 (checkpoint) vs 0.2 (now);" in message
    assert "max_length" not in message  # unchanged fields are not listed


def test_unchanged_run_resumes_and_schedule_options_may_change(tmp_path):
    _loop(tmp_path, max_steps=2).train()
    again = _loop(tmp_path, max_steps=2, eval_every=5, save_every=1, log_every=3)  # not part of the fingerprint
    again.train()
    assert again.state.step == 2


def test_no_resume_starts_a_fresh_log_and_does_not_reuse_checkpoints(tmp_path, capsys):
    _loop(tmp_path).train()
    old_rows = (tmp_path / "log.jsonl").read_text()
    fresh = _loop(tmp_path, batch_size=8, resume=False)  # a changed run is fine with --no-resume
    fresh.train()
    out = capsys.readouterr().out
    assert "--no-resume: not resuming from" in out and "fresh" in out
    assert (tmp_path / "log.previous.jsonl").read_text() == old_rows
    rows = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3, 4]  # one fresh run, from step 1
    ckpts = [p for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith("ckpt-")]
    assert len(ckpts) == 1 and read_fingerprint(ckpts[0])["batch_size"] == 8


def test_no_resume_killed_before_its_first_checkpoint_does_not_resume_the_old_run(tmp_path):
    _loop(tmp_path).train()
    loop = _loop(tmp_path, resume=False)
    loop._maybe_resume()  # what train() does first; the run then dies before saving
    assert latest_checkpoint(tmp_path / "checkpoints") is None
    again = _loop(tmp_path)
    again.train()
    assert checkpoint_step(latest_checkpoint(tmp_path / "checkpoints")) == 4
    assert min(json.loads(l)["step"] for l in (tmp_path / "log.jsonl").read_text().splitlines()) == 1


def test_finetune_recipe_refuses_a_changed_batch_size_on_resume(tiny_encoder_dir, toy_task_dir, tmp_path):
    out = tmp_path / "ft"
    train = dict(max_steps=2, lr=1e-3, batch_size=8, seed=1)
    api.finetune("tsv", str(tiny_encoder_dir), str(out), str(toy_task_dir), train=TrainConfig(**train),
                 max_train_examples=64, max_eval_examples=16)
    stored = read_fingerprint(latest_checkpoint(out / "checkpoints"))
    assert stored["recipe"] == "finetune" and stored["model"] == str(tiny_encoder_dir)
    with pytest.raises(ValueError, match=r"batch_size \(--batch-size\): 8 \(checkpoint\) vs 16 \(now\);"):
        api.finetune("tsv", str(tiny_encoder_dir), str(out), str(toy_task_dir),
                     train=TrainConfig(**{**train, "batch_size": 16}), max_train_examples=64, max_eval_examples=16)
    with pytest.raises(ValueError, match=r"data \(--data"):  # another subset of the data
        api.finetune("tsv", str(tiny_encoder_dir), str(out), str(toy_task_dir), train=TrainConfig(**train),
                     max_train_examples=48, max_eval_examples=16)


def test_distill_recipe_refuses_a_changed_temperature_on_resume(tiny_teacher, toy_task_dir, tmp_path):
    out = tmp_path / "d"
    kw = dict(recipe="kd", cache_dir=str(tmp_path / "cache"), max_train_examples=64, max_eval_examples=16,
              test_split=None, train={"max_steps": 2, "batch_size": 16})
    api.distill(str(tiny_teacher), "tsv", str(out), str(toy_task_dir), **kw)
    stored = read_fingerprint(latest_checkpoint(out / "checkpoints"))
    assert stored["recipe"] == "kd" and stored["student"]["kept"] == [0]
    with pytest.raises(ValueError, match=r"terms \(--recipe / --weight / --temperature\)"):
        api.distill(str(tiny_teacher), "tsv", str(out), str(toy_task_dir), temperature=4.0, **kw)


def test_checkpoint_of_another_process_count_is_refused(tmp_path):
    """A run written by 2 processes (its run.json says so) is not resumed by 1: the batches
    each process takes would differ."""
    _loop(tmp_path).train()
    run_json = latest_checkpoint(tmp_path / "checkpoints") / "run.json"
    stored = json.loads(run_json.read_text())
    run_json.write_text(json.dumps({**stored, "world_size": 2}))
    with pytest.raises(ValueError, match=r"world_size \(torchrun --nproc_per_node\): 2 \(checkpoint\) vs 1 \(now\);"):
        _loop(tmp_path).train()


def test_teacher_retrained_in_place_is_refused_on_resume(tiny_teacher, toy_task_dir, tmp_path):
    """Same teacher path, other weights: the checkpoint is of another run."""
    import shutil

    from safetensors.torch import load_file, save_file

    teacher = tmp_path / "teacher"
    shutil.copytree(tiny_teacher, teacher)
    out = tmp_path / "d"
    kw = dict(recipe="kd", cache_dir=str(tmp_path / "cache"), max_train_examples=64, max_eval_examples=16,
              test_split=None, train={"max_steps": 2, "batch_size": 16})
    api.distill(str(teacher), "tsv", str(out), str(toy_task_dir), **kw)
    weights = load_file(str(teacher / "model.safetensors"))
    name = next(k for k in weights if k.endswith("classifier.bias"))
    weights[name] = weights[name] + 0.5
    save_file(weights, str(teacher / "model.safetensors"))
    with pytest.raises(ValueError, match=r"teacher_weights \(--teacher: its weights changed\)"):
        api.distill(str(teacher), "tsv", str(out), str(toy_task_dir), **kw)
