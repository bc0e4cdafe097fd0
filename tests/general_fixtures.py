"""Tiny masked-LM teachers and prepared corpora for the general-distillation tests."""

from __future__ import annotations

from pathlib import Path

import torch

from conftest import toy_sentences
from tiny import make_tiny_bert, make_tiny_tokenizer


def save_tiny_mlm(out_dir: Path, *, seed: int = 0, kind: str = "mlm", dropout: float = 0.0) -> Path:
    """A tiny BERT masked-LM (or bare encoder with kind="base") and its tokenizer; no dropout by
    default so that runs on one process and on several compute the same thing. The masked-LM's
    output bias is drawn with std 2 so that its predictions are peaked, like a trained model's,
    rather than near uniform."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = make_tiny_tokenizer(out_dir)
    model = make_tiny_bert(tokenizer, task_kind=kind, seed=seed, hidden_dropout_prob=dropout,
                           attention_probs_dropout_prob=dropout)
    if kind == "mlm":
        with torch.no_grad():
            bias = torch.randn(model.cls.predictions.bias.shape, generator=torch.Generator().manual_seed(seed))
            model.cls.predictions.bias.copy_(2.0 * bias)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def write_text(path: Path, n: int, seed: int) -> Path:
    """Raw text, one document a line: the toy sentences, three per line."""
    rows = [s for s, _ in toy_sentences(3 * n, seed)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(" . ".join(rows[i:i + 3]) for i in range(0, len(rows), 3)) + "\n")
    return path


def prepare(text: Path, tokenizer, out: Path, max_length: int = 32) -> Path:
    from bertdistill.corpus import prepare_corpus

    prepare_corpus([str(text)], tokenizer, out, max_length=max_length, min_length=4, progress=False)
    return out
