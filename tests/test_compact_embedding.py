"""--compact-embeddings: training only the word-embedding rows the training set reads gives the
dense run's model (the untrained rows decayed by AdamW's weight decay), saves as a plain
full-vocabulary checkpoint, resumes, and refuses what it cannot serve."""

from __future__ import annotations

import copy

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification

from bertdistill import api
from bertdistill.models.compact_embedding import CompactEmbedding, full_vocabulary, install, restore_dense, used_token_ids
from bertdistill.training.checkpoint import checkpoint_step, latest_checkpoint
from tiny import make_tiny_bert, make_tiny_tokenizer

LR, DECAY = 1e-2, 0.5  # a large decay, so a run that forgot it would be far off


def _pair(tmp_path):
    tokenizer = make_tiny_tokenizer(tmp_path)
    dense = make_tiny_bert(tokenizer, seed=3, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    dense.train()
    return tokenizer, dense, copy.deepcopy(dense)


def _batches(vocab_ids: torch.Tensor, steps: int, pad: int):
    gen = torch.Generator().manual_seed(0)
    out = []
    for _ in range(steps):
        ids = vocab_ids[torch.randint(len(vocab_ids), (4, 7), generator=gen)]
        ids[:2, 5:] = pad  # padded rows: the padding row gets no gradient
        out.append({"input_ids": ids, "attention_mask": (ids != pad).long(), "labels": torch.tensor([0, 1, 1, 0])})
    return out


def _adamw(model):
    groups = [{"params": [p for p in model.parameters() if p.ndim >= 2], "weight_decay": DECAY},
              {"params": [p for p in model.parameters() if p.ndim < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=LR, fused=True)


def _train(model, batches, compact=None):
    opt = _adamw(model)
    if compact is not None:
        compact.track(opt)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - s / 20)  # lr changes every step
    for batch in batches:
        model(**batch).loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)


def test_compact_training_gives_the_dense_model(tmp_path):
    tokenizer, dense, model = _pair(tmp_path)
    pad = tokenizer.pad_token_id
    used = torch.arange(5, 60)  # rows 0..4 (specials but the pad) and 60.. are never read
    batches = _batches(used, 8, pad)
    initial = dense.get_input_embeddings().weight.detach().clone()
    compact = install(model, used_token_ids({"input_ids": row.tolist()} for b in batches for row in b["input_ids"]))
    assert isinstance(compact, CompactEmbedding) and compact.weight.shape[0] <= 56  # the read rows and the pad
    _train(dense, batches)
    _train(model, batches, compact)

    full = compact.full_weight().detach()
    want = dense.get_input_embeddings().weight.detach()
    read = compact.used_ids
    assert torch.equal(full[read], want[read])  # the same element-wise updates
    unread = compact.rest_ids
    assert torch.allclose(full[unread], want[unread], rtol=1e-6, atol=0)
    assert not torch.allclose(initial[unread], want[unread], rtol=1e-3)  # the decay mattered
    for (name, a), (_, b) in zip(dense.named_parameters(), model.named_parameters()):
        if "word_embeddings" not in name:
            assert torch.equal(a, b), name


def test_ids_outside_the_trained_rows_evaluate_with_the_full_matrix_and_are_refused_in_training(tmp_path):
    tokenizer, dense, model = _pair(tmp_path)
    compact = install(model, torch.arange(5, 40))
    dense.eval(), model.eval()
    ids = torch.tensor([[5, 45, 50, 7, 6]])  # 45 and 50 were never trained
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids).logits, dense(input_ids=ids).logits, atol=1e-6)
    model.train()
    with pytest.raises(ValueError, match=r"--compact-embeddings: a training batch reads token ids \[45, 50\]"):
        model(input_ids=ids)
    with full_vocabulary(model) as plain:
        assert type(plain.get_input_embeddings()) is torch.nn.Embedding
        assert torch.equal(plain.get_input_embeddings().weight, dense.get_input_embeddings().weight)
    assert model.get_input_embeddings() is compact
    restore_dense(model)
    assert type(model.get_input_embeddings()) is torch.nn.Embedding


def test_frozen_or_tied_embeddings_are_left_alone_or_refused(tmp_path):
    tokenizer = make_tiny_tokenizer(tmp_path)
    frozen = make_tiny_bert(tokenizer)
    frozen.get_input_embeddings().weight.requires_grad_(False)
    assert install(frozen, torch.arange(10)) is None
    with pytest.raises(ValueError, match="--compact-embeddings: the student's output layer shares"):
        install(make_tiny_bert(tokenizer, task_kind="mlm"), torch.arange(10))


def _distill(teacher, data, out, recipe="kd_hidden_mse", **kw):
    train = {"max_steps": 6, "batch_size": 16, "lr": 1e-3, "max_grad_norm": 0.0, "seed": 3, "eval_every": 3,
             **kw.pop("train", {})}
    return api.distill(str(teacher), "tsv", str(out), str(data), recipe=recipe, cache_dir=str(out.parent / "cache"),
                       max_train_examples=96, max_eval_examples=32, test_split=None, latency_runs=0, train=train, **kw)


@pytest.mark.parametrize("recipe", ["kd_hidden_mse", "distilbert"])  # a BERT and a DistilBERT student
def test_recipe_saves_the_dense_runs_student_as_a_plain_checkpoint(tiny_teacher, toy_task_dir, tmp_path, recipe):
    dense = _distill(tiny_teacher, toy_task_dir, tmp_path / "dense", recipe=recipe)
    compact = _distill(tiny_teacher, toy_task_dir, tmp_path / "compact", recipe=recipe, compact_embeddings=True)
    a = load_file(str(tmp_path / "dense" / "student" / "model.safetensors"))
    b = load_file(str(tmp_path / "compact" / "student" / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], rtol=1e-5, atol=1e-7), key
    assert compact["dev"]["student"]["accuracy"] == dense["dev"]["student"]["accuracy"]
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "compact" / "student")
    assert model.get_input_embeddings().weight.shape[0] == model.config.vocab_size


def test_recipe_resumes_a_compact_run_and_refuses_a_changed_option(tiny_teacher, toy_task_dir, tmp_path, monkeypatch):
    whole = _distill(tiny_teacher, toy_task_dir, tmp_path / "whole", compact_embeddings=True)
    from bertdistill.training import engine

    original, calls = engine.TrainLoop._optimizer_step, {"n": 0}

    def dies_at_step_5(self, group):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt  # killed after the checkpoint of step 3
        return original(self, group)

    monkeypatch.setattr(engine.TrainLoop, "_optimizer_step", dies_at_step_5)
    with pytest.raises(KeyboardInterrupt):
        _distill(tiny_teacher, toy_task_dir, tmp_path / "cut", compact_embeddings=True)
    monkeypatch.setattr(engine.TrainLoop, "_optimizer_step", original)
    assert checkpoint_step(latest_checkpoint(tmp_path / "cut" / "checkpoints")) == 3
    with pytest.raises(ValueError, match="compact_embeddings"):
        _distill(tiny_teacher, toy_task_dir, tmp_path / "cut")
    resumed = _distill(tiny_teacher, toy_task_dir, tmp_path / "cut", compact_embeddings=True)
    a = load_file(str(tmp_path / "whole" / "student" / "model.safetensors"))
    b = load_file(str(tmp_path / "cut" / "student" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["dev"]["student"] == whole["dev"]["student"]


def test_compact_embeddings_are_refused_for_the_bilstm_student(tmp_path):
    with pytest.raises(ValueError, match="--compact-embeddings .* bilstm"):
        api.distill("/nonexistent/teacher", "tsv", str(tmp_path / "o"), "/nonexistent/data",
                    recipe="bilstm", compact_embeddings=True, allow_untrained_teacher=True)


def test_a_step_skipped_for_inf_gradients_adds_no_decay(tmp_path):
    """GradScaler gives fused AdamW its inf flag; the kernel then changes nothing, so neither may the decay."""
    _, _, model = _pair(tmp_path)
    compact = install(model, torch.arange(5, 40))
    opt = _adamw(model)
    compact.track(opt)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    before = compact.full_weight().detach().clone()
    opt.grad_scale, opt.found_inf = torch.ones(()), torch.ones(())  # as GradScaler sets them around step()
    opt.step()
    assert float(compact.decay) == 1.0 and torch.equal(compact.full_weight(), before)
    opt.found_inf = torch.zeros(())
    opt.step()
    assert float(compact.decay) == pytest.approx(1 - LR * DECAY)
    del opt.grad_scale, opt.found_inf
