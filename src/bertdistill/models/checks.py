"""Checks of a local model folder before anything heavy reads it.

Damaged or mismatched files otherwise end in a library traceback or, worse, in quiet
garbage. Each check raises an error whose one-line message names the file, the field or
the option:

* ``config.json``: valid JSON; for a model type transformers knows, its config class accepts
  every field (a wrongly typed field is named); ``num_labels`` / ``id2label`` well formed;
* weights: every ``*.safetensors`` file (and the shards an index lists) opens, which checks
  the header against the file size (a truncated or empty file is caught here);
* tokenizer: the folder has tokenizer files, and the tokenizer has no more ids than the
  model's embedding matrix has rows;
* sequence length: ``--max-length`` / ``--lengths`` within the model's position embeddings.

``check_model_folder`` runs the first two and remembers folders it already passed (by the
size and modification time of their files), so calling it on every load is cheap.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from ..data.errors import DataError

CONFIG_FILE = "config.json"
DEFAULT_MAX_LENGTH = 128  # the commands' --max-length default: cut to a shorter model's positions, not refused
BILSTM_TYPE = "bilstm"  # students.bilstm.MODEL_TYPE (a word-level student, not a transformers model)
# any one of these makes a folder's tokenizer loadable
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model",
                   "tokenizer.model", "vocab.model")
# model types whose position ids start after the padding id (fairseq style): usable length is
# max_position_embeddings - (pad_token_id + 1)
PADDING_OFFSET_TYPES = frozenset({
    "roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "roberta-prelayernorm", "data2vec-text",
    "longformer", "mpnet", "ibert", "luke", "markuplm", "lilt", "layoutlmv3", "xmod",
})

_PASSED: dict[str, tuple] = {}


def read_config(folder: str | Path) -> dict:
    """``folder/config.json`` as a dict (DataError naming the file when it is not a JSON object)."""
    path = Path(folder) / CONFIG_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise DataError(path, None, "not UTF-8 text (a damaged file?)") from None
    except json.JSONDecodeError as err:
        raise DataError(path, err.lineno, f"not valid JSON ({err.msg})") from None
    if not isinstance(data, dict):
        raise DataError(path, None, f"expected a JSON object, got {type(data).__name__}")
    return data


def is_bilstm_folder(folder: str | Path) -> bool:
    """Whether ``folder`` holds a word-level BiLSTM student (config.json ``model_type: bilstm``)."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        return False
    try:
        return read_config(folder).get("model_type") == BILSTM_TYPE
    except DataError:
        return False


def bilstm_message(name) -> str:
    return (f"{name} is a word-level BiLSTM student ({CONFIG_FILE} model_type {BILSTM_TYPE!r}), not a transformer: "
            "this command needs a BERT-family model; a BiLSTM student works with `predict`, `evaluate` and "
            "`benchmark --formats pytorch-fp32`")


def _signature(folder: Path) -> tuple:
    files = sorted(p for p in folder.iterdir() if p.name.endswith((".safetensors", ".json")))
    return tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files if p.is_file())


def check_model_folder(folder: str | Path) -> None:
    """Check ``config.json`` and the safetensors weights of a local model folder (see the module)."""
    folder = Path(folder)
    key = str(folder.resolve())
    signature = _signature(folder)
    if _PASSED.get(key) == signature:
        return
    config = read_config(folder)
    check_config(folder, config)
    check_weights(folder)
    _PASSED[key] = signature


def check_config(folder: Path, config: dict) -> None:
    """Field types of ``config.json``: transformers' config class for known model types, the
    BiLSTM student's own for ``bilstm``; ``num_labels`` and the label maps for every type."""
    path = folder / CONFIG_FILE
    kind = config.get("model_type")
    if kind is not None and not isinstance(kind, str):
        raise DataError(path, None, f"field 'model_type' must be a string, got {kind!r}")
    if "num_labels" in config and (isinstance(config["num_labels"], bool) or not isinstance(config["num_labels"], int)
                                   or config["num_labels"] < 1):
        raise DataError(path, None, f"field 'num_labels' must be a positive integer, got {config['num_labels']!r}")
    for field in ("id2label", "label2id"):
        if field in config and config[field] is not None and not isinstance(config[field], dict):
            raise DataError(path, None, f"field {field!r} must be an object, got {type(config[field]).__name__}")
    id2label = config.get("id2label") or {}
    bad = [k for k in id2label if not str(k).lstrip("-").isdigit()]
    if bad:
        raise DataError(path, None, f"field 'id2label' must map class ids to names, got key {bad[0]!r}")
    if kind == BILSTM_TYPE:
        from ..students.bilstm import BiLSTMConfig

        try:
            BiLSTMConfig(**config)
        except TypeError as err:  # an unknown or missing field
            raise DataError(path, None, f"not a BiLSTM student config: {err}") from None
        except ValueError as err:
            raise DataError(path, None, str(err)) from None
        return
    from transformers import CONFIG_MAPPING

    if kind is None or kind not in CONFIG_MAPPING:
        return  # custom code (trust_remote_code) or no type: transformers says what it needs
    try:
        CONFIG_MAPPING[kind].from_dict(dict(config))
    except Exception as err:  # strict dataclass validation: TypeError / ValueError naming the field
        raise DataError(path, None, _field_error(err)) from None


def _field_error(err: Exception) -> str:
    """transformers' validation message without its wrapping: ``Field 'x' expected int, got str ...``."""
    text = " ".join(str(err).split()) or type(err).__name__
    found = re.match(r"Validation error for field '[^']+': \w+: (.*)", text)
    if found:
        text = found.group(1).split(". Errors:")[0]
    return f"{text}; fix the field or save the model again"


def _safetensors_files(folder: Path) -> list[Path]:
    files = sorted(folder.glob("*.safetensors"))
    for index in sorted(folder.glob("*.safetensors.index.json")):
        try:
            data = json.loads(index.read_text(encoding="utf-8"))
            shards = sorted(set((data.get("weight_map") or {}).values()))
        except (UnicodeDecodeError, json.JSONDecodeError, AttributeError) as err:
            raise DataError(index, None, f"not a valid safetensors index ({err})") from None
        for shard in shards:
            if not (folder / shard).is_file():
                raise DataError(folder / shard, None, f"missing: {index.name} lists it (an incomplete download "
                                                      "or copy)")
    return files


def check_weights(folder: str | Path) -> None:
    """Open every safetensors file's header: a truncated, empty or foreign file is named."""
    from safetensors import safe_open

    for path in _safetensors_files(Path(folder)):
        if path.stat().st_size == 0:
            raise DataError(path, None, "empty file (an interrupted save or copy); save or copy the model again")
        try:
            with safe_open(str(path), framework="pt") as handle:
                handle.keys()
        except Exception as err:  # SafetensorError: header too small, incomplete metadata, ...
            reason = " ".join(str(err).split())
            raise DataError(path, None, f"damaged safetensors file ({reason}): truncated or not a model file; "
                                        "save or copy the model again") from None


def check_tokenizer_files(folder: str | Path) -> None:
    """A local model folder must hold tokenizer files; else transformers builds an empty
    tokenizer from the config alone, which maps every word to [UNK]."""
    folder = Path(folder)
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise FileNotFoundError(
            f"{folder} has no tokenizer files ({', '.join(TOKENIZER_FILES[:3])}, ...): copy the tokenizer of the "
            "model it was trained from into the folder (tokenizer.save_pretrained)"
        )


WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "*.safetensors.index.json")


def check_tokenizer_fits(tokenizer, folder: str | Path) -> None:
    """Refuse a tokenizer with more ids than the model saved beside it has embedding rows
    (``vocab_size``). A folder without weights (a tokenizer folder) has no model to compare with."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file() or not any(any(Path(folder).glob(p)) for p in WEIGHT_PATTERNS):
        return
    vocab = read_config(folder).get("vocab_size")
    if not isinstance(vocab, int) or isinstance(vocab, bool):
        return
    size = len(tokenizer)
    if size > vocab:
        raise ValueError(
            f"{folder}: the tokenizer has {size} tokens but the model's embeddings have {vocab} rows "
            f"({CONFIG_FILE} vocab_size): the tokenizer belongs to another model; use the one it was trained with"
        )


def usable_positions(config: dict) -> int | None:
    """The longest input (in tokens) the position embeddings of a ``config.json`` allow, or None."""
    positions = config.get("max_position_embeddings")
    if not isinstance(positions, int) or isinstance(positions, bool):
        return None
    if config.get("model_type") in PADDING_OFFSET_TYPES:
        pad = config.get("pad_token_id")
        positions -= (pad if isinstance(pad, int) else 1) + 1
    return positions


def model_positions(model_folder: str | Path) -> int | None:
    """``usable_positions`` of a local model folder's config.json (None: no folder, no limit)."""
    folder = Path(model_folder)
    return usable_positions(read_config(folder)) if (folder / CONFIG_FILE).is_file() else None


def check_max_length(model_folder: str | Path, max_length: int | None, flag: str = "--max-length",
                     name: str | None = None) -> int | None:
    """The sequence length to use: ``max_length``, unless it is beyond the position embeddings
    of a local model folder, which is refused (ValueError naming ``flag`` and the limit), or,
    for the commands' default ``--max-length`` (128), cut to the limit with a note.

    Hub ids (no local folder) and models without position embeddings (the BiLSTM) pass.
    """
    folder = Path(model_folder)
    if max_length is None or not (folder / CONFIG_FILE).is_file():
        return max_length
    config = read_config(folder)
    limit = usable_positions(config)
    if limit is not None and max_length > limit:
        if flag == "--max-length" and max_length == DEFAULT_MAX_LENGTH:
            print(f"bertdistill: --max-length {max_length} (the default) cut to {limit}, the positions of "
                  f"{name or folder}", file=sys.stderr)
            return limit
        offset = "" if limit == config["max_position_embeddings"] else f", less {config['max_position_embeddings'] - limit} for the padding offset"
        raise ValueError(
            f"{flag} {max_length} is longer than {name or folder} can read: {limit} tokens "
            f"({CONFIG_FILE} max_position_embeddings {config['max_position_embeddings']}{offset}); "
            f"use {flag} {limit} or less"
        )
    return max_length
