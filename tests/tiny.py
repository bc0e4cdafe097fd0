"""Tiny random BERT models and a small word-piece vocabulary for fast tests.

``make_tiny_tokenizer(dir)`` writes ``vocab.txt`` (specials + ~200 lowercase words + a few
``##`` suffix pieces) and returns a ``BertTokenizer`` (the fast, tokenizers-backed one in
transformers v5). ``make_tiny_bert(tokenizer, ...)`` builds a 2-layer, 32-wide BERT with a
head for a task kind; ``save_tiny_bert(dir, ...)`` writes model + tokenizer to a directory
that ``from_pretrained`` / ``bertdistill.models.load_task_model`` can read.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
    BertTokenizer,
)

from bertdistill.data.examples import TaskSpec

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

WORDS = """
the a an and or but if of to in on at by for with from up down over under about
i you he she it we they me him her us them my your his its our their this that
is are was were be been being have has had do does did will would can could should
not no yes very more most less much many few some any all each every other same
good bad great terrible awful fine nice poor best worst happy sad funny boring
movie film story plot actor actress scene music song book show play game team
man woman child people friend family city country world house car road river
day night year time week morning evening today tomorrow yesterday
love hate like enjoy watch see look read write go come make take give get know
think say tell feel find want need try leave call work run walk talk
new old big small long short high low young early late hot cold dark light
red blue green black white one two three four five ten hundred
john mary paris london berlin france germany google apple europe
what when where who why how there here then now just also only still even
really quite too so as than well again never always often
""".split()

# suffix pieces so that words like "unbelievable" / "walking" split into several pieces
PIECES = ["##s", "##ed", "##ing", "##ly", "##er", "##able", "un", "##believ", "##ness"]

# keep order, drop duplicates
VOCAB = list(dict.fromkeys(SPECIALS + WORDS + PIECES + [".", ",", "!", "?", "'", "-"]))

KIND_ALIASES = {
    "sequence": "classification",
    "token": "token_classification",
}


def make_tiny_tokenizer(tmp_dir: str | Path) -> BertTokenizer:
    """Write ``vocab.txt`` into ``tmp_dir`` and return a lowercasing BertTokenizer on it."""
    tmp_dir = Path(tmp_dir)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    vocab_file = tmp_dir / "vocab.txt"
    vocab_file.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    # v5: the first argument is the vocab (a path or a dict); there is no vocab_file kwarg
    return BertTokenizer(str(vocab_file), do_lower_case=True)


def tiny_config(tokenizer, **overrides) -> BertConfig:
    """The tiny BERT config: hidden 32, 2 layers, 2 heads, FFN 64, the tokenizer's vocab."""
    kwargs = dict(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
    )
    kwargs.update(overrides)
    return BertConfig(**kwargs)


def tiny_task(kind: str = "classification") -> TaskSpec:
    """A TaskSpec of each kind, with small label sets."""
    kind = KIND_ALIASES.get(kind, kind)
    if kind == "classification":
        return TaskSpec("tiny", "classification", ["negative", "positive"], ("accuracy", "f1"))
    if kind == "regression":
        return TaskSpec("tiny-reg", "regression", None, ("pearson", "spearman"))
    if kind == "token_classification":
        labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
        return TaskSpec("tiny-ner", "token_classification", labels, ("entity_f1",))
    raise ValueError(f"no tiny task of kind {kind!r}")


def make_tiny_bert(
    tokenizer,
    num_labels: int = 2,
    task_kind: str = "classification",
    *,
    seed: int = 0,
    attn_implementation: str = "eager",
    **config_overrides,
):
    """A randomly initialised tiny BERT (deterministic for a seed), in eval mode.

    task_kind: "classification" (or "sequence"), "regression" (num_labels forced to 1),
    "token_classification" (or "token"), "mlm" or "base" (the bare encoder).
    """
    kind = KIND_ALIASES.get(task_kind, task_kind)
    config = tiny_config(tokenizer, **config_overrides)
    config._attn_implementation = attn_implementation
    torch.manual_seed(seed)
    if kind in ("classification", "regression", "token_classification"):
        config.num_labels = 1 if kind == "regression" else num_labels
        if kind == "regression":
            config.problem_type = "regression"
        elif kind == "classification":
            config.problem_type = "single_label_classification"
        cls = BertForTokenClassification if kind == "token_classification" else BertForSequenceClassification
        model = cls(config)
    elif kind == "mlm":
        model = BertForMaskedLM(config)
    elif kind == "base":
        model = BertModel(config)
    else:
        raise ValueError(f"unknown task_kind {task_kind!r}")
    return model.eval()


def save_tiny_bert(
    out_dir: str | Path, kind: str = "sequence", num_labels: int = 2, *, seed: int = 0
) -> Path:
    """Write a tiny BERT of ``kind`` ("sequence", "token", "regression", "mlm", "base") and its
    tokenizer into ``out_dir``; returns the directory."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = make_tiny_tokenizer(out_dir)
    model = make_tiny_bert(tokenizer, num_labels=num_labels, task_kind=kind, seed=seed)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
