"""`embed-eval`: sentence-embedding models scored with no fine-tuning.

* STS-B (GLUE layout, read by :mod:`bertdistill.data.glue`): the cosine similarity of the two
  sentences' embeddings against the gold score, Spearman's rank correlation, dev and test;
* retrieval on SQuAD (read by :mod:`bertdistill.data.squad`): every question against every
  distinct paragraph of the file (2,067 in dev-v1.1), the question's own paragraph the one
  relevant item; recall@1, recall@5 and the mean reciprocal rank. A question's rank is 1 plus
  the number of paragraphs scored strictly higher than its own.

A model is a sentence-transformers folder (its pooling and Normalize read from
``modules.json``; a ``Dense`` module applied), the alias ``minilm-l6``, or a plain encoder
folder (mean pooling, said in the result). Everything that can be checked without weights (the
model names and folders, the data files) is checked before any model is loaded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from .data.errors import DataError
from .data.glue import read_glue
from .data.squad import read_squad_file
from .data.tabular import BadRows
from .data.tasks import get_task_spec
from .models.loading import hub_errors, load_tokenizer, pretrained_kwargs, quiet_transformers, resolve_model
from .models.sentence_embedding import SentenceConfig, load_dense, read_sentence_config, sentence_embeddings

EVALUATIONS = ("stsb", "squad")


# --------------------------------------------------------------------------- metrics


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of every row of ``a`` with every row of ``b``: ``[len(a), len(b)]``."""
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return a @ b.T


def sts_spearman(first: np.ndarray, second: np.ndarray, gold) -> float:
    """Spearman correlation of the pairs' cosine similarities with the gold scores."""
    a = first / np.maximum(np.linalg.norm(first, axis=1, keepdims=True), 1e-12)
    b = second / np.maximum(np.linalg.norm(second, axis=1, keepdims=True), 1e-12)
    return float(stats.spearmanr((a * b).sum(axis=1), np.asarray(gold, dtype=np.float64))[0])


def retrieval_metrics(similarity: np.ndarray, relevant, ks=(1, 5)) -> dict[str, float]:
    """recall@k for each k and MRR of a ``[queries, items]`` similarity matrix, each query's
    one relevant item given by ``relevant[q]``; rank = 1 + items scored strictly higher."""
    similarity = np.asarray(similarity, dtype=np.float64)
    relevant = np.asarray(relevant, dtype=np.int64)
    if similarity.ndim != 2 or len(relevant) != similarity.shape[0]:
        raise ValueError(f"a [queries, items] matrix and one relevant item per query are needed, got "
                         f"{similarity.shape} and {len(relevant)}")
    own = similarity[np.arange(len(relevant)), relevant]
    ranks = 1 + (similarity > own[:, None]).sum(axis=1)
    out = {f"recall@{k}": float((ranks <= k).mean()) for k in ks}
    out["mrr"] = float((1.0 / ranks).mean())
    return out


# --------------------------------------------------------------------------- data


@dataclass
class EvalData:
    sts: dict[str, tuple[list[str], list[str], list[float]]]  # split -> first, second, gold
    questions: list[str]
    paragraphs: list[str]
    relevant: list[int]
    squad_file: str | None = None
    stsb_dir: str | None = None


def read_eval_data(stsb: str | Path | None, squad: str | Path | None, max_questions: int | None = None) -> EvalData:
    """STS-B dev and test pairs and the SQuAD questions with their distinct paragraphs; a
    DataError names a missing or bad file."""
    sts: dict = {}
    if stsb is not None:
        splits = read_glue(get_task_spec("stsb"), Path(stsb), BadRows(), wanted=("dev", "test"))
        for split, examples in splits.items():
            if any(e.label is None for e in examples):
                raise DataError(stsb, None, f"the STS-B {split} file has no gold scores")
            sts[split] = ([e.text for e in examples], [e.text_pair for e in examples],
                          [float(e.label) for e in examples])
    questions: list[str] = []
    paragraphs: list[str] = []
    relevant: list[int] = []
    if squad is not None:
        index: dict[str, int] = {}
        for example in read_squad_file(Path(squad), BadRows()):
            questions.append(example.text)
            relevant.append(index.setdefault(example.text_pair, len(index)))
        paragraphs = list(index)
        if max_questions is not None and max_questions < len(questions):  # evenly spread
            keep = np.linspace(0, len(questions) - 1, max_questions).round().astype(int)
            questions = [questions[i] for i in keep]
            relevant = [relevant[i] for i in keep]
    return EvalData(sts, questions, paragraphs, relevant, str(squad) if squad else None,
                    str(stsb) if stsb else None)


# --------------------------------------------------------------------------- models


class Embedder:
    """A model's sentence embeddings: tokenizer + encoder + its pooling (+ Dense)."""

    def __init__(self, name: str, *, batch_size: int = 64, max_length: int | None = None,
                 device: str | None = None) -> None:
        self.name = name
        self.folder = resolve_model(name)
        local = Path(self.folder).is_dir()
        if not local:  # a hub id: its config fetched now, before any data is read or weights load
            from transformers import AutoConfig

            with quiet_transformers(), hub_errors(name):
                AutoConfig.from_pretrained(self.folder, **pretrained_kwargs())
        found = read_sentence_config(self.folder) if local else None
        self.sentence = found or SentenceConfig()
        self.pooling_source = "modules.json" if found else "default (no modules.json: mean pooling)"
        self.dense_module = load_dense(self.folder) if found is not None and found.has_dense else None
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = None

    def load(self) -> "Embedder":
        from .models.mlm import load_encoder

        self.tokenizer = load_tokenizer(self.name)
        self.model = load_encoder(self.name).to(self.device).eval()
        positions = getattr(self.model.config, "max_position_embeddings", None) or 512
        limit = self.max_length or self.sentence.max_seq_length or positions
        self.limit = min(limit, positions)
        if self.dense_module is not None:
            self.dense_module.to(self.device)
        return self

    @torch.no_grad()
    def encode(self, texts: list[str], desc: str = "") -> np.ndarray:
        from tqdm.auto import tqdm

        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        chunks = []
        for start in tqdm(range(0, len(order), self.batch_size), desc=desc, unit="batch", leave=False):
            ids = order[start:start + self.batch_size]
            batch = self.tokenizer([texts[i] for i in ids], padding=True, truncation=True, max_length=self.limit,
                                   return_tensors="pt").to(self.device)
            inputs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
            if self.model.config.model_type in ("distilbert", "roberta"):
                inputs.pop("token_type_ids", None)
            hidden = self.model(**inputs).last_hidden_state
            if self.dense_module is not None:  # pooled then projected: Pooling -> Dense -> Normalize
                pooled = sentence_embeddings(hidden, batch["attention_mask"], self.sentence.pooling, False)
                vectors = self.dense_module(pooled)
                if self.sentence.normalize:
                    vectors = torch.nn.functional.normalize(vectors, dim=-1)
            else:
                vectors = sentence_embeddings(hidden, batch["attention_mask"], self.sentence.pooling,
                                              self.sentence.normalize)
            chunks.append((ids, vectors.float().cpu().numpy()))
        width = chunks[0][1].shape[1] if chunks else 0
        out = np.zeros((len(texts), width), dtype=np.float32)
        for ids, vectors in chunks:
            out[ids] = vectors
        return out


def evaluate_model(embedder: Embedder, data: EvalData) -> dict:
    """The STS-B and retrieval scores of one model."""
    embedder.load()
    result: dict = {"model": embedder.name, "folder": embedder.folder, "pooling": embedder.sentence.pooling,
                    "normalize": embedder.sentence.normalize, "pooling_from": embedder.pooling_source,
                    "max_length": embedder.limit,
                    "parameters": sum(p.numel() for p in embedder.model.parameters())}
    start = time.perf_counter()
    for split, (first, second, gold) in data.sts.items():
        a = embedder.encode(first, desc=f"{embedder.name} stsb {split} (1/2)")
        b = embedder.encode(second, desc=f"{embedder.name} stsb {split} (2/2)")
        result[f"stsb_{split}_spearman"] = sts_spearman(a, b, gold)
    if data.questions:
        paragraphs = embedder.encode(data.paragraphs, desc=f"{embedder.name} squad paragraphs")
        questions = embedder.encode(data.questions, desc=f"{embedder.name} squad questions")
        scores = retrieval_metrics(cosine_matrix(questions, paragraphs), data.relevant)
        result.update({f"squad_{k}": v for k, v in scores.items()})
        result["squad_questions"] = len(data.questions)
        result["squad_paragraphs"] = len(data.paragraphs)
    result["encode_seconds"] = time.perf_counter() - start
    return result


def embed_eval(models: list[str], *, stsb: str | Path | None, squad: str | Path | None,
               batch_size: int = 64, max_length: int | None = None, max_questions: int | None = None,
               device: str | None = None) -> dict:
    """Score each model (see the module docstring); every name and file is checked first."""
    if not models:
        raise ValueError("--model: give at least one model")
    if stsb is None and squad is None:
        raise ValueError("nothing to evaluate: both STS-B and SQuAD are switched off")
    for flag, value in (("--batch-size", batch_size), ("--max-length", max_length), ("--max-questions", max_questions)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{flag} must be a positive integer, got {value!r}")
    embedders = []
    for name in models:
        try:
            embedders.append(Embedder(name, batch_size=batch_size, max_length=max_length, device=device))
        except (ValueError, OSError) as err:
            raise ValueError(f"--model {name}: {err}") from None
    data = read_eval_data(stsb, squad, max_questions)
    rows = [evaluate_model(e, data) for e in embedders]
    return {"stsb": data.stsb_dir, "squad": data.squad_file,
            "sts_pairs": {split: len(v[2]) for split, v in data.sts.items()}, "models": rows}
