"""`bertdistill embed-eval --model M [--model M2 ...]`: sentence-embedding models scored with no
fine-tuning (STS-B Spearman of cosine similarity, SQuAD paragraph retrieval), a table + JSON."""

from __future__ import annotations

import argparse

from .options import output_file


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "embed-eval", help="score sentence-embedding models: STS-B Spearman and SQuAD paragraph retrieval",
        description="Embed with each --model (a sentence-transformers folder, minilm-l6, or a student of "
                    "`general-distill --recipe general_embedding`), no fine-tuning: STS-B dev and test Spearman "
                    "of cosine similarity; every SQuAD question against every distinct paragraph, recall@1, "
                    "recall@5 and MRR.")
    p.add_argument("--model", action="append", required=True, metavar="MODEL",
                   help="folder, hub id or alias; repeat to compare models (e.g. teacher and student)")
    p.add_argument("--stsb", default=None,
                   help="GLUE STS-B folder with dev.tsv and a labelled test file (default: DATA/glue/STS-B)")
    p.add_argument("--squad", default=None, help="SQuAD v1.1 JSON file (default: DATA/squad/dev-v1.1.json)")
    p.add_argument("--no-stsb", action="store_true", help="skip STS-B")
    p.add_argument("--no-squad", action="store_true", help="skip SQuAD retrieval")
    p.add_argument("--max-questions", type=int, default=None,
                   help="score N evenly spread SQuAD questions (every paragraph stays a candidate)")
    p.add_argument("--batch-size", type=int, default=64, help="sentences per forward (default: 64)")
    p.add_argument("--max-length", type=int, default=None,
                   help="tokens per sentence (default: the model's max_seq_length, else its positions)")
    p.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default: cuda when present")
    p.add_argument("--output", type=output_file, default=None, help="write the JSON result here")
    p.set_defaults(handler=run)


def format_rows(result: dict) -> str:
    columns = ("stsb_dev_spearman", "stsb_test_spearman", "squad_recall@1", "squad_recall@5", "squad_mrr")
    shown = [c for c in columns if any(c in row for row in result["models"])]
    lines = [" | ".join(["model", *shown]), " | ".join(["---"] * (len(shown) + 1))]
    for row in result["models"]:
        lines.append(" | ".join([row["model"], *(f"{row[c]:.4f}" if c in row else "-" for c in shown)]))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict:
    from ..api import embed_eval

    result = embed_eval(args.model, stsb=False if args.no_stsb else (args.stsb or True),
                        squad=False if args.no_squad else (args.squad or True), output=args.output,
                        batch_size=args.batch_size, max_length=args.max_length, max_questions=args.max_questions,
                        device=args.device)
    print(format_rows(result))
    if args.output:
        print(f"results written to {args.output}")
    return result
