"""Option groups shared by every command: data flags, model flags, training flags.

Command modules call ``add_data_args(parser)`` and pass ``data_options(args)`` to the API,
so every command that reads data honours the same flags. Value checks live in the
``type=`` functions: a bad value is refused by argparse (exit code 2) with the flag's name.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

TRAIN_DEFAULTS = {  # bertdistill.training.engine.TrainConfig's defaults, shown by `finetune --help`
    "epochs": 3.0, "batch_size": 32, "lr": 5e-5, "weight_decay": 0.01, "warmup_ratio": 0.1,
    "max_grad_norm": 1.0, "grad_accum": 1, "seed": 42, "mixed_precision": "no",
    "optimizer": "fused", "dropout_draws": "torch", "cpu_allocator": "keep",
}
CACHE_HELP = "$BERTDISTILL_CACHE/teacher, else ~/.cache/bertdistill/teacher"


class HelpFormatter(argparse.HelpFormatter):
    """Shows ``(default: X)`` after an option's help when it has a meaningful default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS, []):
            return text
        if action.option_strings and action.nargs != 0:
            return f"{text} (default: %(default)s)"
        return text


# ---- value checks ------------------------------------------------------------------------------

def _whole(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be at least {low}, got {text}")
    return value


def positive_int(text: str) -> int:
    return _whole(text, 1)


def nonnegative_int(text: str) -> int:
    return _whole(text, 0)


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def nonnegative_float(text: str) -> float:
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def fraction(text: str) -> float:
    value = _finite(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a fraction in [0, 1), got {text}")
    return value


def output_dir(text: str) -> str:
    if Path(text).is_file():
        raise argparse.ArgumentTypeError(f"{text} is an existing file; give a folder")
    return text


def output_file(text: str) -> str:
    if Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name")
    return text


def comma_list(text: str) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
    return items


# ---- groups ------------------------------------------------------------------------------------

def add_data_args(p: argparse.ArgumentParser, *, max_length: int | None = 128, with_max_length: bool = True,
                  max_length_default: str = "the recipe's") -> None:
    """The data flags every data-reading command takes (``with_max_length=False``: a command that
    does not tokenise, such as ``augment``, leaves ``--max-length`` out; ``max_length_default``:
    what the help says the default is when ``max_length`` is None)."""
    g = p.add_argument_group("data (your own: --data FILE.csv|.tsv|.jsonl or a folder of train/dev/test files)")
    g.add_argument("--task", default=None,
                   help="task name (see `bertdistill tasks`); default: csv/tsv/jsonl from --data's extension, "
                        "or rotten_tomatoes when --data is not given either")
    g.add_argument("--data", default=None,
                   help="a .csv/.tsv/.jsonl file, a folder with train.*, dev.* or validation.*, test.*, "
                        "a GLUE/CoNLL folder, or hub:<dataset id>; default: the task's offline copy")
    g.add_argument("--text-column", default=None, help="csv/tsv/jsonl: the text column (default: text, else sentence)")
    g.add_argument("--text-pair-column", default=None,
                   help="csv/tsv/jsonl: the second text of a sentence pair (default: none, single sentences)")
    g.add_argument("--label-column", default=None, help="csv/tsv/jsonl: the label column (default: label)")
    g.add_argument("--task-kind", choices=["classification", "regression"], default=None,
                   help="csv/tsv/jsonl: classification (labels are names) or regression (labels are numbers) "
                        "(default: classification)")
    g.add_argument("--labels", type=comma_list, default=None, metavar="A,B,C",
                   help="csv/tsv/jsonl: the label names in class-id order (default: sorted from the train split)")
    g.add_argument("--delimiter", default=None,
                   help="csv/tsv: the field separator (default: ',' for .csv, TAB for .tsv)")
    g.add_argument("--validation-split", type=fraction, default=0.1, metavar="FRACTION",
                   help="when the data has no dev split, hold out this seeded fraction of train as dev (0: off)")
    g.add_argument("--skip-bad-rows", action="store_true", help="skip malformed rows (their count is reported)")
    if not with_max_length:
        return
    g.add_argument("--max-length", type=positive_int, default=max_length,
                   help="tokens per example after truncation" + ("" if max_length else f" (default: {max_length_default})"))


def data_options(a: argparse.Namespace) -> dict:
    """The data keywords of the API functions from the parsed data flags."""
    out = {"text_column": a.text_column, "text_pair_column": a.text_pair_column, "label_column": a.label_column,
           "task_kind": a.task_kind, "labels": a.labels, "delimiter": a.delimiter,
           "validation_split": a.validation_split}
    return {k: v for k, v in out.items() if v is not None}


def add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model loading (hub ids)")
    g.add_argument("--revision", default=None, help="hub branch, tag or commit of the model (default: main)")
    g.add_argument("--trust-remote-code", action="store_true",
                   help="allow a hub model to run its own Python code (off unless given)")


def model_options(a: argparse.Namespace) -> dict:
    return {"revision": a.revision, "trust_remote_code": a.trust_remote_code}


def add_train_args(p: argparse.ArgumentParser, *, defaults: bool) -> None:
    """Training flags; ``defaults=False`` (distill): unset flags keep the recipe's values."""
    title = "training" if defaults else "training (default: the recipe's training section, see `bertdistill recipes`)"
    g = p.add_argument_group(title)

    def d(key):
        return TRAIN_DEFAULTS[key] if defaults else None

    from ..pipelines.small_data import SMALL_BATCH

    # --epochs and --batch-size stay None when not given: on a small train split the run may choose
    # others (pipelines/small_data.py), and only a value the user gave must win over that choice
    small = f" (default: {TRAIN_DEFAULTS['epochs']:g}, more on a small train split)" if defaults else ""
    g.add_argument("--epochs", type=positive_float, default=None, help="passes over the train split" + small)
    g.add_argument("--max-steps", type=positive_int, default=None,
                   help="stop after this many optimizer steps (default: epochs decide)")
    small = f" (default: {TRAIN_DEFAULTS['batch_size']}, {SMALL_BATCH} on a small train split)" if defaults else ""
    g.add_argument("--batch-size", type=positive_int, default=None, help="examples per step (per process)" + small)
    g.add_argument("--lr", type=positive_float, default=d("lr"), help="peak learning rate of AdamW")
    g.add_argument("--weight-decay", type=nonnegative_float, default=d("weight_decay"), help="AdamW weight decay")
    g.add_argument("--warmup-ratio", type=fraction, default=d("warmup_ratio"),
                   help="fraction of steps with a linear warm-up")
    g.add_argument("--max-grad-norm", type=positive_float, default=d("max_grad_norm"), help="gradient clipping norm")
    g.add_argument("--grad-accum", type=positive_int, default=d("grad_accum"), help="batches per optimizer step")
    g.add_argument("--eval-every", type=positive_int, default=None,
                   help="optimizer steps between evaluations (default: each epoch)")
    g.add_argument("--save-every", type=positive_int, default=None,
                   help="optimizer steps between checkpoints (default: at each evaluation)")
    g.add_argument("--seed", type=int, default=d("seed"), help="seed of the run (data order, new weights)")
    g.add_argument("--mixed-precision", choices=["no", "bf16", "fp16"], default=d("mixed_precision"),
                   help="autocast precision")
    g.add_argument("--optimizer", choices=["fused", "foreach", "loop"], default=d("optimizer"),
                   help="AdamW kernels (same update): fused = one kernel per tensor, fastest; loop = torch's "
                        "per-tensor element-wise ops")
    add_cpu_training_args(g, defaults=defaults)
    g.add_argument("--no-length-grouping", action="store_true", help="random batches instead of length-grouped ones")
    g.add_argument("--no-resume", action="store_true", help="start over even if the output folder has a checkpoint")
    g.add_argument("--log-with", default=None,
                   help="also log to accelerate trackers beside log.jsonl, e.g. tensorboard (comma-separated)")
    g.add_argument("--max-train-examples", type=positive_int, default=None,
                   help="use a seeded subset of the train split (default: all)")
    g.add_argument("--max-eval-examples", type=positive_int, default=None,
                   help="use a seeded subset of the dev split (default: all)")


def add_cpu_training_args(g, *, defaults: bool) -> None:
    """``--dropout-draws`` and ``--cpu-allocator``: how a CPU run draws dropout masks and keeps
    memory (``defaults=False``: unset flags keep the recipe's values, else TrainConfig's)."""
    g.add_argument("--dropout-draws", choices=["torch", "fast"], default=TRAIN_DEFAULTS["dropout_draws"] if defaults else None,
                   help="dropout masks while training on a CPU: torch's own draw, or fast = 16-bit draws cut from "
                        "64-bit random words (a shorter step; another random stream, so a run does not reproduce "
                        "a torch-draws run)" + ("" if defaults else " (default: the recipe's, else torch)"))
    g.add_argument("--cpu-allocator", choices=["keep", "system"], default=TRAIN_DEFAULTS["cpu_allocator"] if defaults else None,
                   help="CPU training: keep = glibc keeps freed memory for reuse (no page faults on the per-step "
                        "buffers; the process keeps its peak memory), system = malloc as it is"
                        + ("" if defaults else " (default: the recipe's, else keep)"))


def cpu_training_overrides(a: argparse.Namespace) -> dict:
    """The two flags of ``add_cpu_training_args`` as TrainConfig keys (unset ones left out)."""
    out = {"dropout_draws": a.dropout_draws, "cpu_allocator": a.cpu_allocator}
    return {k: v for k, v in out.items() if v is not None}


def train_overrides(a: argparse.Namespace) -> dict:
    """The training flags given (not None) as TrainConfig keys."""
    out = {
        "epochs": a.epochs, "max_steps": a.max_steps, "batch_size": a.batch_size, "lr": a.lr,
        "weight_decay": a.weight_decay, "warmup_ratio": a.warmup_ratio, "max_grad_norm": a.max_grad_norm,
        "grad_accum": a.grad_accum, "eval_every": a.eval_every, "save_every": a.save_every, "seed": a.seed,
        "mixed_precision": a.mixed_precision, "log_with": a.log_with, "optimizer": a.optimizer,
        **cpu_training_overrides(a),
    }
    if a.no_length_grouping:
        out["group_by_length"] = False
    if a.no_resume:
        out["resume"] = False
    return {k: v for k, v in out.items() if v is not None}


# ---- values parsed after argparse (messages name the flag) ---------------------------------------

def student_layers(value: str | None):
    """``--student-layers``: a count, a preset name or a list like ``0,2,4``."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return int(text)
    if "," in text:
        try:
            return [int(x) for x in text.split(",") if x.strip()]
        except ValueError:
            raise ValueError(f"--student-layers: {value!r} is not a list of layer numbers like 0,2,4") from None
    return text


def json_option(flag: str, value: str | None):
    """A JSON object given inline or as a path to a .json file."""
    if value is None:
        return None
    text = value.strip()
    if not text.startswith("{"):
        path = Path(value)
        if not path.is_file():
            raise FileNotFoundError(f"{flag}: {value!r} is neither a JSON object nor an existing .json file")
        text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{flag}: invalid JSON ({err.msg} at line {err.lineno} column {err.colno})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{flag}: expected a JSON object, got {type(data).__name__}")
    return data


def term_weights(items: list[str]) -> dict | None:
    """``--weight kd=1,cosine=0 --weight hard=0.5`` -> {"kd": 1.0, "cosine": 0.0, "hard": 0.5}."""
    out = {}
    for item in items:
        for part in item.split(","):
            name, sep, value = part.strip().partition("=")
            if not part.strip():
                continue
            try:
                weight = float(value)
            except ValueError:
                weight = None
            if not sep or not name.strip() or weight is None:
                raise ValueError(f"--weight expects TERM=NUMBER[,TERM=NUMBER...], got {part.strip()!r}")
            out[name.strip()] = weight
    return out or None
