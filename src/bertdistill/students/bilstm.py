"""The BiLSTM student of Tang et al. (2019): a word-level model with its own vocabulary.

One bidirectional LSTM layer reads word embeddings; the final states of both directions
are concatenated (``h``) and a ReLU MLP gives the logits. A sentence pair goes through
the same encoder twice and the MLP reads ``[h1, h2, |h1 - h2|, h1 * h2]``.

The student does not read the teacher's word pieces: :class:`WordTokenizer` splits text
into lower-cased words and maps them through a vocabulary built from the transfer set
(``<pad>`` = 0, ``<unk>`` = 1, ``[mask]`` = 2 for masked augmented words). A saved student
is a folder: ``model.safetensors``, ``config.json`` (``model_type: bilstm``) and
``vocab.json``.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..data.errors import DataError
from ..data.examples import Example, TaskSpec

PAD, UNK, MASK = "<pad>", "<unk>", "[mask]"
SPECIALS = (PAD, UNK, MASK)
MODEL_TYPE = "bilstm"
EMBEDDING_CHOICES = ("glove", "teacher", "random")

_WORD = re.compile(r"\[mask\]|[a-z0-9]+(?:[-'][a-z0-9]+)*|'[a-z]+|[^\sa-z0-9]", re.IGNORECASE)


def split_words(text: str) -> list[str]:
    """Lower-cased words and punctuation marks (``[MASK]`` kept whole)."""
    return _WORD.findall(text.lower())


class WordTokenizer:
    """Words -> ids through a fixed vocabulary; unknown words map to ``<unk>``."""

    def __init__(self, words: list[str]):
        if list(words[: len(SPECIALS)]) != list(SPECIALS):
            raise ValueError(f"a word vocabulary must start with {', '.join(SPECIALS)}")
        self.words = list(words)
        self.ids = {w: i for i, w in enumerate(self.words)}
        if len(self.ids) != len(self.words):
            raise ValueError("the word vocabulary has duplicate entries")
        self.pad_token_id, self.unk_token_id, self.mask_token_id = 0, 1, 2

    @classmethod
    def build(cls, texts: Iterable[str], *, min_freq: int = 1, max_size: int | None = None) -> "WordTokenizer":
        """A vocabulary of the words of ``texts`` seen ``min_freq`` times, most frequent first."""
        counts = Counter(w for t in texts for w in split_words(t))
        for special in SPECIALS:
            counts.pop(special, None)
        kept = [w for w, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if c >= min_freq]
        if max_size is not None:
            kept = kept[: max(0, max_size - len(SPECIALS))]
        return cls([*SPECIALS, *kept])

    def extended(self, extra: Iterable[str]) -> "WordTokenizer":
        """This vocabulary followed by the words of ``extra`` it lacks (in their order)."""
        words, seen = list(self.words), set(self.words)
        for w in extra:
            if w not in seen:
                seen.add(w)
                words.append(w)
        return WordTokenizer(words)

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, text: str, max_length: int | None = None) -> list[int]:
        ids = [self.ids.get(w, self.unk_token_id) for w in split_words(text)] or [self.unk_token_id]
        return ids[:max_length] if max_length else ids

    def __call__(self, text: str, text_pair: str | None = None, *, max_length: int | None = None,
                 return_tensors: str | None = None, **_ignored) -> dict:
        """The model's inputs for one example (the shape ``bench.latency`` expects)."""
        out = {"input_ids": self.encode(text, max_length)}
        if text_pair is not None:
            out["input_ids_b"] = self.encode(text_pair, max_length)
        if return_tensors in ("pt", "np"):  # a batch of one, as Hugging Face tokenizers return it
            batch = {}
            for key, ids in out.items():
                suffix = key[len("input_ids"):]
                batch[key] = torch.tensor([ids])
                batch[f"attention_mask{suffix}"] = torch.ones(1, len(ids), dtype=torch.long)
            return batch if return_tensors == "pt" else {k: v.numpy() for k, v in batch.items()}
        return out

    def save(self, folder: Path) -> None:
        (folder / "vocab.json").write_text(json.dumps(self.words, ensure_ascii=False))

    @classmethod
    def load(cls, folder: Path) -> "WordTokenizer":
        return cls(json.loads((folder / "vocab.json").read_text()))


def encode_words(task: TaskSpec, examples: list[Example], tokenizer: WordTokenizer,
                 max_length: int = 128) -> list[dict]:
    """Feature dicts for the student: ``input_ids`` (and ``input_ids_b`` for pairs), ``labels``.

    Examples without a label (augmented ones) get label -100 (classification) or NaN
    (regression), which the label loss skips.
    """
    features = []
    for e in examples:
        f = {"input_ids": tokenizer.encode(e.text, max_length)}
        if task.pair:
            f["input_ids_b"] = tokenizer.encode(e.text_pair or "", max_length)
        if task.kind == "regression":
            f["labels"] = float("nan") if e.label is None else float(e.label)
        else:
            f["labels"] = -100 if e.label is None else int(e.label)
        features.append(f)
    return features


class WordCollator:
    """Pads word ids with 0 and builds the masks; ``labels`` become a tensor."""

    def __call__(self, features: list[dict]) -> dict:
        if not features:
            raise ValueError("cannot collate an empty batch")
        batch: dict = {}
        for key in ("input_ids", "input_ids_b"):
            if key not in features[0]:
                continue
            suffix = key[len("input_ids"):]
            width = max(len(f[key]) for f in features)
            ids = torch.zeros(len(features), width, dtype=torch.long)
            mask = torch.zeros(len(features), width, dtype=torch.long)
            for i, f in enumerate(features):
                ids[i, : len(f[key])] = torch.as_tensor(f[key])
                mask[i, : len(f[key])] = 1
            batch[key], batch[f"attention_mask{suffix}"] = ids, mask
        if "labels" in features[0]:
            labels = [f["labels"] for f in features]
            batch["labels"] = torch.tensor(labels, dtype=torch.float if isinstance(labels[0], float) else torch.long)
        return batch


@dataclass
class BiLSTMConfig:
    vocab_size: int
    num_labels: int
    embedding_dim: int = 50
    hidden_size: int = 150          # per direction
    mlp_size: int = 200
    dropout: float = 0.1
    pair: bool = False
    kind: str = "classification"    # or "regression"
    freeze_embeddings: bool = False
    embeddings: str = "glove"       # how the embeddings were initialised (glove | teacher | random)
    id2label: dict = field(default_factory=dict)
    model_type: str = MODEL_TYPE

    def __post_init__(self) -> None:
        for name in ("vocab_size", "num_labels", "embedding_dim", "hidden_size", "mlp_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"bilstm student: {name} must be a positive integer, got {value!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"bilstm student: dropout must be in [0, 1), got {self.dropout!r}")
        if self.embeddings not in EMBEDDING_CHOICES:
            raise ValueError(f"bilstm student: embeddings must be one of {', '.join(EMBEDDING_CHOICES)}, "
                             f"got {self.embeddings!r}")
        self.id2label = {int(k): v for k, v in self.id2label.items()}


@dataclass
class BiLSTMOutput:
    logits: torch.Tensor


class BiLSTMClassifier(nn.Module):
    """Embeddings -> one BiLSTM layer -> [h_fwd, h_bwd] -> ReLU MLP -> logits."""

    def __init__(self, config: BiLSTMConfig):
        super().__init__()
        self.config = config
        self.embeddings = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=0)
        self.embeddings.weight.requires_grad_(not config.freeze_embeddings)
        self.lstm = nn.LSTM(config.embedding_dim, config.hidden_size, batch_first=True, bidirectional=True)
        width = 2 * config.hidden_size * (4 if config.pair else 1)
        self.classifier = nn.Sequential(
            nn.Dropout(config.dropout), nn.Linear(width, config.mlp_size), nn.ReLU(),
            nn.Dropout(config.dropout), nn.Linear(config.mlp_size, config.num_labels),
        )

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(batch, 2 * hidden): the last forward state and the first backward state."""
        if attention_mask is None:
            attention_mask = (input_ids != 0).long()
        lengths = attention_mask.sum(1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.embeddings(input_ids), lengths, batch_first=True,
                                                   enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)
        return torch.cat([h_n[0], h_n[1]], dim=-1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                input_ids_b: torch.Tensor | None = None, attention_mask_b: torch.Tensor | None = None) -> BiLSTMOutput:
        h = self.encode(input_ids, attention_mask)
        if self.config.pair:
            if input_ids_b is None:
                raise ValueError("this bilstm student reads sentence pairs: input_ids_b is missing")
            h2 = self.encode(input_ids_b, attention_mask_b)
            h = torch.cat([h, h2, (h - h2).abs(), h * h2], dim=-1)
        return BiLSTMOutput(self.classifier(h))


# ---- embeddings ------------------------------------------------------------------------
def glove_embeddings(words: list[str]) -> tuple[torch.Tensor, int]:
    """GloVe rows for ``words`` (unknown words drawn at GloVe's scale; ``<pad>`` zero), and hits."""
    from ..data.glove import load_glove

    vectors = load_glove()
    std = float(vectors.matrix[:10000].std())
    gen = torch.Generator().manual_seed(0)
    out = torch.randn(len(words), vectors.dim, generator=gen) * std
    hits = 0
    for i, w in enumerate(words):
        row = vectors.get(w)
        if row is not None:
            out[i] = torch.from_numpy(row)
            hits += 1
    out[0] = 0
    return out, hits


def teacher_embeddings(words: list[str], tokenizer, embedding: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Each word's vector = the mean of the teacher's input embeddings of its word pieces."""
    table = embedding.detach().float().cpu()
    out = torch.zeros(len(words), table.shape[1])
    hits = 0
    for i, w in enumerate(words):
        if i == 0:
            continue
        token = tokenizer.mask_token if w == MASK and tokenizer.mask_token else w
        ids = [t for t in tokenizer(token, add_special_tokens=False)["input_ids"] if t != tokenizer.unk_token_id]
        if ids:
            out[i] = table[ids].mean(0)
            hits += 1
        elif tokenizer.unk_token_id is not None:
            out[i] = table[tokenizer.unk_token_id]
    return out, hits


def random_embeddings(n: int, dim: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    out = torch.randn(n, dim, generator=gen) / math.sqrt(dim)
    out[0] = 0
    return out


# ---- save / load ---------------------------------------------------------------------------
def is_bilstm_dir(path: str | Path) -> bool:
    config = Path(path) / "config.json"
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text()).get("model_type") == MODEL_TYPE
    except json.JSONDecodeError:
        return False


def save_bilstm(model: BiLSTMClassifier, tokenizer: WordTokenizer, folder: str | Path, *,
                metrics: dict | None = None) -> Path:
    """Write the student folder atomically enough: files to a temporary folder, then renamed."""
    import os
    import shutil

    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, str(tmp / "model.safetensors"))
    (tmp / "config.json").write_text(json.dumps(asdict(model.config), indent=2))
    tokenizer.save(tmp)
    if metrics is not None:
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)
    return folder


def load_bilstm(folder: str | Path) -> tuple[BiLSTMClassifier, WordTokenizer]:
    folder = Path(folder)
    if not is_bilstm_dir(folder):
        raise FileNotFoundError(f"{folder} is not a saved bilstm student (no config.json with model_type bilstm)")
    for name in ("model.safetensors", "vocab.json"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name} is missing: not a complete bilstm student folder")
    from ..models.checks import check_model_folder

    check_model_folder(folder)  # config.json fields and the safetensors header, each named when bad
    config = BiLSTMConfig(**json.loads((folder / "config.json").read_text()))
    model = BiLSTMClassifier(config)
    try:
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
    except RuntimeError as err:  # missing / unexpected keys or shapes other than config.json's
        reason = " ".join(str(err).split())[:300]
        raise DataError(folder / "model.safetensors", None, f"does not fit config.json ({reason})") from None
    model.eval()
    try:
        tokenizer = WordTokenizer.load(folder)
    except (UnicodeDecodeError, json.JSONDecodeError, TypeError, ValueError) as err:
        raise DataError(folder / "vocab.json", None, f"not a word vocabulary ({err})") from None
    if len(tokenizer) != config.vocab_size:
        raise ValueError(f"{folder}: vocab.json has {len(tokenizer)} words, config.json says {config.vocab_size}")
    return model, tokenizer


def evaluate_bilstm(folder: str | Path, task: TaskSpec, examples: list[Example], *, batch_size: int = 64,
                    max_length: int = 128) -> dict:
    """Load a saved student and score it on labelled ``examples`` (bertdistill's metrics)."""
    from ..evaluation import evaluate_features

    model, tokenizer = load_bilstm(folder)
    if model.config.pair != task.pair:
        raise ValueError(f"{folder}: the student was trained for {'pairs' if model.config.pair else 'single sentences'}"
                         f" but task {task.name!r} is {'a pair task' if task.pair else 'single-sentence'}")
    features = encode_words(task, examples, tokenizer, max_length)
    return evaluate_features(model, task, features, WordCollator(), batch_size, device="cpu")
