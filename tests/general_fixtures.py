"""Tiny masked-LM teachers and prepared corpora for the general-distillation tests."""

from __future__ import annotations

from pathlib import Path

from conftest import toy_sentences
from tiny import make_tiny_bert, make_tiny_tokenizer


def save_tiny_mlm(out_dir: Path, *, seed: int = 0, kind: str = "mlm", dropout: float = 0.0) -> Path:
    """A tiny BERT masked-LM (or bare encoder with kind="base") and its tokenizer; no dropout by
    default so that runs on one process and on several compute the same thing."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = make_tiny_tokenizer(out_dir)
    model = make_tiny_bert(tokenizer, task_kind=kind, seed=seed, hidden_dropout_prob=dropout,
                           attention_probs_dropout_prob=dropout)
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
