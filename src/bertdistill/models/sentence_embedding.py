"""Sentence embeddings the sentence-transformers way: pooling read from a model folder, pooled
vectors, and a student saved in the same folder layout.

A sentence-transformers folder lists its modules in ``modules.json``: the transformer (the
folder itself), a ``Pooling`` module whose ``config.json`` says how token vectors become one
vector (mean over real tokens, the [CLS] vector, or the element-wise max over real tokens),
optionally a ``Dense`` projection and a ``Normalize`` module (unit length). The offline
teacher ``minilm-l6`` (all-MiniLM-L6-v2) is such a folder: mean pooling, then Normalize.

* :func:`read_sentence_config` reads the pooling, the normalisation and ``max_seq_length`` of
  a folder (``None`` for a folder without ``modules.json``: a plain encoder);
* :func:`sentence_embeddings` pools ``[B, L, D]`` hidden states under an attention mask;
* :func:`write_sentence_folder` adds ``modules.json``, ``1_Pooling/config.json``, an optional
  ``2_Dense`` (the learned projection of a narrower student, no activation) and
  ``sentence_bert_config.json`` to a saved encoder folder, so that both
  ``sentence_transformers.SentenceTransformer(folder)`` and ``transformers.AutoModel`` load it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

POOLING_MODES = ("mean", "cls", "max")
#: the pooling config keys of each mode, as sentence-transformers wrote them before 5.x
#: (later releases read these keys too)
LEGACY_KEYS = {"cls": "pooling_mode_cls_token", "mean": "pooling_mode_mean_tokens",
               "max": "pooling_mode_max_tokens"}
MODULE_TYPES = {"transformer": "sentence_transformers.models.Transformer",
                "pooling": "sentence_transformers.models.Pooling",
                "dense": "sentence_transformers.models.Dense",
                "normalize": "sentence_transformers.models.Normalize"}


@dataclass(frozen=True)
class SentenceConfig:
    """How a folder turns token vectors into a sentence vector."""

    pooling: str = "mean"
    normalize: bool = False
    max_seq_length: int | None = None
    pooling_config: dict = field(default_factory=dict)  # the folder's Pooling config.json, as read
    has_dense: bool = False


def _read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: cannot read the {what}: {err}") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: the {what} is not valid JSON: {err}") from None


def _pooling_mode(config: dict, path: Path) -> str:
    mode = config.get("pooling_mode")
    if mode is None:  # the legacy one-flag-per-mode layout
        on = [name for name, key in LEGACY_KEYS.items() if config.get(key)]
        others = sorted(k for k, v in config.items() if k.startswith("pooling_mode_") and v
                        and k not in LEGACY_KEYS.values())
        if others or len(on) > 1:
            raise ValueError(f"{path}: pooling {', '.join(on + others)} is not supported; "
                             f"supported: one of {', '.join(POOLING_MODES)}")
        return on[0] if on else "mean"
    if isinstance(mode, list) and len(mode) == 1:
        mode = mode[0]
    aliases = {"mean_tokens": "mean", "cls_token": "cls", "max_tokens": "max"}
    mode = aliases.get(mode, mode) if isinstance(mode, str) else mode
    if mode not in POOLING_MODES:
        raise ValueError(f"{path}: pooling_mode {mode!r} is not supported; supported: {', '.join(POOLING_MODES)}")
    return mode


def read_sentence_config(folder: str | Path) -> SentenceConfig | None:
    """The pooling, normalisation and maximum length of a sentence-transformers folder, or
    ``None`` when ``folder`` has no ``modules.json``. A folder with a module this package cannot
    reproduce (another pooling, a Dense layer before pooling, ...) raises ValueError naming
    the file."""
    root = Path(folder)
    modules_path = root / "modules.json"
    if not modules_path.is_file():
        return None
    modules = _read_json(modules_path, "module list")
    if not isinstance(modules, list) or not all(isinstance(m, dict) and isinstance(m.get("type"), str)
                                                for m in modules):
        raise ValueError(f"{modules_path}: expected a list of {{\"type\": ..., \"path\": ...}} objects")
    kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
    if "Pooling" not in kinds:
        raise ValueError(f"{modules_path}: no Pooling module; modules: {', '.join(kinds)}")
    unknown = [k for k in kinds if k not in ("Transformer", "Pooling", "Dense", "Normalize")]
    if unknown or kinds[0] != "Transformer":
        raise ValueError(f"{modules_path}: modules {', '.join(kinds)}: only Transformer, Pooling, Dense and "
                         "Normalize (in that order) are supported")
    pooling_entry = modules[kinds.index("Pooling")]
    pooling_path = root / str(pooling_entry.get("path", "")) / "config.json"
    if not pooling_path.is_file():
        raise ValueError(f"{pooling_path}: missing (named by {modules_path})")
    pooling_config = _read_json(pooling_path, "pooling config")
    if not isinstance(pooling_config, dict):
        raise ValueError(f"{pooling_path}: expected a JSON object")
    max_len = None
    st_config = root / "sentence_bert_config.json"
    if st_config.is_file():
        value = _read_json(st_config, "sentence-transformers config")
        max_len = value.get("max_seq_length") if isinstance(value, dict) else None
        if max_len is not None and (isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1):
            raise ValueError(f"{st_config}: max_seq_length must be a positive integer, got {max_len!r}")
    return SentenceConfig(pooling=_pooling_mode(pooling_config, pooling_path), normalize="Normalize" in kinds,
                          max_seq_length=max_len, pooling_config=pooling_config, has_dense="Dense" in kinds)


def pool(hidden: Tensor, mask: Tensor | None, mode: str) -> Tensor:
    """``[B, L, D]`` token vectors -> ``[B, D]``: the mean or max over real tokens (``mask`` 1),
    or the first ([CLS]) vector. Computed in float32."""
    if hidden.dim() != 3:
        raise ValueError(f"pooling expects [B, L, D] token vectors, got {tuple(hidden.shape)}")
    hidden = hidden.float()
    if mode == "cls":
        return hidden[:, 0]
    if mask is None:
        mask = torch.ones(hidden.shape[:2], device=hidden.device)
    weights = mask.to(hidden.dtype).unsqueeze(-1)
    if mode == "mean":
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    if mode == "max":
        return hidden.masked_fill(weights == 0, -1e9).max(dim=1).values
    raise ValueError(f"unknown pooling {mode!r}; known: {', '.join(POOLING_MODES)}")


def sentence_embeddings(hidden: Tensor, mask: Tensor | None, pooling: str, normalize: bool) -> Tensor:
    """Pooled (and, with ``normalize``, unit-length) sentence vectors ``[B, D]``."""
    pooled = pool(hidden, mask, pooling)
    return F.normalize(pooled, p=2, dim=-1) if normalize else pooled


def load_dense(folder: str | Path) -> nn.Linear | None:
    """The folder's ``Dense`` module as an ``nn.Linear`` (``None`` without one); a Dense module
    with an activation other than the identity raises ValueError naming its config."""
    from safetensors.torch import load_file

    root = Path(folder)
    modules = _read_json(root / "modules.json", "module list")
    entry = next((m for m in modules if str(m.get("type", "")).endswith(".Dense")), None)
    if entry is None:
        return None
    config_path = root / str(entry.get("path", "")) / "config.json"
    config = _read_json(config_path, "Dense config")
    activation = str(config.get("activation_function", "torch.nn.modules.activation.Tanh"))
    if not activation.endswith(".Identity"):
        raise ValueError(f"{config_path}: activation {activation} is not supported (only Identity)")
    weights_path = config_path.parent / "model.safetensors"
    if not weights_path.is_file():
        raise ValueError(f"{weights_path}: missing (the Dense module's weights)")
    weights = load_file(str(weights_path))
    linear = nn.Linear(int(config["in_features"]), int(config["out_features"]), bias=bool(config.get("bias", True)))
    linear.load_state_dict({k.removeprefix("linear."): v for k, v in weights.items()})
    return linear


def _write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")


def write_sentence_folder(folder: str | Path, config: SentenceConfig, width: int, *,
                          max_position_embeddings: int | None = None, dense: nn.Linear | None = None) -> Path:
    """Make the saved encoder ``folder`` a sentence-transformers folder with ``config``'s pooling
    (the Pooling config of the source folder, its dimension set to ``width``), ``dense`` as a
    ``Dense`` module without activation, and ``Normalize`` when ``config.normalize``."""
    from safetensors.torch import save_file

    root = Path(folder)
    if not (root / "config.json").is_file():
        raise ValueError(f"{root}: no config.json; save the encoder there first")
    modules = [{"idx": 0, "name": "0", "path": "", "type": MODULE_TYPES["transformer"]}]
    pooling_config = dict(config.pooling_config) or {"word_embedding_dimension": width,
                                                     **{key: name == config.pooling for name, key in LEGACY_KEYS.items()}}
    for key in ("word_embedding_dimension", "embedding_dimension"):
        if key in pooling_config:
            pooling_config[key] = width
    _write_json(root / "1_Pooling" / "config.json", pooling_config)
    modules.append({"idx": 1, "name": "1", "path": "1_Pooling", "type": MODULE_TYPES["pooling"]})
    if dense is not None:
        if dense.in_features != width:
            raise ValueError(f"the projection reads width {dense.in_features}, the encoder's width is {width}")
        _write_json(root / "2_Dense" / "config.json",
                    {"in_features": dense.in_features, "out_features": dense.out_features,
                     "bias": dense.bias is not None, "activation_function": "torch.nn.modules.linear.Identity"})
        weights = {"linear.weight": dense.weight.detach().float().cpu().contiguous()}
        if dense.bias is not None:
            weights["linear.bias"] = dense.bias.detach().float().cpu().contiguous()
        save_file(weights, str(root / "2_Dense" / "model.safetensors"))
        modules.append({"idx": 2, "name": "2", "path": "2_Dense", "type": MODULE_TYPES["dense"]})
    if config.normalize:
        index = len(modules)
        modules.append({"idx": index, "name": str(index), "path": f"{index}_Normalize",
                        "type": MODULE_TYPES["normalize"]})
    _write_json(root / "modules.json", modules)
    max_len = config.max_seq_length
    if max_position_embeddings is not None:
        max_len = min(max_len or max_position_embeddings, max_position_embeddings)
    _write_json(root / "sentence_bert_config.json", {"max_seq_length": max_len, "do_lower_case": False})
    return root
