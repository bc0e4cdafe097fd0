"""Memory-mapped token shards: the writer used by ``prepare_corpus`` and the ``TokenShards`` reader.

A prepared corpus is a folder::

    shard-00000.ids            token ids of the sequences, back to back (raw, little-endian,
                               uint16 when the vocabulary has <= 65,536 ids, else uint32)
    shard-00000.offsets.npy    int64, sequences + 1 entries: sequence i is ids[off[i]:off[i+1]]
    ...
    token_counts.npy           int64 count of every vocabulary id over all kept sequences
    meta.json                  written last: tokenizer, vocabulary hash, options, inputs, shards

Every file is written under a ``.tmp`` name, flushed with fsync and renamed; meta.json comes
last. A run killed at any point therefore leaves either no meta.json (the reader refuses the
folder, a re-run starts over) or a complete folder. The reader also checks every shard's size
against meta.json, so a truncated or swapped file is refused with its name.
"""

from __future__ import annotations

import json
import os
from array import array
from pathlib import Path

import numpy as np

from ..data.errors import DataError
from ..durable import fsync_dir
from .vocab import resolve_tokenizer, tokenizer_name, vocab_hash

FORMAT = "bertdistill-token-shards"
VERSION = 1
META = "meta.json"
COUNTS = "token_counts.npy"
TMP = ".tmp"
PREPARE_HINT = "run `bertdistill corpus prepare` again"


def dtype_for_vocab(size: int) -> np.dtype:
    """uint16 when every id fits (size <= 65,536), else uint32; larger vocabularies are refused."""
    if size <= 0:
        raise ValueError(f"vocabulary size must be positive, got {size}")
    if size <= 1 << 16:
        return np.dtype("<u2")
    if size <= 1 << 32:
        return np.dtype("<u4")
    raise ValueError(f"vocabulary of {size} ids does not fit in uint32 token shards")


def replace_durably(tmp: Path, final: Path) -> None:
    """fsync ``tmp`` then rename it to ``final`` (atomic on POSIX)."""
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, final)


def write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + TMP)
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    replace_durably(tmp, path)
    fsync_dir(path.parent)


def write_npy_atomic(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + TMP)
    with open(tmp, "wb") as f:
        np.save(f, array)
    replace_durably(tmp, path)


def shard_names(index: int) -> tuple[str, str]:
    stem = f"shard-{index:05d}"
    return f"{stem}.ids", f"{stem}.offsets.npy"


def is_shard_file(name: str) -> bool:
    """Files this module may write into a corpus folder (including unfinished ``.tmp`` ones)."""
    base = name[: -len(TMP)] if name.endswith(TMP) else name
    return base in (META, COUNTS) or (base.startswith("shard-") and base.endswith((".ids", ".offsets.npy")))


class ShardWriter:
    """Appends sequences to shard files, starting a new shard before ``shard_tokens`` is passed.

    Token ids stream straight to the open ``.tmp`` file, so memory holds only the offsets of
    the current shard. A shard never splits a sequence; its boundaries depend only on the
    sequence lengths and ``shard_tokens`` (not on how sequences were batched).
    """

    def __init__(self, folder: str | os.PathLike, dtype: np.dtype, shard_tokens: int):
        if shard_tokens < 1:
            raise ValueError(f"--shard-tokens must be >= 1, got {shard_tokens}")
        self.folder = Path(folder)
        self.dtype = np.dtype(dtype)
        self.limit = np.iinfo(self.dtype).max
        self.shard_tokens = int(shard_tokens)
        self.shards: list[dict] = []
        self._file = None
        self._offsets = array("q", [0])  # 8 bytes per sequence of the open shard

    def add(self, flat: np.ndarray, lengths: np.ndarray) -> None:
        """Append sequences given as their concatenated ids and their lengths."""
        flat = np.asarray(flat)
        lengths = np.asarray(lengths, dtype=np.int64)
        if int(lengths.sum()) != flat.size:
            raise ValueError(f"lengths sum to {int(lengths.sum())} but {flat.size} token ids were given")
        if flat.size and (int(flat.min()) < 0 or int(flat.max()) > self.limit):
            bad = int(flat.max()) if int(flat.max()) > self.limit else int(flat.min())
            raise OverflowError(
                f"token id {bad} does not fit in {self.dtype.name} shards of {self.folder} "
                f"(largest storable id {self.limit}); the vocabulary size recorded is too small"
            )
        ends = np.cumsum(lengths)
        start_seq, start_tok = 0, 0
        while start_seq < lengths.size:
            if self._file is None:
                self._open()
            room = self.shard_tokens - self._offsets[-1]
            # sequences that fit in this shard (at least one, so a shard is never empty)
            fit = int(np.searchsorted(ends - start_tok, room, side="right")) - start_seq
            if fit <= 0 and len(self._offsets) > 1:
                self._close()
                continue
            stop_seq = start_seq + max(fit, 1)
            stop_tok = int(ends[stop_seq - 1])
            self._write_chunk(flat[start_tok:stop_tok].astype(self.dtype, copy=False))
            base = self._offsets[-1] - start_tok
            self._offsets.extend((ends[start_seq:stop_seq] + base).tolist())
            start_seq, start_tok = stop_seq, stop_tok
            if self._offsets[-1] >= self.shard_tokens:
                self._close()

    def _write_chunk(self, ids: np.ndarray) -> None:
        self._file.write(ids.tobytes())

    def _open(self) -> None:
        ids_name, _ = shard_names(len(self.shards))
        self._file = open(self.folder / (ids_name + TMP), "wb")
        self._offsets = array("q", [0])

    def _close(self) -> None:
        ids_name, off_name = shard_names(len(self.shards))
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        offsets = np.frombuffer(self._offsets, dtype=np.int64).copy()
        write_npy_atomic(self.folder / off_name, offsets)
        os.replace(self.folder / (ids_name + TMP), self.folder / ids_name)
        fsync_dir(self.folder)
        self.shards.append({"ids": ids_name, "offsets": off_name,
                            "sequences": int(offsets.size - 1), "tokens": int(offsets[-1])})
        self._offsets = array("q", [0])

    def finish(self) -> list[dict]:
        """Close the last shard; returns one record per shard (file names, sequences, tokens)."""
        if self._file is not None:
            if len(self._offsets) > 1:
                self._close()
            else:
                self.abort()
        return self.shards

    def abort(self) -> None:
        """Close and delete the unfinished shard (finished shards stay until the folder is cleared)."""
        if self._file is not None:
            self._file.close()
            self._file = None
            ids_name, _ = shard_names(len(self.shards))
            (self.folder / (ids_name + TMP)).unlink(missing_ok=True)


def read_meta(folder: Path) -> dict:
    """meta.json of a prepared corpus, or a DataError naming what is missing or wrong."""
    if not folder.exists():
        raise FileNotFoundError(f"corpus folder {folder} does not exist; create it with `bertdistill corpus prepare`")
    if not folder.is_dir():
        raise DataError(folder, None, "not a folder of token shards (made by `bertdistill corpus prepare`)")
    path = folder / META
    if not path.is_file():
        unfinished = any(is_shard_file(p.name) for p in folder.iterdir())
        why = "its preparation did not finish" if unfinished else "this is not a prepared corpus"
        raise DataError(path, None, f"missing: {why}; {PREPARE_HINT}")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(path, None, f"unreadable ({err}); {PREPARE_HINT}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or not meta.get("complete"):
        raise DataError(path, None, f"not the meta.json of a complete {FORMAT} folder; {PREPARE_HINT}")
    if meta.get("version") != VERSION:
        raise DataError(path, None, f"format version {meta.get('version')!r}, this bertdistill reads {VERSION}; {PREPARE_HINT}")
    return meta


class TokenShards:
    """Read-only view of a prepared corpus: ``shards[i]`` is sequence i's ids ([CLS] ... [SEP]).

    ``len(shards)``, ``shards.lengths`` (int32, from the offsets, no token read),
    ``shards.token_counts`` (int64 over the vocabulary), ``shards.meta``, ``shards.vocab_size``.
    With ``tokenizer`` (name, alias, folder or object) a folder made with another vocabulary
    is refused. Token files are memory-mapped, so opening a large corpus costs no memory and
    the object can be shared with DataLoader worker processes.
    """

    def __init__(self, path: str | os.PathLike, tokenizer=None):
        self.path = Path(path)
        self.meta = read_meta(self.path)
        self.vocab_size = int(self.meta["vocab_size"])
        self.dtype = np.dtype(self.meta["dtype"])
        if tokenizer is not None:
            self.check_tokenizer(tokenizer)
        self._open()

    def _open(self) -> None:
        self._ids: list[np.ndarray] = []
        self._offsets: list[np.ndarray] = []
        for record in self.meta["shards"]:
            ids, offsets = self._open_shard(record)
            self._ids.append(ids)
            self._offsets.append(offsets)
        counts = np.array([r["sequences"] for r in self.meta["shards"]], dtype=np.int64)
        self._first = np.concatenate([[0], np.cumsum(counts)])
        if int(self._first[-1]) != int(self.meta["sequences"]):
            raise DataError(self.path / META, None, f"shards hold {int(self._first[-1])} sequences, "
                            f"meta.json says {self.meta['sequences']}; {PREPARE_HINT}")
        self._lengths = None
        self._counts = None

    def __getstate__(self) -> dict:
        # pickled (e.g. to spawned DataLoader workers) as its folder and meta, never as token data
        return {"path": self.path, "meta": self.meta}

    def __setstate__(self, state: dict) -> None:
        self.path, self.meta = state["path"], state["meta"]
        self.vocab_size = int(self.meta["vocab_size"])
        self.dtype = np.dtype(self.meta["dtype"])
        self._open()

    def check_tokenizer(self, tokenizer) -> None:
        """ValueError when ``tokenizer`` has another vocabulary than the one the folder was made with."""
        tok = resolve_tokenizer(tokenizer)
        if vocab_hash(tok) != self.meta["vocab_hash"]:
            raise ValueError(
                f"token shards {self.path} were made with tokenizer {self.meta['tokenizer']!r}, whose "
                f"vocabulary differs from that of tokenizer {tokenizer_name(tok)!r}; prepare the corpus "
                f"again with `bertdistill corpus prepare --tokenizer {tokenizer_name(tok)}`"
            )

    def _open_shard(self, record: dict) -> tuple[np.ndarray, np.ndarray]:
        ids_path, off_path = self.path / record["ids"], self.path / record["offsets"]
        for p in (ids_path, off_path):
            if not p.is_file():
                raise DataError(p, None, f"missing shard file listed in meta.json; {PREPARE_HINT}")
        expected = record["tokens"] * self.dtype.itemsize
        if ids_path.stat().st_size != expected:
            raise DataError(ids_path, None, f"{ids_path.stat().st_size} bytes, meta.json says {expected} "
                            f"({record['tokens']} {self.dtype.name} ids): truncated or replaced; {PREPARE_HINT}")
        try:
            offsets = np.load(off_path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as err:
            raise DataError(off_path, None, f"unreadable offsets ({err}); {PREPARE_HINT}") from None
        if (offsets.dtype != np.int64 or offsets.ndim != 1 or offsets.size != record["sequences"] + 1
                or offsets[0] != 0 or offsets[-1] != record["tokens"]):
            raise DataError(off_path, None, f"offsets do not match meta.json ({record['sequences']} sequences, "
                            f"{record['tokens']} tokens); {PREPARE_HINT}")
        if record["tokens"] == 0:
            return np.zeros(0, dtype=self.dtype), offsets
        return np.memmap(ids_path, dtype=self.dtype, mode="r"), offsets

    def __len__(self) -> int:
        return int(self._first[-1])

    def locate(self, index: int) -> tuple[int, int]:
        """(shard number, sequence number within it) of sequence ``index``."""
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"sequence {index} out of range for {n} sequences in {self.path}")
        shard = int(np.searchsorted(self._first, index, side="right")) - 1
        return shard, index - int(self._first[shard])

    def __getitem__(self, index: int) -> np.ndarray:
        shard, local = self.locate(int(index))
        offsets = self._offsets[shard]
        return np.array(self._ids[shard][offsets[local]:offsets[local + 1]], dtype=np.int64)

    @property
    def lengths(self) -> np.ndarray:
        """Length (tokens, specials included) of every sequence, int32, read from the offsets only."""
        if self._lengths is None:
            parts = [np.diff(o).astype(np.int32) for o in self._offsets]
            self._lengths = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)
        return self._lengths

    @property
    def token_counts(self) -> np.ndarray:
        """int64 count of each vocabulary id over the corpus (specials included)."""
        if self._counts is None:
            path = self.path / COUNTS
            try:
                counts = np.load(path, allow_pickle=False)
            except (OSError, ValueError) as err:
                raise DataError(path, None, f"unreadable token counts ({err}); {PREPARE_HINT}") from None
            if counts.dtype != np.int64 or counts.shape != (self.vocab_size,) or int(counts.sum()) != self.meta["tokens"]:
                raise DataError(path, None, f"token counts do not match meta.json; {PREPARE_HINT}")
            self._counts = counts
        return self._counts

    def __repr__(self) -> str:
        return (f"TokenShards({str(self.path)!r}: {len(self)} sequences, {self.meta['tokens']} tokens, "
                f"{len(self._ids)} shards, tokenizer {self.meta['tokenizer']!r})")
