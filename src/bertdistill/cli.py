"""Command line: parses arguments and calls ``bertdistill.api``; no logic of its own."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from .data.errors import DataError


def _train_args(p: argparse.ArgumentParser, *, defaults: bool) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=float, default=3.0 if defaults else None)
    g.add_argument("--max-steps", type=int, default=None)
    g.add_argument("--batch-size", type=int, default=32 if defaults else None)
    g.add_argument("--lr", type=float, default=5e-5 if defaults else None)
    g.add_argument("--weight-decay", type=float, default=None)
    g.add_argument("--warmup-ratio", type=float, default=None)
    g.add_argument("--max-grad-norm", type=float, default=None)
    g.add_argument("--grad-accum", type=int, default=None)
    g.add_argument("--eval-every", type=int, default=None, help="optimizer steps between evaluations (default: each epoch)")
    g.add_argument("--save-every", type=int, default=None, help="optimizer steps between checkpoints (default: at each evaluation)")
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("--mixed-precision", choices=["no", "bf16", "fp16"], default=None)
    g.add_argument("--no-length-grouping", action="store_true", help="random batches instead of length-grouped ones")
    g.add_argument("--no-resume", action="store_true", help="start over even if the output folder has a checkpoint")
    g.add_argument("--max-train-examples", type=int, default=None, help="use a seeded subset of the train split")
    g.add_argument("--max-eval-examples", type=int, default=None)
    g.add_argument("--log-with", default=None, help="also log to accelerate trackers, e.g. tensorboard (comma-separated)")


def _train_overrides(a: argparse.Namespace) -> dict:
    out = {
        "epochs": a.epochs, "max_steps": a.max_steps, "batch_size": a.batch_size, "lr": a.lr,
        "weight_decay": a.weight_decay, "warmup_ratio": a.warmup_ratio, "max_grad_norm": a.max_grad_norm,
        "grad_accum": a.grad_accum, "eval_every": a.eval_every, "save_every": a.save_every, "seed": a.seed,
        "mixed_precision": a.mixed_precision, "log_with": a.log_with,
    }
    if a.no_length_grouping:
        out["group_by_length"] = False
    if a.no_resume:
        out["resume"] = False
    return {k: v for k, v in out.items() if v is not None}


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", default="rotten_tomatoes", help="task name (see `bertdistill tasks`)")
    p.add_argument("--data", default=None, help="data folder or file, or hub:<id>; default: the task's offline default")
    p.add_argument("--skip-bad-rows", action="store_true", help="skip malformed rows (their count is reported)")
    p.add_argument("--max-length", type=int, default=None)
    p.add_argument("--text-column", default=None, help="csv/tsv/jsonl: the text column")
    p.add_argument("--text-pair-column", default=None, help="csv/tsv/jsonl: the second text of a pair")
    p.add_argument("--label-column", default=None, help="csv/tsv/jsonl: the label column")


def _data_options(a: argparse.Namespace) -> dict:
    out = {"text_column": a.text_column, "text_pair_column": a.text_pair_column, "label_column": a.label_column}
    return {k: v for k, v in out.items() if v is not None}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bertdistill", description="Knowledge distillation for BERT-family models.")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="offline end-to-end run: teacher, student, comparison table")
    p.add_argument("--output", default="runs/demo")
    p.add_argument("--teacher", default="minilm-l6")
    p.add_argument("--teacher-epochs", type=float, default=2.0)
    p.add_argument("--student-epochs", type=float, default=3.0)
    p.add_argument("--max-train-examples", type=int, default=None)
    p.add_argument("--max-eval-examples", type=int, default=None)
    p.add_argument("--latency-runs", type=int, default=100)

    p = sub.add_parser("finetune", help="fine-tune a teacher on a task")
    _data_args(p)
    p.add_argument("--model", default="minilm-l6", help="local folder, hub id or alias (minilm-l6)")
    p.add_argument("--output", required=True)
    _train_args(p, defaults=True)

    p = sub.add_parser("distill", help="distil a fine-tuned teacher into a student")
    _data_args(p)
    p.add_argument("--teacher", required=True, help="fine-tuned teacher folder")
    p.add_argument("--recipe", default="distilbert", help="shipped recipe name or a YAML path")
    p.add_argument("--student-arch", choices=["same", "distilbert"], default=None)
    p.add_argument("--student-layers", default=None,
                   help="number of layers, a preset (every_other, skip, last, first) or a list like 0,2,4")
    p.add_argument("--student", default=None, help="start from an existing student checkpoint (same vocabulary)")
    p.add_argument("--student-config", default=None,
                   help='random student of another shape: JSON or a .json path, e.g. \'{"hidden_size": 128, "num_hidden_layers": 2}\'')
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--weight", action="append", default=[], metavar="TERM=W", help="override a term's weight")
    p.add_argument("--no-teacher-cache", action="store_true", help="run the teacher every step")
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--output", required=True)
    _train_args(p, defaults=False)

    p = sub.add_parser("evaluate", help="evaluate a saved model on a split")
    _data_args(p)
    p.add_argument("--model", required=True)
    p.add_argument("--split", default="dev")
    p.add_argument("--output", default=None, help="write the metrics JSON here")
    p.add_argument("--batch-size", type=int, default=64)

    p = sub.add_parser("embed", help="feature-extraction baseline (frozen encoder + logistic regression)")
    _data_args(p)
    p.add_argument("--model", default="minilm-l6")
    p.add_argument("--pooling", choices=["cls", "mean"], default="cls")
    p.add_argument("--max-train-examples", type=int, default=None)
    p.add_argument("--output", default=None)

    sub.add_parser("tasks", help="list the known tasks")
    sub.add_parser("recipes", help="list the shipped distillation recipes")

    from .commands import register_all

    register_all(sub)
    return parser


def _layers(value: str | None):
    if value is None:
        return None
    if value.isdigit():
        return int(value)
    if "," in value:
        return [int(x) for x in value.split(",") if x.strip()]
    return value


def _json_arg(value: str | None):
    if value is None:
        return None
    if value.strip().startswith("{"):
        return json.loads(value)
    with open(value) as fh:
        return json.load(fh)


def _weights(items: list[str]) -> dict | None:
    out = {}
    for item in items:
        name, _, value = item.partition("=")
        if not value:
            raise SystemExit(f"--weight expects TERM=VALUE, got {item!r}")
        out[name] = float(value)
    return out or None


def run(args: argparse.Namespace) -> object:
    from . import api

    handler = getattr(args, "handler", None)
    if handler is not None:  # commands registered from bertdistill.commands
        return handler(args)

    if args.command == "demo":
        return api.demo(args.output, teacher=args.teacher, teacher_epochs=args.teacher_epochs,
                        student_epochs=args.student_epochs, max_train_examples=args.max_train_examples,
                        max_eval_examples=args.max_eval_examples, latency_runs=args.latency_runs)
    if args.command == "finetune":
        from .training.engine import TrainConfig

        return api.finetune(args.task, args.model, args.output, args.data, train=TrainConfig(**_train_overrides(args)),
                            max_length=args.max_length or 128, skip_bad_rows=args.skip_bad_rows,
                            max_train_examples=args.max_train_examples, max_eval_examples=args.max_eval_examples,
                            data_options=_data_options(args))
    if args.command == "distill":
        return api.distill(args.teacher, args.task, args.output, args.data, recipe=args.recipe,
                           student_arch=args.student_arch, student_layers=_layers(args.student_layers),
                           student=args.student, student_config=_json_arg(args.student_config),
                           temperature=args.temperature, weights=_weights(args.weight), max_length=args.max_length,
                           skip_bad_rows=args.skip_bad_rows, cache_teacher=not args.no_teacher_cache,
                           cache_dir=args.cache_dir, max_train_examples=args.max_train_examples,
                           max_eval_examples=args.max_eval_examples, train=_train_overrides(args),
                           data_options=_data_options(args))
    if args.command == "evaluate":
        return api.evaluate(args.model, args.task, args.data, split=args.split, output=args.output,
                            batch_size=args.batch_size, max_length=args.max_length or 128,
                            skip_bad_rows=args.skip_bad_rows)
    if args.command == "embed":
        result = api.embed(args.model, args.task, args.data, pooling=args.pooling, output=args.output,
                           max_train=args.max_train_examples)
        print(json.dumps({k: v for k, v in result.items() if not isinstance(v, (list, dict))}, indent=2, default=str))
        return result
    if args.command == "tasks":
        from .data import TASKS

        for name, entry in sorted(TASKS.items()):
            spec = entry.spec
            if spec is None:
                print(f"{name:<16} {'(from the file)':<22} --text-column/--label-column name the columns")
            else:
                print(f"{name:<16} {spec.kind:<22} metrics: {', '.join(spec.metrics)}")
        return None
    if args.command == "recipes":
        from .distill.recipe import list_recipes, load_recipe

        for name in list_recipes():
            print(f"{name:<16} {load_recipe(name).description}")
        return None
    raise SystemExit(f"unknown command {args.command}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        run(args)
    except (DataError, FileNotFoundError, ValueError) as exc:
        print(f"bertdistill {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
