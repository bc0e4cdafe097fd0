"""The distill plan (printed and written before training) and the untrained-teacher check."""

from __future__ import annotations

import json
import shutil
from importlib.resources import files
from pathlib import Path

import pytest

from bertdistill.distill.recipe import load_recipe
from bertdistill.pipelines.distill import DistillConfig, DistillRecipe
from bertdistill.pipelines.plan import PLAN_FILE, check_teacher
from bertdistill.pipelines.small_data import MAX_EPOCHS


@pytest.fixture(scope="module")
def labelled_model(tmp_path_factory):
    """A tiny sequence classifier saved with bertdistill's labels.json (as `finetune` leaves it)."""
    from tiny import save_tiny_bert

    folder = Path(save_tiny_bert(tmp_path_factory.mktemp("plan") / "model", kind="sequence", seed=0))
    (folder / "labels.json").write_text(json.dumps(
        {"task": "tsv", "kind": "classification", "labels": ["0", "1"], "metrics": ["accuracy"], "pair": False}))
    return folder


def test_plan_is_printed_and_written_with_a_copy_of_a_custom_recipe(labelled_model, toy_task_dir, tmp_path, capsys):
    recipe = tmp_path / "my_recipe.yaml"
    text = files("bertdistill").joinpath("recipes/kd_hidden_mse.yaml").read_text()
    recipe.write_text(text)
    out = tmp_path / "run"
    runner = DistillRecipe(DistillConfig(
        teacher=str(labelled_model), task="tsv", output=str(out), data=str(toy_task_dir), recipe=str(recipe),
        temperature=3.0, weights={"hidden_mse": 0.25}, max_train_examples=40, cache_dir=str(tmp_path / "cache"),
        train={"lr": 1e-3, "batch_size": 8, "dropout_draws": "fast"}))
    runner.setup()  # no training: the plan exists before the first step
    plan = json.loads((out / PLAN_FILE).read_text())
    assert (out / "recipe.yaml").read_text() == text and plan["recipe"]["copy"] == str(out / "recipe.yaml")
    terms = {t["name"]: t for t in plan["recipe"]["terms"]}
    assert terms["kd_kl"]["temperature"] == 3.0 and terms["hidden_mse"]["weight"] == 0.25
    assert "temperature" not in terms["hidden_mse"]
    assert plan["training"]["lr"] == 1e-3 and plan["training"]["batch_size"] == 8  # flags over the recipe
    # 40 rows at batch 8 make 5 steps an epoch: with no --epochs the small-data rule raises the recipe's 3 epochs
    assert load_recipe(str(recipe)).training["epochs"] == 3 and plan["training"]["epochs"] == MAX_EPOCHS
    assert plan["training"]["dropout_draws"] == "fast" and plan["training"]["cpu_allocator"] == "keep"
    assert plan["data"]["train"] == 40 and plan["data"]["dev"] == 100 and plan["data"]["test"] == 100
    kept = plan["student"]["kept_teacher_layers"]
    assert kept and all(0 <= k < plan["teacher"]["layers"] for k in kept) and plan["student"]["layers"] == len(kept)
    assert plan["student"]["parameters"] < plan["teacher"]["parameters"]
    printed = capsys.readouterr().out
    assert "distill plan" in printed and "weight 0.25" in printed and "T=3" in printed and "lr 0.001" in printed
    assert "train 40, dev 100, test 100" in printed and "small data: 40 train rows" in printed
    assert "dropout draws fast, allocator keep" in printed


def test_untrained_teacher_check(tiny_encoder_dir, tmp_path):
    from tiny import save_tiny_bert

    with pytest.raises(ValueError, match="was never fine-tuned.*bertdistill finetune --model"):
        check_teacher(str(tiny_encoder_dir))
    check_teacher(str(tiny_encoder_dir), allow_untrained=True)
    # a classifier fine-tuned elsewhere (a head in its config, no labels.json) is accepted
    check_teacher(str(save_tiny_bert(tmp_path / "hub_style", kind="sequence", seed=1)))
    with pytest.raises(FileNotFoundError, match="unknown model"):
        check_teacher(str(tmp_path / "nowhere"))
    shutil.rmtree(tmp_path / "hub_style")
