"""Tiny masked-LM teachers and prepared corpora for the general-distillation tests: BERT (the
word-piece vocabulary of ``tiny``), RoBERTa (a byte-level BPE tokenizer trained here on the toy
sentences) and DistilBERT."""

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


def make_bpe_tokenizer(out_dir: Path, vocab_size: int = 400):
    """A RoBERTa-style byte-level BPE tokenizer ('Ġ' starts a word; <s> <pad> </s> <unk> <mask>)
    trained on the toy sentences, saved to ``out_dir``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import RobertaTokenizer

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator([s for s, _ in toy_sentences(300, 0)], trainer)
    bpe.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    tokenizer = RobertaTokenizer(tokenizer_object=bpe)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out_dir)
    return tokenizer


def save_tiny_roberta_mlm(out_dir: Path, *, seed: int = 0) -> Path:
    """A random 2-layer, 32-wide RobertaForMaskedLM with its byte-level BPE tokenizer."""
    from transformers import RobertaConfig, RobertaForMaskedLM

    tokenizer = make_bpe_tokenizer(out_dir)
    config = RobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=130, type_vocab_size=1,
                           pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                           eos_token_id=tokenizer.eos_token_id, hidden_dropout_prob=0.0,
                           attention_probs_dropout_prob=0.0)
    torch.manual_seed(seed)
    RobertaForMaskedLM(config).save_pretrained(out_dir)
    return out_dir


def save_tiny_distilbert_mlm(out_dir: Path, *, seed: int = 0) -> Path:
    """A random 2-layer, 32-wide DistilBertForMaskedLM with the tiny word-piece tokenizer."""
    from transformers import DistilBertConfig, DistilBertForMaskedLM

    tokenizer = make_tiny_tokenizer(out_dir)
    config = DistilBertConfig(vocab_size=len(tokenizer), dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                              max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id, dropout=0.0,
                              attention_dropout=0.0)
    torch.manual_seed(seed)
    DistilBertForMaskedLM(config).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
