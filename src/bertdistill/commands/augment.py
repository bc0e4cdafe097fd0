"""``bertdistill augment``: write an augmented transfer set (JSON lines) for distillation.

    bertdistill augment --task sst2 --data DIR --method tang --copies 20 --output runs/sst2_tang.jsonl
    bertdistill augment --data reviews.csv --label-column sentiment --method shuffle --output runs/aug.jsonl
    bertdistill augment --list

The file keeps every original example (with its label) and adds up to N distinct copies
of each (label null: the teacher labels them once when a recipe uses the file through
``augment: {file: ...}``). Options are checked before any model, tagger or vector
package is loaded.
"""

from __future__ import annotations

import argparse
import json

from .options import add_data_args, data_options

#: method option -> the CLI flag that sets it (None: not given)
OPTION_FLAGS = ("p_mask", "p_pos", "p_ng", "max_ngram", "tagger", "p", "top_k", "mlm_model", "mode", "window")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("augment", help="write an augmented transfer set (Tang, TinyBERT, EDA-style, noise)")
    p.add_argument("--list", action="store_true", help="list the augmentation methods and their options")
    add_data_args(p, with_max_length=False)
    p.add_argument("--split", default="train", help="split to augment (default: train)")
    p.add_argument("--method", default="tang", help="augmentation family (see --list)")
    p.add_argument("--copies", type=int, default=20, help="N perturbed copies per example (duplicates dropped)")
    p.add_argument("--subset", type=int, default=None, help="augment only a seeded subset of this many examples "
                   "(all originals are kept)")
    p.add_argument("--max-examples", type=int, default=None, help="use a seeded subset of the split")
    p.add_argument("--seed", type=int, default=0, help="seeds every random choice (default: 0)")
    p.add_argument("--pair-sides", choices=["one", "both"], default="both", help="pairs: perturb one side or both")
    p.add_argument("--output", default=None, help="the JSON-lines file to write")
    g = p.add_argument_group("method options (each applies to the methods that take it)")
    g.add_argument("--p-mask", type=float, default=None, help="tang: probability a word becomes [MASK] (0.1)")
    g.add_argument("--p-pos", type=float, default=None, help="tang: POS-guided replacement probability (0.1)")
    g.add_argument("--p-ng", type=float, default=None, help="tang: n-gram sampling probability (0.25)")
    g.add_argument("--max-ngram", type=int, default=None, help="tang: largest n of n-gram sampling (5)")
    g.add_argument("--tagger", default=None, help="tang: POS tagger (spacy)")
    g.add_argument("--p", type=float, default=None, help="replacement/noise probability of the other methods")
    g.add_argument("--top-k", type=int, default=None, help="tinybert: candidates per word (15)")
    g.add_argument("--mlm-model", default=None, help="tinybert: a masked-LM folder for single-piece words")
    g.add_argument("--mode", default=None, help="typo: random or qwerty")
    g.add_argument("--window", type=int, default=None, help="shuffle: how far a word may move (3)")
    p.set_defaults(handler=run_augment)


def run_augment(args: argparse.Namespace) -> dict | None:
    from ..augment import AUGMENTERS
    from ..augment.registry import flag

    if args.list:
        for name, cls in sorted(AUGMENTERS.items()):
            print(f"{name:<12} options: {', '.join(flag(p) for p in cls.params) or '-'}")
        return None
    if args.output is None:
        raise ValueError("--output is required: the JSON-lines file to write")
    if args.copies < 1:
        raise ValueError(f"--copies must be >= 1, got {args.copies}")
    if args.method not in AUGMENTERS:
        raise ValueError(f"unknown --method {args.method!r}; known: {', '.join(sorted(AUGMENTERS))}")
    params = {k: getattr(args, k) for k in OPTION_FLAGS if getattr(args, k) is not None}

    from ..augment import build_transfer_set
    from ..augment.spec import check_augment_spec
    from ..data import load_task
    from ..pipelines.common import seeded_subset

    check_augment_spec({"method": args.method, "copies": args.copies, "subset": args.subset, "params": params})
    data = load_task(args.task, args.data, skip_bad_rows=args.skip_bad_rows, **data_options(args))
    examples = seeded_subset(data.split(args.split), args.max_examples, args.seed)
    _, meta = build_transfer_set(examples, args.method, copies=args.copies, seed=args.seed, subset=args.subset,
                                 pair_sides=args.pair_sides, output=args.output, **params)
    print(json.dumps(meta, indent=2))
    return meta
