"""General distillation on tiny masked-LM models: the student learns, is saved as a plain
DistilBERT, resumes exactly, and bad input is refused before training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import (AutoModelForMaskedLM, AutoModelForSequenceClassification, BertConfig,
                          DistilBertForMaskedLM)

from bertdistill.cli import main
from bertdistill.models.mlm import NoMLMHeadError, load_mlm_teacher
from bertdistill.pipelines.general_distill import GeneralDistillConfig, GeneralDistillRecipe
from general_fixtures import prepare, save_tiny_mlm, write_text
from tiny import VOCAB

NARROW = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32}


@pytest.fixture(scope="module")
def mlm(tmp_path_factory):
    root = tmp_path_factory.mktemp("general")
    teacher = save_tiny_mlm(root / "teacher", seed=0)
    corpus = prepare(write_text(root / "train.txt", 120, 1), str(teacher), root / "corpus")
    held_out = prepare(write_text(root / "test.txt", 30, 2), str(teacher), root / "held_out")
    return {"root": root, "teacher": teacher, "corpus": corpus, "held_out": held_out}


def _recipe(mlm, out, **kw):
    train = {"lr": 1e-3, "batch_size": 8, "log_every": 1, "seed": 3, **kw.pop("train", {})}
    return GeneralDistillRecipe(GeneralDistillConfig(teacher=str(mlm["teacher"]), corpus=str(mlm["corpus"]),
                                                     output=str(out), train=train, **kw))


def test_student_from_teacher_layers_copies_layers_and_mlm_head(mlm, tmp_path):
    recipe = _recipe(mlm, tmp_path / "init", init_only=True)
    result = recipe.run()
    assert result["student"]["kept"] == [1]  # 'skip': every other layer, keeping the last
    student = AutoModelForMaskedLM.from_pretrained(result["student_dir"])
    teacher = load_mlm_teacher(str(mlm["teacher"]))
    assert isinstance(student, DistilBertForMaskedLM) and student.config.n_layers == 1
    t_head, t_layer = teacher.cls.predictions, teacher.bert.encoder.layer[1]
    assert torch.equal(student.vocab_transform.weight, t_head.transform.dense.weight)
    assert torch.equal(student.vocab_projector.bias, t_head.bias)
    assert torch.equal(student.distilbert.transformer.layer[0].ffn.lin1.weight, t_layer.intermediate.dense.weight)
    assert student.vocab_projector.weight is student.distilbert.embeddings.word_embeddings.weight
    assert not hasattr(student.distilbert.embeddings, "token_type_embeddings")


def test_random_student_learns_the_teacher_and_loads_with_plain_transformers(mlm, tmp_path):
    out = tmp_path / "run"
    result = _recipe(mlm, out, student_config={"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                                               "intermediate_size": 64},
                     eval_corpus=str(mlm["held_out"]), train={"epochs": 3, "lr": 3e-3}).run()
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    kd = [row["parts"]["mlm_kd"] for row in log if "parts" in row]
    assert kd[-1] < 0.6 * kd[0], kd  # the student's masked-LM distribution moves to the teacher's
    held = result["held_out"]
    assert held["student"]["masked_tokens"] == held["teacher"]["masked_tokens"] > 0
    assert result["tokens_per_s"] > 0 and result["peak_memory_mb"] > 0
    folder = result["student_dir"]
    mlm_model = AutoModelForMaskedLM.from_pretrained(folder)
    classifier = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=2)
    ids = torch.tensor([[2, 10, 11, 12, 3]])
    with torch.no_grad():
        assert mlm_model(input_ids=ids).logits.shape == (1, 5, len(VOCAB))
        assert classifier(input_ids=ids).logits.shape == (1, 2)
    assert torch.equal(classifier.distilbert.transformer.layer[0].ffn.lin1.weight,
                       mlm_model.distilbert.transformer.layer[0].ffn.lin1.weight)


def test_general_student_is_a_distill_student(mlm, tiny_teacher, toy_task_dir, tmp_path):
    """The saved student works as `bertdistill distill --student DIR` (the second step)."""
    student = _recipe(mlm, tmp_path / "general", train={"max_steps": 3}).run()["student_dir"]
    out = tmp_path / "task"
    rc = main(["distill", "--teacher", str(tiny_teacher), "--task", "tsv", "--data", str(toy_task_dir),
               "--student", student, "--output", str(out), "--epochs", "1", "--batch-size", "16",
               "--max-train-examples", "64", "--cache-dir", str(tmp_path / "cache")])
    assert rc == 0
    assert json.loads((out / "results.json").read_text())["dev"]["student"]["accuracy"] >= 0.0


def test_tinybert_recipe_with_a_narrow_student_in_bf16(mlm, tmp_path):
    recipe = _recipe(mlm, tmp_path / "tiny", recipe="general_tinybert", student_config=NARROW,
                     train={"max_steps": 4, "mixed_precision": "bf16"})
    result = recipe.run()
    assert result["train"]["mixed_precision"] == "bf16"
    # as the paper: one W_e for the embeddings, ONE W_h shared by every hidden layer pair
    assert set(recipe.distiller.connectors) == {"embedding_mse", "hidden_mse"}
    assert type(recipe.student) is type(recipe.teacher)  # a BERT student, as TinyBERT's
    losses = [row["loss"] for row in recipe.loop.history if "loss" in row]
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(losses)))


def test_resume_after_interruption_is_exact(mlm, tmp_path):
    teacher = save_tiny_mlm(tmp_path / "dropout_teacher", seed=1, dropout=0.1)  # dropout: the RNG must resume too
    config = dict(train={"max_steps": 6, "save_every": 2})
    straight = _recipe({**mlm, "teacher": teacher}, tmp_path / "straight", **config)
    straight.run()

    broken = _recipe({**mlm, "teacher": teacher}, tmp_path / "resumed", **config)
    calls = {"n": 0}
    step = broken.loss_step

    def failing(module, batch):
        calls["n"] += 1
        if calls["n"] == 5:  # during optimizer step 5, after the checkpoint of step 4
            raise KeyboardInterrupt
        return step(module, batch)

    broken.loss_step = failing
    with pytest.raises(KeyboardInterrupt):
        broken.run()
    from bertdistill.training.checkpoint import latest_checkpoint

    assert latest_checkpoint(tmp_path / "resumed" / "checkpoints") is not None  # the step-4 checkpoint
    _recipe({**mlm, "teacher": teacher}, tmp_path / "resumed", **config).run()
    a = load_file(str(tmp_path / "straight" / "student" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "student" / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# --------------------------------------------------------------------------- bad input


def test_teacher_without_mlm_head_is_refused_naming_the_command(mlm, tmp_path, capsys):
    encoder = save_tiny_mlm(tmp_path / "encoder", kind="base")
    with pytest.raises(NoMLMHeadError, match="bertdistill mlm-head --model .*encoder"):
        _recipe({**mlm, "teacher": encoder}, tmp_path / "out").setup()
    assert main(["general-distill", "--teacher", str(encoder), "--corpus", str(mlm["corpus"]),
                 "--output", str(tmp_path / "out")]) == 2
    assert "has no masked-LM head" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    # a config that claims a masked-LM but whose weights lack the head
    config = json.loads((encoder / "config.json").read_text())
    (encoder / "config.json").write_text(json.dumps({**config, "architectures": ["BertForMaskedLM"]}))
    with pytest.raises(NoMLMHeadError, match="its weights lack cls.predictions"):
        load_mlm_teacher(str(encoder))


def _reordered_tokenizer(mlm, folder: Path) -> Path:
    """A model folder whose tokenizer has the teacher's tokens and size but other ids."""
    from tiny import make_tiny_tokenizer

    tok = make_tiny_tokenizer(folder)
    words = (folder / "vocab.txt").read_text().splitlines()
    (folder / "vocab.txt").write_text("\n".join(words[:5] + words[5:][::-1]) + "\n")
    type(tok)(str(folder / "vocab.txt"), do_lower_case=True).save_pretrained(folder)
    (folder / "config.json").write_text((mlm["teacher"] / "config.json").read_text())
    return folder


def test_shards_from_another_tokenizer_are_refused(mlm, tmp_path):
    other_dir = _reordered_tokenizer(mlm, tmp_path / "other_tok")
    shards = prepare(write_text(tmp_path / "t.txt", 20, 5), str(other_dir), tmp_path / "other_corpus")
    with pytest.raises(ValueError, match=r"--corpus .*other_corpus.*vocabulary differs"):
        _recipe({**mlm, "corpus": shards}, tmp_path / "out").setup()


def _forbid_teacher_weights(monkeypatch) -> None:
    """Make loading the teacher's weights fail the test: a refusal must come before it."""
    def no_weights(*args, **kwargs):
        raise AssertionError("the teacher's weights were loaded before the refusal")

    monkeypatch.setattr("bertdistill.pipelines.general_distill.load_mlm_teacher", no_weights)


def test_tokenizer_of_the_same_size_with_another_vocabulary_is_refused(mlm, tmp_path, monkeypatch, capsys):
    other = _reordered_tokenizer(mlm, tmp_path / "other_tok")
    shards = prepare(write_text(tmp_path / "t.txt", 20, 5), str(other), tmp_path / "other_corpus")

    _forbid_teacher_weights(monkeypatch)
    # the shards match --tokenizer, and --tokenizer has the teacher's size: only the vocabularies differ
    with pytest.raises(ValueError, match=rf"--tokenizer {other} has another vocabulary than the one saved "
                                         rf"with --teacher {mlm['teacher']} \({len(VOCAB)} and {len(VOCAB)} tokens"):
        _recipe({**mlm, "corpus": shards}, tmp_path / "out", tokenizer=str(other)).setup()
    assert main(["general-distill", "--teacher", str(mlm["teacher"]), "--corpus", str(shards), "--tokenizer",
                 str(other), "--output", str(tmp_path / "out")]) == 2
    assert "Leave --tokenizer out" in capsys.readouterr().err
    # the teacher's own tokenizer saved elsewhere is the same vocabulary: accepted
    same = tmp_path / "same_tok"
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(mlm["teacher"]).save_pretrained(same)
    (same / "config.json").write_text((mlm["teacher"] / "config.json").read_text())  # a model folder
    monkeypatch.undo()
    recipe = _recipe(mlm, tmp_path / "ok", tokenizer=str(same), init_only=True)
    recipe.setup()
    assert recipe.tokenizer.name_or_path == str(same)


def test_tokenizer_larger_than_the_teacher_vocabulary_is_refused(mlm, tmp_path):
    from transformers import BertTokenizer

    big = tmp_path / "big_tok"
    big.mkdir()
    (big / "vocab.txt").write_text("\n".join(VOCAB + ["zebra", "yak"]) + "\n")
    BertTokenizer(str(big / "vocab.txt"), do_lower_case=True).save_pretrained(big)
    (big / "config.json").write_text((mlm["teacher"] / "config.json").read_text())  # a model folder
    assert BertConfig.from_pretrained(mlm["teacher"]).vocab_size == len(VOCAB)
    with pytest.raises(ValueError, match=rf"--tokenizer {big}.*{len(VOCAB) + 2} tokens.*vocab_size {len(VOCAB)}"):
        _recipe(mlm, tmp_path / "out", tokenizer=str(big)).setup()


def test_masked_logits_equal_the_full_forward_at_the_picked_positions(tmp_path):
    from bertdistill.pipelines.mlm_batches import masked_logits
    from bertdistill.students import build_student
    from tiny import make_tiny_bert, make_tiny_tokenizer

    teacher = make_tiny_bert(make_tiny_tokenizer(tmp_path), task_kind="mlm").eval()
    student = build_student(teacher, layers=[1], arch="distilbert")[0].eval()
    ids = torch.randint(5, 100, (2, 7), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    picked = torch.zeros_like(ids, dtype=torch.bool)
    picked[0, 2] = picked[1, 4] = True
    batch = {"input_ids": ids, "attention_mask": mask}
    with torch.no_grad():
        for model in (teacher, student):
            full = model(**batch).logits[picked]
            assert torch.allclose(masked_logits(model, batch, picked), full, atol=1e-5)


def test_mlm_head_fits_a_head_on_a_frozen_encoder(mlm, tmp_path):
    from transformers import BertForMaskedLM

    from bertdistill import api

    encoder = save_tiny_mlm(tmp_path / "encoder", kind="base")
    out = tmp_path / "head"
    result = api.mlm_head(str(encoder), str(mlm["corpus"]), str(out), eval_corpus=str(mlm["held_out"]),
                          train={"epochs": 2, "lr": 1e-2, "batch_size": 16})
    before = json.loads((out / "log.jsonl").read_text().splitlines()[0])["loss"]
    assert result["held_out"]["mlm_loss"] < before - 0.05  # lower than the new head's first batches
    teacher = load_mlm_teacher(result["model_dir"])  # now accepted as a masked-LM teacher
    assert isinstance(teacher, BertForMaskedLM) and isinstance(AutoModelForMaskedLM.from_pretrained(out / "model"),
                                                               BertForMaskedLM)
    original = load_file(str(encoder / "model.safetensors"))
    fitted = teacher.state_dict()
    for key, value in original.items():  # the encoder is frozen: every weight is unchanged
        if "pooler" in key:  # a masked-LM has no pooler
            continue
        assert torch.equal(fitted[key if key.startswith("bert.") else "bert." + key], value), key
    assert result["trainable_parameters"] == 32 * 32 + 32 + 2 * 32 + len(VOCAB)  # transform, LayerNorm, bias


# --------------------------------------------------------------------------- other teacher families


@pytest.mark.parametrize("family", ["roberta", "distilbert"])
def test_masked_lm_teachers_of_other_families(family, tmp_path):
    from general_fixtures import save_tiny_distilbert_mlm, save_tiny_roberta_mlm
    from transformers import RobertaForMaskedLM

    save = save_tiny_roberta_mlm if family == "roberta" else save_tiny_distilbert_mlm
    teacher = save(tmp_path / "teacher")
    corpus = prepare(write_text(tmp_path / "train.txt", 60, 1), str(teacher), tmp_path / "corpus")
    held_out = prepare(write_text(tmp_path / "test.txt", 10, 2), str(teacher), tmp_path / "held_out")
    data = {"teacher": teacher, "corpus": corpus}
    # RoBERTa: whole-word masking by the 'Ġ' word-start marker of its byte-level BPE vocabulary
    options = {"student_arch": "same", "whole_word": True} if family == "roberta" else {}
    recipe = _recipe(data, tmp_path / "run", eval_corpus=str(held_out), train={"max_steps": 3}, **options)
    result = recipe.run()
    assert result["student"]["kept"] == [1]
    losses = [row["loss"] for row in recipe.loop.history if "loss" in row]
    assert len(losses) == 3 and all(torch.isfinite(torch.tensor(losses)))
    assert result["held_out"]["student"]["masked_tokens"] > 0
    student = AutoModelForMaskedLM.from_pretrained(result["student_dir"])
    expected = RobertaForMaskedLM if family == "roberta" else DistilBertForMaskedLM
    assert isinstance(student, expected) and student.config.num_hidden_layers == 1


def test_roberta_teacher_with_the_default_distilbert_student_is_refused_before_loading(tmp_path, monkeypatch, capsys):
    from general_fixtures import save_tiny_roberta_mlm

    teacher = save_tiny_roberta_mlm(tmp_path / "teacher")
    corpus = prepare(write_text(tmp_path / "train.txt", 20, 1), str(teacher), tmp_path / "corpus")

    _forbid_teacher_weights(monkeypatch)
    with pytest.raises(ValueError, match=r"RobertaForMaskedLM: a DistilBertForMaskedLM student \(the "
                                         r"general_distilbert recipe's default student\) is mapped from BERT"):
        _recipe({"teacher": teacher, "corpus": corpus}, tmp_path / "out").setup()
    assert main(["general-distill", "--teacher", str(teacher), "--corpus", str(corpus),
                 "--output", str(tmp_path / "out"), "--student-arch", "distilbert"]) == 2
    err = capsys.readouterr().err
    assert "pass --student-arch same" in err.lower() and "position ids" in err and "Traceback" not in err


# --------------------------------------------------------------------------- mlm-head options, hub ids


def test_mlm_head_unfreezes_only_the_top_layers(mlm, tmp_path):
    from bertdistill import TrainConfig, mlm_head

    encoder = save_tiny_mlm(tmp_path / "encoder", kind="base")
    train = TrainConfig(max_steps=3, lr=1e-2, batch_size=16, epochs=1.0, warmup_ratio=0.0)  # a TrainConfig works too
    result = mlm_head(str(encoder), str(mlm["corpus"]), str(tmp_path / "head"), unfreeze_top_layers=1, train=train)
    layer = 32 * 32 * 4 + 4 * 32 + 2 * 32 * 64 + 64 + 32 + 4 * 32  # attention, FFN and two LayerNorms
    assert result["trainable_parameters"] == 32 * 32 + 32 + 2 * 32 + len(VOCAB) + layer
    original = load_file(str(encoder / "model.safetensors"))
    fitted = load_mlm_teacher(result["model_dir"]).state_dict()
    changed = {key for key, value in original.items() if "pooler" not in key
               and not torch.equal(fitted[key if key.startswith("bert.") else "bert." + key], value)}
    top = {key for key in original if ".layer.1." in key}
    assert changed == top  # every weight of the top layer moved; the lower layer and embeddings did not


def test_hub_ids_get_one_clear_message_and_the_revision(mlm, tmp_path, monkeypatch, capsys):
    import transformers

    from bertdistill.models.loading import hub_options
    from bertdistill.pipelines.stages import model_config

    seen = []

    def offline(name, *args, **kwargs):
        seen.append((name, kwargs.get("revision")))
        raise OSError(f"We couldn't connect to 'https://huggingface.co' to load the files of {name}")

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", offline)
    runs = [["general-distill", "--teacher", "someone/mlm", "--corpus", str(mlm["corpus"])],  # checks the MLM head
            ["general-distill", "--teacher", "someone/mlm", "--corpus", str(mlm["corpus"]), "--recipe",
             "general_tinybert"],  # no logit term: the config is read directly
            ["mlm-head", "--model", "someone/encoder", "--corpus", str(mlm["corpus"])]]
    for argv in runs:
        assert main([*argv, "--output", str(tmp_path / "out"), "--revision", "v2"]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and "could not be loaded from the Hugging Face hub" in err, err
    assert seen == [("someone/mlm", "v2"), ("someone/mlm", "v2"), ("someone/encoder", "v2")]
    with hub_options(revision="v3"), pytest.raises(FileNotFoundError, match="'someone/student' is not a local"):
        model_config("someone/student")  # a staged run's --student
    assert seen[-1] == ("someone/student", "v3")


@pytest.mark.parametrize("feature", ["attention", "attention_scores"])
def test_attention_terms_read_the_student_before_dropout(mlm, tmp_path, feature):
    """A student that is the teacher itself (all its layers, same class), in training mode with
    attention dropout 0.5, has zero attention loss on its first layer: the maps are read before
    dropout (the pipeline used HF's returned attentions, after dropout: 0.023 here before the fix)."""
    import yaml

    from general_fixtures import make_tiny_bert, make_tiny_tokenizer

    folder = tmp_path / "teacher"
    tokenizer = make_tiny_tokenizer(folder)
    teacher = make_tiny_bert(tokenizer, task_kind="mlm", seed=0, hidden_dropout_prob=0.0,
                             attention_probs_dropout_prob=0.5, initializer_range=0.5)
    teacher.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    recipe_file = tmp_path / "attention_only.yaml"
    recipe_file.write_text(yaml.safe_dump({
        "name": "attention_only", "student": {"arch": "same"},
        "terms": [{"loss": "attention_mse", "weight": 1.0, "student": feature, "teacher": feature,
                   "layers": [[0, 0]]}]}))  # the first layer: later ones see the dropped-out output
    layers = teacher.config.num_hidden_layers
    recipe = GeneralDistillRecipe(GeneralDistillConfig(
        teacher=str(folder), corpus=str(mlm["corpus"]), output=str(tmp_path / "run"), recipe=str(recipe_file),
        student_arch="same", student_layers=layers, train={"batch_size": 8, "seed": 3}))
    recipe.setup()
    assert recipe.student.config.attention_probs_dropout_prob == 0.5
    from types import SimpleNamespace

    recipe.loop = SimpleNamespace(state=SimpleNamespace(epoch=0))  # the masks' epoch (run() makes the loop)
    batch = recipe.collate([recipe.examples[i] for i in range(8)])
    recipe.module.train()
    torch.manual_seed(0)
    loss, parts = recipe.loss_step(recipe.module, batch)
    assert abs(float(loss.detach())) < 1e-6, parts
    # the old reading, for contrast: HF's attentions of the same student in training mode
    student = recipe.student
    student.set_attn_implementation("eager")
    with torch.no_grad():
        after = student(**{k: batch[k] for k in ("input_ids", "attention_mask")}, output_attentions=True)
        clean = recipe.teacher(**{k: batch[k] for k in ("input_ids", "attention_mask")}, output_attentions=True)
    assert float((after.attentions[0] - clean.attentions[0]).abs().max()) > 0.1
