"""TinyBERT's data augmentation (Jiao et al., 2020) for the task-distillation stage.

Each word is, with probability ``p``, replaced by one of ``top_k`` candidates: a word that
is a single word piece for the masked-LM's tokenizer gets the masked LM's top-k
predictions at its position (when ``mlm_model`` is given); any other word gets its
``top_k`` GloVe nearest neighbours by cosine. Words without candidates stay.
"""

from __future__ import annotations

import random

import numpy as np

from .registry import Augmenter, check_positive_int, check_probability, register_augmenter


class GloveNeighbours:
    """Top-k cosine neighbours of a word among the GloVe vocabulary (cached per word)."""

    def __init__(self, top_k: int, vectors=None):
        from ..data.glove import load_glove

        self.vectors = vectors if vectors is not None else load_glove()
        matrix = np.asarray(self.vectors.matrix, dtype=np.float32)
        self.unit = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-8)
        self.top_k = top_k
        self.cache: dict[str, list[str]] = {}

    def prefetch(self, words, chunk: int = 128) -> None:
        """Neighbours of many words at once (one matrix product per chunk instead of one per word)."""
        todo = sorted({w.lower() for w in words} - set(self.cache))
        rows = [self.vectors.index.get(w) for w in todo]
        for w, r in zip(todo, rows):
            if r is None:
                self.cache[w] = []
        known = [(w, r) for w, r in zip(todo, rows) if r is not None]
        for start in range(0, len(known), chunk):
            part = known[start : start + chunk]
            scores = self.unit[[r for _, r in part]] @ self.unit.T
            scores[np.arange(len(part)), [r for _, r in part]] = -np.inf
            best = np.argpartition(-scores, self.top_k, axis=1)[:, : self.top_k]
            for (w, _), cand, row in zip(part, best, scores):
                cand = cand[np.argsort(-row[cand])]
                self.cache[w] = [self.vectors.words[i] for i in cand]

    def __call__(self, word: str) -> list[str]:
        key = word.lower()
        if key not in self.cache:
            self.prefetch([key])
        return self.cache[key]


class MaskedLMCandidates:
    """Top-k masked-LM predictions for the word at a position of a sentence."""

    def __init__(self, model_dir: str, top_k: int):
        import torch
        from transformers import AutoModelForMaskedLM

        from ..models.loading import load_tokenizer, resolve_model

        self.torch = torch
        self.tokenizer = load_tokenizer(model_dir)
        if self.tokenizer.mask_token is None:
            raise ValueError(f"--mlm-model {model_dir}: its tokenizer has no mask token")
        self.model = AutoModelForMaskedLM.from_pretrained(resolve_model(model_dir)).eval()
        self.top_k = top_k

    def single_piece(self, word: str) -> bool:
        ids = self.tokenizer(word, add_special_tokens=False)["input_ids"]
        return len(ids) == 1 and ids[0] != self.tokenizer.unk_token_id

    def __call__(self, words: list[str], position: int) -> list[str]:
        masked = list(words)
        masked[position] = self.tokenizer.mask_token
        enc = self.tokenizer(" ".join(masked), return_tensors="pt", truncation=True, max_length=128)
        where = (enc["input_ids"][0] == self.tokenizer.mask_token_id).nonzero()
        if len(where) != 1:
            return []
        with self.torch.inference_mode():
            logits = self.model(**enc).logits[0, int(where[0])]
        special = set(self.tokenizer.all_special_ids)
        out = []
        for i in logits.topk(self.top_k + len(special)).indices.tolist():
            piece = self.tokenizer.convert_ids_to_tokens(i)
            if i not in special and not piece.startswith("##") and piece != words[position]:
                out.append(piece)
        return out[: self.top_k]


@register_augmenter("tinybert")
class TinyBERTAugmenter(Augmenter):
    params = ("p", "top_k", "mlm_model")

    def __init__(self, p: float = 0.4, top_k: int = 15, mlm_model: str | None = None, *,
                 neighbours=None, mlm=None):
        self.p = check_probability("p", p)
        self.top_k = check_positive_int("top_k", top_k)
        self.neighbours = neighbours if neighbours is not None else GloveNeighbours(self.top_k)
        self.mlm = mlm if mlm is not None else (MaskedLMCandidates(mlm_model, self.top_k) if mlm_model else None)

    def fit(self, texts: list[str]) -> None:
        """Neighbours of every word of the texts, computed in batches up front."""
        if hasattr(self.neighbours, "prefetch"):
            self.neighbours.prefetch({w for t in texts for w in t.split()})

    def augment(self, text: str, rng: random.Random, partner: str | None = None) -> str:
        words = text.split()
        out = list(words)
        for i, word in enumerate(words):
            if rng.random() >= self.p:
                continue
            if self.mlm is not None and self.mlm.single_piece(word):
                candidates = self.mlm(words, i)
            else:
                candidates = self.neighbours(word)
            if candidates:
                out[i] = rng.choice(candidates)
        return " ".join(out)
