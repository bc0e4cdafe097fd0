"""``prepare_corpus``: raw text -> memory-mapped token shards, streamed, once.

Why a hand-written pipeline and not Hugging Face ``datasets`` (``load_dataset("text")`` then
``map(tokenize, batched=True, num_proc=N)`` into memory-mapped Arrow)? Both tokenise with the
same Rust tokenizer, so tokenising speed is not the difference. What decided it:

1. ``datasets`` is the optional ``hub`` extra (pyarrow, fsspec, ...); preparing a corpus offline
   must work with the core dependencies, and the training side reads shards with numpy alone.
2. Passes and disk: ``load_dataset("text")`` first converts the whole text into an Arrow cache
   (a second copy of the corpus), then ``map`` writes a second cache with the ids; ours reads
   the text once and writes only the ids. Its streaming mode avoids the copy but its ``map``
   has no ``num_proc``.
3. Format: the tokenizer returns Python ints, which Arrow stores as list<int64> unless every
   map declares ``Features`` with uint16; here the uint16/uint32 choice and the overflow check
   are explicit, and the shards are flat arrays with offsets (``np.memmap``, no Arrow reader).
4. The guarantees asked of this command live in our meta.json: a re-run is a no-op when the
   inputs (path, size, mtime) and options are unchanged, a killed run is never read as complete,
   and a folder from another vocabulary is refused. ``datasets`` keys its cache by a
   fingerprint of the transform and the source, and would still need this layer around it.

What remains to write by hand is small: a batched tokenise-and-cut step in numpy
(``encode.py``), a bounded window of worker processes, and a shard writer (``shards.py``).

Memory stays bounded whatever the corpus size: lines are read in batches of ``batch_size``,
at most ``2 x workers`` batches are in flight, token ids are written to the open shard file
as they come, and only the current shard's offsets (8 bytes per sequence) and the token
counts (8 bytes per vocabulary id) are held. Output does not depend on ``workers`` or
``batch_size``: results are consumed in input order and shard boundaries depend only on
sequence lengths.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..data.errors import DataError
from .encode import Encoded, SequenceEncoder, encode_in_worker, init_worker
from .shards import (
    COUNTS,
    FORMAT,
    META,
    VERSION,
    ShardWriter,
    TokenShards,
    dtype_for_vocab,
    is_shard_file,
    read_meta,
    write_json_atomic,
    write_npy_atomic,
)
from ..durable import fsync_dir
from .sources import resolve_sources
from .vocab import resolve_tokenizer, special_ids, tokenizer_name, vocab_hash, vocab_size

DEFAULT_SHARD_TOKENS = 1 << 26  # 64M tokens: 128 MB of uint16 per shard


def check_options(max_length: int, min_length: int, max_unk_ratio: float, workers: int,
                  shard_tokens: int, batch_size: int) -> None:
    if max_length < 3:
        raise ValueError(f"--max-length must be >= 3 ([CLS] + one token + [SEP]), got {max_length}")
    if not 3 <= min_length <= max_length:
        raise ValueError(f"--min-length must be between 3 and --max-length ({max_length}), got {min_length}")
    if not 0.0 <= max_unk_ratio <= 1.0:
        raise ValueError(f"--max-unk-ratio must be between 0 and 1, got {max_unk_ratio}")
    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    if shard_tokens < 1:
        raise ValueError(f"--shard-tokens must be >= 1, got {shard_tokens}")
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")


def clear_output(folder: Path) -> None:
    """Empty a corpus folder of its own files (meta.json first), refusing a folder with others."""
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--output {folder} is a file; give a folder")
    folder.mkdir(parents=True, exist_ok=True)
    foreign = sorted(p.name for p in folder.iterdir() if not is_shard_file(p.name))
    if foreign:
        raise ValueError(f"--output {folder} holds files that are not token shards ({', '.join(foreign[:3])}"
                         f"{', ...' if len(foreign) > 3 else ''}); choose an empty or new folder")
    (folder / META).unlink(missing_ok=True)
    fsync_dir(folder)
    for p in folder.iterdir():
        p.unlink()


def count_tokens(ids: np.ndarray, size: int) -> np.ndarray:
    """int64 count of each id in ``ids``; an id outside the vocabulary is an error, never dropped."""
    found = np.bincount(ids, minlength=size)
    if found.size > size:
        raise OverflowError(f"token id {found.size - 1} is outside the vocabulary of {size} ids")
    return found


def batches(sources, batch_size: int, bar):
    """Lists of up to ``batch_size`` documents, in input order, advancing the bytes bar."""
    batch = []
    for source in sources:
        for text, nbytes in source.lines():
            batch.append(text)
            bar.update(nbytes)
            if len(batch) == batch_size:
                yield batch
                batch = []
    if batch:
        yield batch


def encoded_batches(encoder: SequenceEncoder, batch_iter, workers: int):
    """``Encoded`` results in input order; with workers > 1, a bounded window of pool tasks."""
    if workers == 1:
        for lines in batch_iter:
            yield encoder(lines)
        return
    ctx = multiprocessing.get_context("spawn")  # the Rust tokenizer's threads do not survive fork
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    with ctx.Pool(workers, initializer=init_worker, initargs=(encoder,)) as pool:
        pending: collections.deque = collections.deque()
        for lines in batch_iter:
            pending.append(pool.apply_async(encode_in_worker, (lines,)))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def prepare_corpus(
    texts,
    tokenizer,
    output: str | os.PathLike,
    *,
    max_length: int = 128,
    min_length: int = 8,
    max_unk_ratio: float = 0.5,
    workers: int = 1,
    shard_tokens: int = DEFAULT_SHARD_TOKENS,
    batch_size: int = 1000,
    force: bool = False,
    progress: bool = True,
) -> dict:
    """Tokenise raw text into a folder of token shards; returns a summary dict.

    ``texts``: text files (one document per line), folders of them, or ``task:NAME[:SPLIT]``.
    ``tokenizer``: a fast tokenizer's name, alias (``minilm-l6``), folder, or object.
    Sequences hold at most ``max_length`` tokens including [CLS]/[SEP]; those shorter than
    ``min_length`` tokens or with more than ``max_unk_ratio`` [UNK] pieces are dropped and
    counted. A folder already prepared from the same inputs and options is left as it is
    (``summary["skipped"]`` is True) unless ``force``.
    """
    check_options(max_length, min_length, max_unk_ratio, workers, shard_tokens, batch_size)
    sources = resolve_sources(texts)
    output = Path(output)
    tok = resolve_tokenizer(tokenizer)
    if not getattr(tok, "is_fast", False) or getattr(tok, "backend_tokenizer", None) is None:
        raise ValueError(f"--tokenizer {tokenizer_name(tok)!r} is not a fast (Rust) tokenizer; corpus "
                         "preparation needs one (tokenizer.json)")
    specials = special_ids(tok)
    for role in ("cls", "sep"):
        if role not in specials:
            raise ValueError(f"--tokenizer {tokenizer_name(tok)!r} has no {role.upper()} token")
    size = vocab_size(tok)
    dtype = dtype_for_vocab(size)
    name = str(tokenizer) if isinstance(tokenizer, (str, os.PathLike)) else tokenizer_name(tok)
    options = {"max_length": max_length, "min_length": min_length, "max_unk_ratio": max_unk_ratio,
               "shard_tokens": shard_tokens}
    fingerprint = {"vocab_hash": vocab_hash(tok), "options": options,
                   "inputs": [s.fingerprint() for s in sources]}

    if not force and (output / META).is_file():
        try:
            meta = read_meta(output)
            if meta.get("fingerprint") == fingerprint:
                TokenShards(output)  # every shard present with the right size
                return summary_of(meta, output, skipped=True)
        except DataError:
            pass  # incomplete or damaged: prepare again

    clear_output(output)
    encoder = SequenceEncoder(tok.backend_tokenizer.to_str(), cls_id=specials["cls"], sep_id=specials["sep"],
                              unk_id=specials.get("unk"), max_length=max_length, min_length=min_length,
                              max_unk_ratio=max_unk_ratio)
    writer = ShardWriter(output, dtype, shard_tokens)
    counts = np.zeros(size, dtype=np.int64)
    totals = Encoded(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    sequences = 0
    start = time.perf_counter()
    bar = tqdm(total=sum(s.size for s in sources), unit="B", unit_scale=True, desc="corpus prepare",
               disable=None if progress else True)
    try:
        with bar:
            for enc in encoded_batches(encoder, batches(sources, batch_size, bar), workers):
                writer.add(enc.ids, enc.lengths)
                counts += count_tokens(enc.ids, size)
                sequences += int(enc.lengths.size)
                totals.documents += enc.documents
                totals.too_short += enc.too_short
                totals.too_many_unknown += enc.too_many_unknown
                bar.set_postfix(sequences=sequences, refresh=False)
        shards = writer.finish()
    except BaseException:
        writer.abort()
        raise
    seconds = time.perf_counter() - start
    if sequences == 0:
        clear_output(output)
        raise DataError(", ".join(s.name for s in sources), None,
                        f"no sequence left: all {totals.too_short + totals.too_many_unknown} were shorter than "
                        f"--min-length {min_length} tokens or had more than --max-unk-ratio {max_unk_ratio} [UNK]")
    tokens = int(counts.sum())
    write_npy_atomic(output / COUNTS, counts)
    meta = {
        "format": FORMAT, "version": VERSION, "complete": True,
        "tokenizer": name, "tokenizer_path": tokenizer_name(tok), "vocab_size": size,
        "vocab_hash": fingerprint["vocab_hash"], "special_ids": specials, "dtype": dtype.name,
        **options,
        "sequences": sequences, "tokens": tokens, "documents": totals.documents,
        "dropped": {"too_short": totals.too_short, "too_many_unknown": totals.too_many_unknown},
        "inputs": fingerprint["inputs"], "shards": shards, "fingerprint": fingerprint,
        "seconds": round(seconds, 3),
    }
    write_json_atomic(output / META, meta)
    return summary_of(meta, output, skipped=False)


def summary_of(meta: dict, output: Path, *, skipped: bool) -> dict:
    seconds = meta.get("seconds") or 0.0
    return {
        "output": str(output), "skipped": skipped, "tokenizer": meta["tokenizer"], "dtype": meta["dtype"],
        "sequences": meta["sequences"], "tokens": meta["tokens"], "documents": meta["documents"],
        "dropped": dict(meta["dropped"]), "shards": len(meta["shards"]),
        "bytes": meta["tokens"] * np.dtype(meta["dtype"]).itemsize,
        "seconds": seconds, "tokens_per_second": round(meta["tokens"] / seconds, 1) if seconds else None,
    }


def format_summary(summary: dict) -> str:
    """Human-readable lines for a ``prepare_corpus`` summary."""
    if summary["skipped"]:
        head = f"{summary['output']}: already prepared from the same inputs and options; nothing to do"
    else:
        head = f"prepared {summary['output']} in {summary['seconds']:.1f} s ({summary['tokens_per_second']:,.0f} tokens/s)"
    dropped = summary["dropped"]
    return "\n".join([
        head,
        f"  documents {summary['documents']:,} -> sequences {summary['sequences']:,}, "
        f"tokens {summary['tokens']:,} ({summary['dtype']}, {summary['bytes'] / 2**20:,.1f} MiB "
        f"in {summary['shards']} shard{'s' if summary['shards'] != 1 else ''})",
        f"  dropped: {dropped['too_short']:,} too short, {dropped['too_many_unknown']:,} mostly [UNK]",
        f"  tokenizer {summary['tokenizer']}",
    ])

