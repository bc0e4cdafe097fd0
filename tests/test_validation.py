"""Bad options are refused before any data, model or cache is loaded, naming the CLI flag.

Every case passes a teacher / model path that does not exist (and data that does not
exist): the option error must come first, so nothing heavy was touched.
"""

from __future__ import annotations

import pytest

from bertdistill import api, cli
from bertdistill.pipelines.distill import DistillConfig, DistillRecipe
from bertdistill.pipelines.finetune import FinetuneConfig, FinetuneRecipe
from bertdistill.training.engine import TrainConfig
from bertdistill.training.validate import check_train_config

MISSING = "/nonexistent/teacher"

TRAIN_CASES = [
    ({"lr": -1.0}, r"--lr must be > 0, got -1\.0"),
    ({"lr": 0.0}, r"--lr must be > 0"),
    ({"lr": float("nan")}, r"--lr must be a finite number"),
    ({"epochs": 0}, r"--epochs must be > 0, got 0"),
    ({"batch_size": 0}, r"--batch-size must be at least 1, got 0"),
    ({"grad_accum": 0}, r"--grad-accum must be at least 1, got 0"),
    ({"max_steps": 0}, r"--max-steps must be at least 1, got 0"),
    ({"warmup_ratio": 1.5}, r"--warmup-ratio must be between 0 and 1, got 1\.5"),
    ({"warmup_ratio": -0.1}, r"--warmup-ratio must be between 0 and 1"),
    ({"weight_decay": -0.01}, r"--weight-decay must be >= 0"),
    ({"max_grad_norm": -1.0}, r"--max-grad-norm must be >= 0"),
    ({"eval_every": 0}, r"--eval-every must be at least 1"),
    ({"save_every": -2}, r"--save-every must be at least 1"),
    ({"seed": -1}, r"--seed must be a whole number >= 0"),
    ({"mixed_precision": "fp8"}, r"--mixed-precision must be no, bf16 or fp16"),
]


@pytest.mark.parametrize("options, message", TRAIN_CASES)
def test_train_options_are_refused_with_the_flag(options, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**options)


def test_epochs_are_not_checked_when_max_steps_decides():
    check_train_config(TrainConfig(epochs=0, max_steps=5))


@pytest.mark.parametrize("options, message", TRAIN_CASES[:6])
def test_distill_train_options_fail_before_the_teacher_is_read(tmp_path, options, message):
    config = DistillConfig(teacher=MISSING, task="tsv", data="/nonexistent/data", output=str(tmp_path / "o"),
                           train=options)
    with pytest.raises(ValueError, match=message):
        DistillRecipe(config).setup()


@pytest.mark.parametrize("options, message", [
    ({"max_length": 0}, r"--max-length must be at least 2, got 0"),
    ({"max_train_examples": 0}, r"--max-train-examples must be at least 1"),
    ({"max_eval_examples": -5}, r"--max-eval-examples must be at least 1"),
    ({"temperature": 0.0}, r"--temperature must be > 0, got 0\.0"),
    ({"weights": {"kd_kl": -1.0}}, r"--weight kd_kl= must be >= 0"),
    ({"student_arch": "tiny"}, r"--student-arch must be same, distilbert or bilstm"),
    ({"student_layers": 0}, r"--student-layers must be at least 1"),
    ({"student": "x", "student_config": {"hidden_size": 8}}, r"--student and --student-config exclude"),
    ({"cache_attention": "flash"}, r"--cache-attention must be eager or sdpa, got 'flash'"),
])
def test_distill_options_fail_before_the_teacher_is_read(tmp_path, options, message):
    config = DistillConfig(teacher=MISSING, task="tsv", data="/nonexistent/data", output=str(tmp_path / "o"),
                           **options)
    with pytest.raises(ValueError, match=message):
        DistillRecipe(config).setup()


def test_output_naming_an_existing_file_is_refused_first(tmp_path):
    existing = tmp_path / "results.txt"
    existing.write_text("keep me")
    with pytest.raises(ValueError, match=r"--output .*results\.txt is an existing file"):
        DistillRecipe(DistillConfig(teacher=MISSING, task="tsv", output=str(existing))).setup()
    with pytest.raises(ValueError, match=r"--output .*results\.txt is an existing file"):
        FinetuneRecipe(FinetuneConfig(task="tsv", model=MISSING, output=str(existing))).setup()
    with pytest.raises(ValueError, match=r"is a file, so the folder cannot be created"):
        FinetuneRecipe(FinetuneConfig(task="tsv", model=MISSING, output=str(existing / "run"))).setup()
    assert existing.read_text() == "keep me"


def test_finetune_options_fail_before_data_or_model(tmp_path):
    with pytest.raises(ValueError, match=r"--max-length must be at least 2"):
        FinetuneRecipe(FinetuneConfig(task="tsv", model=MISSING, data="/nonexistent/data",
                                      output=str(tmp_path / "o"), max_length=1)).setup()


@pytest.mark.parametrize("argv, flag, value", [
    (["finetune", "--model", MISSING, "--lr", "-1"], "--lr", "-1"),
    (["finetune", "--model", MISSING, "--epochs", "0"], "--epochs", "0"),
    (["distill", "--teacher", MISSING, "--batch-size", "0"], "--batch-size", "0"),
    (["distill", "--teacher", MISSING, "--warmup-ratio", "2"], "--warmup-ratio", "2"),
    (["distill", "--teacher", MISSING, "--max-steps", "0"], "--max-steps", "0"),
])
def test_cli_reports_the_flag_and_exits_2(tmp_path, capsys, argv, flag, value):
    # The CLI refuses the value while parsing (bertdistill.commands.options); the recipes'
    # own checks (above) catch the same values from the Python API.
    try:  # argparse exits while parsing; later checks return the code
        code = cli.main([*argv, "--task", "tsv", "--data", "/nonexistent/data", "--output", str(tmp_path / "o")])
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2 and flag in err and f"got {value}" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 2, err
    assert not (tmp_path / "o").exists()


def test_api_distill_with_output_file_never_trains(tmp_path):
    existing = tmp_path / "file"
    existing.write_text("")
    with pytest.raises(ValueError, match="--output"):
        api.distill(MISSING, "tsv", str(existing), "/nonexistent/data")


@pytest.mark.parametrize("options, message", TRAIN_CASES[:3])
def test_api_distill_checks_training_numbers_before_reading_the_teacher(tmp_path, options, message):
    """Through the API too: --lr and friends are refused before the teacher's config is looked up
    (a missing teacher would otherwise be the error reported)."""
    with pytest.raises(ValueError, match=message):
        api.distill(MISSING, "tsv", str(tmp_path / "o"), "/nonexistent/data", train=options)


@pytest.mark.parametrize("command", [
    ["mlm-head", "--corpus", "/nonexistent/corpus"],
    ["general-distill", "--teacher", MISSING, "--corpus", "/nonexistent/corpus"],
])
def test_general_commands_refuse_an_output_that_is_a_file(tmp_path, capsys, command):
    existing = tmp_path / "file"
    existing.write_text("keep me")
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*command, "--output", str(existing)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "--output" in err and "existing file" in err and "Traceback" not in err
    assert existing.read_text() == "keep me"


def test_general_recipes_refuse_an_output_that_is_a_file_through_python(tmp_path):
    from bertdistill.pipelines.general_distill import GeneralDistillConfig, GeneralDistillRecipe
    from bertdistill.pipelines.mlm_head import MlmHeadConfig, MlmHeadRecipe

    existing = tmp_path / "file"
    existing.write_text("")
    with pytest.raises(ValueError, match="--output"):
        GeneralDistillRecipe(GeneralDistillConfig(teacher=MISSING, corpus="/nonexistent", output=str(existing))).setup()
    with pytest.raises(ValueError, match="--output"):
        MlmHeadRecipe(MlmHeadConfig(model=MISSING, corpus="/nonexistent", output=str(existing))).setup()
