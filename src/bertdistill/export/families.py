"""Which saved models export and benchmark support, keyed by the config's ``model_type``.

One entry per model family: the inputs its exported graph takes, the model type ONNX Runtime's
transformer optimizer knows it as (for fused attention / LayerNorm / GELU), and how a saved
folder is loaded into a PyTorch module. Supporting a new student family (e.g. a BiLSTM) is one
more entry in ``FAMILIES``: the word-level BiLSTM student is one (benchmarked in PyTorch; it has
no ONNX export).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..models.loading import load_task_model, load_tokenizer, resolve_model, task_from_labels


def load_transformer(model_dir: str, *, attn_implementation: str | None = None, dtype=None):
    """A Hugging Face task model saved by bertdistill, with the head its labels.json names."""
    return load_task_model(model_dir, task_from_labels(model_dir), attn_implementation=attn_implementation,
                           dtype=dtype)


def load_bilstm_student(model_dir: str, *, attn_implementation: str | None = None, dtype=None):
    """A word-level BiLSTM student folder (``attn_implementation`` does not apply)."""
    from ..students.bilstm import load_bilstm

    model, _ = load_bilstm(model_dir)
    return model.to(dtype) if dtype is not None else model


def load_word_tokenizer(model_dir: str):
    from ..students.bilstm import WordTokenizer

    return WordTokenizer.load(Path(model_dir))


@dataclass(frozen=True)
class Family:
    inputs: tuple[str, ...]                 # graph inputs, in order
    ort_model_type: str | None              # onnxruntime.transformers optimizer model_type; None: no fusion pass
    load: Callable[..., object] = load_transformer
    onnx: bool = True                       # can be exported to ONNX
    tokenizer: Callable[[str], object] = load_tokenizer  # folder -> a tokenizer callable like HF's


FAMILIES: dict[str, Family] = {
    "bert": Family(("input_ids", "attention_mask", "token_type_ids"), "bert"),
    "distilbert": Family(("input_ids", "attention_mask"), "bert"),
    # ONNX Runtime's transformer optimizer has no MobileBERT fusion (its bottlenecks, NoNorm and
    # stacked FFNs match none of the BERT patterns): exported unfused, ORT's generic graph
    # optimisations still apply when a session loads it
    "mobilebert": Family(("input_ids", "attention_mask", "token_type_ids"), None),
    "bilstm": Family(("input_ids", "attention_mask"), None, load=load_bilstm_student, onnx=False,
                     tokenizer=load_word_tokenizer),
}


def model_type(model_dir: str | os.PathLike) -> str:
    """The ``model_type`` in a model folder's config.json (FileNotFoundError / ValueError naming it)."""
    folder = Path(resolve_model(model_dir))
    path = folder / "config.json"
    if not folder.is_dir():
        raise FileNotFoundError(f"{model_dir} is not a model folder: no such folder (give a folder saved by "
                                "`bertdistill finetune`, `distill` or `export`)")
    if not path.is_file():
        raise FileNotFoundError(f"{model_dir} is not a model folder: it has no config.json")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    kind = config.get("model_type")
    if not kind:
        raise ValueError(f"{path} has no model_type")
    return str(kind)


def family_of(model_dir: str | os.PathLike) -> Family:
    """The registry entry for a model folder, or ValueError naming the folder and the known types."""
    kind = model_type(model_dir)
    if kind not in FAMILIES:
        raise ValueError(
            f"{model_dir}: model_type {kind!r} is not supported by export/benchmark; supported: "
            f"{', '.join(sorted(FAMILIES))}"
        )
    return FAMILIES[kind]
