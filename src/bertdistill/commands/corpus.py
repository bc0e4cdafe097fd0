"""`bertdistill corpus prepare|info`: raw text -> memory-mapped token shards, and what a folder holds."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    corpus = subparsers.add_parser("corpus", help="prepare raw text for general (masked-LM) distillation")
    sub = corpus.add_subparsers(dest="corpus_command", required=True, help="prepare | info")

    p = sub.add_parser("prepare", help="tokenise text files once into memory-mapped token shards",
                       description="Tokenise raw text (one document per line, blank lines skipped) into "
                                   "[CLS] ... [SEP] sequences stored as uint16/uint32 token shards. A re-run "
                                   "on the same inputs and options does nothing.")
    p.add_argument("--text", nargs="+", required=True, metavar="FILE",
                   help="text files, folders of .txt/.raw/.tokens files, or task:NAME[:SPLIT] (e.g. task:sst2)")
    p.add_argument("--tokenizer", required=True, help="fast tokenizer: model folder, hub id or alias (minilm-l6)")
    p.add_argument("--output", required=True, help="folder for the shards (created; must hold nothing else)")
    p.add_argument("--max-length", type=int, default=128, help="tokens per sequence, [CLS]/[SEP] included")
    p.add_argument("--min-length", type=int, default=8, help="drop sequences shorter than this (tokens)")
    p.add_argument("--max-unk-ratio", type=float, default=0.5, help="drop sequences with a larger share of [UNK]")
    p.add_argument("--workers", type=int, default=1, help="tokenising processes")
    p.add_argument("--shard-tokens", type=int, default=None, help="tokens per shard file (default 67,108,864)")
    p.add_argument("--batch-size", type=int, default=1000, help="lines tokenised per batch")
    p.add_argument("--force", action="store_true", help="prepare again even if the folder is up to date")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=prepare)

    p = sub.add_parser("info", help="describe a prepared corpus folder")
    p.add_argument("folder")
    p.add_argument("--top", type=int, default=10, help="show the N most frequent tokens")
    p.set_defaults(handler=info)


def prepare(args: argparse.Namespace) -> dict:
    from ..corpus import DEFAULT_SHARD_TOKENS, format_summary, prepare_corpus

    summary = prepare_corpus(
        args.text, args.tokenizer, args.output, max_length=args.max_length, min_length=args.min_length,
        max_unk_ratio=args.max_unk_ratio, workers=args.workers, batch_size=args.batch_size,
        shard_tokens=args.shard_tokens or DEFAULT_SHARD_TOKENS, force=args.force, progress=not args.no_progress,
    )
    print(format_summary(summary))
    return summary


def info(args: argparse.Namespace) -> dict:
    import numpy as np

    from ..corpus import TokenShards

    shards = TokenShards(args.folder)
    meta, lengths = shards.meta, shards.lengths
    print(f"{shards.path}: {len(shards):,} sequences, {meta['tokens']:,} tokens ({meta['dtype']}, "
          f"{len(meta['shards'])} shards)")
    print(f"  tokenizer {meta['tokenizer']} (vocabulary {meta['vocab_size']:,} ids, sha256 {meta['vocab_hash'][:12]})")
    print(f"  max length {meta['max_length']}, min length {meta['min_length']}, max [UNK] ratio {meta['max_unk_ratio']}")
    print(f"  sequence length: mean {lengths.mean():.1f}, median {int(np.median(lengths))}, "
          f"min {lengths.min()}, max {lengths.max()}")
    print(f"  documents {meta['documents']:,}; dropped {meta['dropped']['too_short']:,} too short, "
          f"{meta['dropped']['too_many_unknown']:,} mostly [UNK]")
    for source in meta["inputs"]:
        print(f"  input {source['source']}")
    if args.top > 0:
        counts = shards.token_counts
        top = np.argsort(-counts, kind="stable")[: args.top]
        print("  most frequent ids: " + ", ".join(f"{int(i)}×{int(counts[i]):,}" for i in top))
    return meta
