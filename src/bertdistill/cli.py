"""Command line: parses arguments and calls ``bertdistill.api``; no logic of its own.

Errors a user can cause (bad flags, files, data, JSON, recipes, models) end in one line,
``bertdistill COMMAND: error: ...``, and exit code 2; ``--verbose`` (before or after the
command) shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings

from .commands.options import (
    CACHE_HELP,
    HelpFormatter,
    add_data_args,
    add_model_args,
    add_train_args,
    data_options,
    json_option,
    model_options,
    nonnegative_int,
    output_dir,
    output_file,
    positive_float,
    positive_int,
    student_layers,
    term_weights,
    train_overrides,
)
from .commands.qa_options import MAX_LENGTH_DEFAULT, add_qa_args, qa_overrides

# former private names, kept for command modules written against them
_data_args, _data_options, _train_args, _train_overrides = add_data_args, data_options, add_train_args, train_overrides

EPILOG = (f"Teacher outputs are cached in {CACHE_HELP} (`bertdistill cache list|clear`). "
          "Errors print one line and exit with code 2; --verbose shows tracebacks.")


class Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line naming the command and the flag."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="bertdistill", description="Knowledge distillation for BERT-family models.", epilog=EPILOG)
    parser.add_argument("-v", "--verbose", action="store_true", help="info logs, and tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)

    p = sub.add_parser("demo", help="offline end-to-end run: teacher, student, comparison table")
    p.add_argument("--output", type=output_dir, default="runs/demo", help="run folder")
    p.add_argument("--teacher", default="minilm-l6", help="base model to fine-tune as the teacher")
    p.add_argument("--teacher-epochs", type=positive_float, default=2.0, help="teacher fine-tuning epochs")
    p.add_argument("--student-epochs", type=positive_float, default=3.0, help="distillation epochs")
    p.add_argument("--max-train-examples", type=positive_int, default=None, help="seeded train subset (default: all)")
    p.add_argument("--max-eval-examples", type=positive_int, default=None, help="seeded dev subset (default: all)")
    p.add_argument("--latency-runs", type=positive_int, default=100, help="batch-1 forwards timed per model")

    p = sub.add_parser("finetune", help="fine-tune a teacher on a task or your own data")
    add_data_args(p, max_length=None, max_length_default=MAX_LENGTH_DEFAULT)
    add_qa_args(p)
    p.add_argument("--model", default="minilm-l6",
                   help="base model: local folder, hub id ([org/]name) or alias (minilm-l6)")
    p.add_argument("--output", type=output_dir, required=True, help="run folder; the best model goes to OUTPUT/best")
    p.add_argument("--head", choices=["default", "textrcnn"], default="default",
                   help="textrcnn: BiLSTM + max-pool head on the second-to-last layer (a teacher for KD at T=5)")
    add_model_args(p)
    add_train_args(p, defaults=True)

    p = sub.add_parser("distill", help="distil a fine-tuned teacher into a student",
                       description="Distil a fine-tuned teacher into a student. Student shape, loss terms and "
                                   "training defaults come from the recipe (`bertdistill recipes`); flags override them.")
    add_data_args(p, max_length=None)
    add_qa_args(p)
    p.add_argument("--teacher", required=True,
                   help="the fine-tuned teacher (e.g. runs/teacher/best from `bertdistill finetune`)")
    p.add_argument("--recipe", default="distilbert", help="shipped recipe name (`bertdistill recipes`) or a YAML path")
    p.add_argument("--output", type=output_dir, required=True,
                   help="run folder: OUTPUT/student, run_config.json, log.jsonl, results.json")
    g = p.add_argument_group("student (default: the recipe's student section)")
    g.add_argument("--student-arch", choices=["same", "distilbert", "bilstm"], default=None,
                   help="same architecture as the teacher, DistilBERT (no token types, no pooler), "
                        "or a word-level BiLSTM (recipe bilstm)")
    g.add_argument("--student-layers", default=None,
                   help="number of layers, a preset (every_other, every_other_last, skip, last, first) or a 0-based list like 0,2,4")
    g.add_argument("--student", default=None, help="start from an existing student checkpoint (same vocabulary)")
    g.add_argument("--student-config", default=None,
                   help='random student of another shape: JSON or a .json path, e.g. \'{"hidden_size": 128, "num_hidden_layers": 2}\'')
    g = p.add_argument_group("loss terms (default: the recipe's terms)")
    g.add_argument("--temperature", type=positive_float, default=None,
                   help="softmax temperature of every term that uses one")
    g.add_argument("--weight", "--weights", dest="weight", action="append", default=[], metavar="TERM=W[,TERM=W]",
                   help="override term weights, e.g. --weight cosine=0.5,hard=0 (repeatable)")
    g = p.add_argument_group("runs")
    g.add_argument("--allow-untrained-teacher", action="store_true",
                   help="distil even from a teacher without a fine-tuned head (it is refused otherwise)")
    g.add_argument("--no-teacher-cache", action="store_true", help="run the teacher every step")
    g.add_argument("--cache-dir", default=None, help=f"teacher-output cache folder (default: {CACHE_HELP})")
    g.add_argument("--cache-attention", choices=["eager", "sdpa"], default=None,
                   help="the teacher's attention kernel while the cache is built (default: sdpa, unless "
                        "attention maps are cached); eager is faster on a CPU for short sentences")
    g.add_argument("--compact-embeddings", action="store_true",
                   help="train only the word-embedding rows the training set reads (the others get AdamW's "
                        "weight decay alone, as in a dense run): a shorter step for large vocabularies")
    g.add_argument("--latency-runs", type=nonnegative_int, default=30,
                   help="batch-1 forwards timed per model at the end (0: no timing)")
    add_model_args(p)
    add_train_args(p, defaults=False)

    p = sub.add_parser("evaluate", help="evaluate a saved model on a split")
    add_data_args(p, max_length=None, max_length_default=MAX_LENGTH_DEFAULT)
    add_qa_args(p)
    p.add_argument("--model", required=True, help="a saved model folder (or hub id)")
    p.add_argument("--split", default="dev", help="split to score: train, dev or test")
    p.add_argument("--output", type=output_file, default=None, help="write the metrics JSON to this file")
    p.add_argument("--batch-size", type=positive_int, default=64, help="examples per forward")
    add_model_args(p)

    p = sub.add_parser("embed", help="feature-extraction baseline (frozen encoder + logistic regression)")
    add_data_args(p)
    p.add_argument("--model", default="minilm-l6", help="encoder: local folder, hub id or alias")
    p.add_argument("--pooling", choices=["cls", "mean"], default="cls", help="sentence vector: [CLS] state or mean")
    p.add_argument("--max-train-examples", type=positive_int, default=None, help="seeded train subset (default: all)")
    p.add_argument("--output", type=output_file, default=None, help="write the result JSON to this file")
    add_model_args(p)

    p = sub.add_parser("predict", help="predict labels / scores / entities for texts, or answers to questions, "
                                       "with a saved model")
    p.add_argument("--model", required=True, help="a saved model folder (e.g. runs/student/student)")
    p.add_argument("--text", action="append", default=[], help="a text to predict (repeatable)")
    p.add_argument("--question", default=None, help="question answering: a question about --context")
    p.add_argument("--context", default=None, help="question answering: the text that holds the answer")
    p.add_argument("--input", default=None, help="a file of texts: one per line, or .jsonl with a \"text\" field "
                                                 "(a QA model: .jsonl with \"question\" and \"context\")")
    p.add_argument("--output", type=output_file, default=None, help="write JSONL here (default: print it)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="texts per forward")
    p.add_argument("--max-length", type=positive_int, default=None,
                   help=f"tokens per text after truncation (default: {MAX_LENGTH_DEFAULT})")
    add_qa_args(p)
    add_model_args(p)

    sub.add_parser("tasks", help="list the known tasks")
    sub.add_parser("recipes", help="list the shipped distillation recipes")

    from .commands import register_all

    register_all(sub)
    for command in sub.choices.values():  # --verbose also works after the command
        if not any("--verbose" in a.option_strings for a in command._actions):
            command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                                 help="info logs, and tracebacks on errors")
    return parser


def run(args: argparse.Namespace) -> object:
    handler = getattr(args, "handler", None)
    if handler is not None:  # commands registered from bertdistill.commands
        return handler(args)

    if args.command in ("tasks", "recipes"):
        return _listing(args.command)
    from . import api

    if args.command == "demo":
        return api.demo(args.output, teacher=args.teacher, teacher_epochs=args.teacher_epochs,
                        student_epochs=args.student_epochs, max_train_examples=args.max_train_examples,
                        max_eval_examples=args.max_eval_examples, latency_runs=args.latency_runs)
    if args.command == "finetune":
        return api.finetune(args.task, args.model, args.output, args.data, train=train_overrides(args),
                            max_length=args.max_length, skip_bad_rows=args.skip_bad_rows,
                            max_train_examples=args.max_train_examples, max_eval_examples=args.max_eval_examples,
                            head=args.head, qa_options=qa_overrides(args), **data_options(args),
                            **model_options(args))
    if args.command == "distill":
        return api.distill(args.teacher, args.task, args.output, args.data, recipe=args.recipe,
                           student_arch=args.student_arch, student_layers=student_layers(args.student_layers),
                           student=args.student, student_config=json_option("--student-config", args.student_config),
                           temperature=args.temperature, weights=term_weights(args.weight),
                           max_length=args.max_length, skip_bad_rows=args.skip_bad_rows,
                           cache_teacher=not args.no_teacher_cache, cache_dir=args.cache_dir,
                           cache_attention=args.cache_attention, compact_embeddings=args.compact_embeddings,
                           max_train_examples=args.max_train_examples, max_eval_examples=args.max_eval_examples,
                           train=train_overrides(args), allow_untrained_teacher=args.allow_untrained_teacher,
                           latency_runs=args.latency_runs, qa_options=qa_overrides(args), **data_options(args),
                           **model_options(args))
    if args.command == "evaluate":
        return api.evaluate(args.model, args.task, args.data, split=args.split, output=args.output,
                            batch_size=args.batch_size, max_length=args.max_length, skip_bad_rows=args.skip_bad_rows,
                            qa_options=qa_overrides(args), **data_options(args), **model_options(args))
    if args.command == "embed":
        result = api.embed(args.model, args.task, args.data, pooling=args.pooling, output=args.output,
                           max_train=args.max_train_examples, max_length=args.max_length,
                           skip_bad_rows=args.skip_bad_rows, **data_options(args), **model_options(args))
        print(json.dumps({k: v for k, v in result.items() if not isinstance(v, (list, dict))}, indent=2, default=str))
        return result
    if args.command == "predict":
        return _predict(api, args)
    raise ValueError(f"unknown command {args.command}")


def _listing(command: str) -> None:
    if command == "tasks":
        from .data import TASKS

        for name, entry in sorted(TASKS.items()):
            spec = entry.spec
            if spec is None:
                print(f"{name:<16} {'(from the file)':<22} --text-column/--label-column name the columns")
            else:
                print(f"{name:<16} {spec.kind:<22} metrics: {', '.join(spec.metrics)}")
    if command == "recipes":
        from .distill.recipe import list_recipes, load_recipe

        for name in list_recipes():
            print(f"{name:<16} {load_recipe(name).description}")


def _predict(api, args: argparse.Namespace) -> list[dict]:
    from .prediction import read_texts
    from .qa_prediction import is_qa_model

    if args.question is not None or args.context is not None or is_qa_model(args.model):
        rows = _answer(api, args)
    else:
        if bool(args.text) == bool(args.input):
            raise ValueError("predict needs either --text (repeatable) or --input FILE")
        if qa_overrides(args):
            raise ValueError(f"{', '.join('--' + k.replace('_', '-') for k in qa_overrides(args))}: for question "
                             "answering only (--question / --context)")
        texts = args.text or read_texts(args.input)
        rows = api.predict(args.model, texts, output=args.output, batch_size=args.batch_size,
                           max_length=args.max_length or 128, **model_options(args))
    if args.output:
        print(f"{len(rows)} predictions written to {args.output}")
    else:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
    return rows


def _answer(api, args: argparse.Namespace) -> list[dict]:
    """``predict`` for a QA model: ``--question`` with ``--context``, or ``--input`` JSONL rows."""
    from .qa_prediction import read_questions

    if args.text:
        raise ValueError("--text is for classification and tagging models; a QA model takes --question and --context")
    if args.input and (args.question is not None or args.context is not None):
        raise ValueError("give either --question and --context, or --input FILE.jsonl, not both")
    if not args.input and (args.question is None or args.context is None):
        raise ValueError("--question and --context go together: the answer is a span of the context")
    questions, contexts = read_questions(args.input) if args.input else ([args.question], [args.context])
    return api.answer(args.model, questions, contexts, output=args.output, batch_size=args.batch_size,
                      max_length=args.max_length, qa_options=qa_overrides(args), **model_options(args))


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (whitespace collapsed), or its type when empty."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"bertdistill: warning: {one_line(message) if isinstance(message, Warning) else message}\n"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    verbose = bool(getattr(args, "verbose", False))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    formatwarning = warnings.formatwarning
    if not verbose:
        warnings.formatwarning = _one_line_warning
    try:
        run(args)
    except (ValueError, OSError) as exc:  # DataError, RecipeError, FileNotFoundError, bad JSON, ...
        if verbose:
            raise
        print(f"bertdistill {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        if verbose or type(exc).__name__ != "TrainingDiverged":
            raise
        print(f"bertdistill {args.command}: error: {one_line(exc)} (try a lower --lr)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"bertdistill {args.command}: interrupted (run the same command again to resume)", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = formatwarning
    return 0


if __name__ == "__main__":
    sys.exit(main())
