"""Teacher outputs cached on disk for a fixed transfer set.

When the data a student learns from does not change between epochs (no augmentation),
the teacher's features are the same every epoch: computed once, stored per example
trimmed to its real length (no padding is stored), and reused across epochs and runs.
The folder name is a hash of the teacher's weights, its configuration (activation, layer-norm
epsilon, position embeddings, ...: every ``config.json`` key but the few in
:data:`CONFIG_KEYS_NOT_HASHED`, which do not change what the teacher computes), the tokenised
inputs and the feature keys, so a different teacher, data set or tokenisation never reads a
stale cache.

Each entry's ``meta.json`` records the size and sha256 of its ``features.safetensors``
(hashed once after writing). Every run that reads an entry checks both first: a file cut
short (a full disk, a killed copy) or with overwritten bytes is reported in one warning
naming the entry, deleted and rebuilt, never read. Hashing costs about 0.08 s per 100 MB on
a current CPU (sha256 with the SHA extensions; blake2b took 0.13 s), small next to the
teacher forwards it saves, so the checksum is verified on every read rather than only when
the size or mtime changed (same-size overwrites keep both). A build writes into a folder of
its own (``.<key>.partial-<host>-<pid>``, ``bertdistill.partials``) renamed into place when
complete; the partial folders of killed builds are removed by the next build of that key.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from ..data.encode import Collator
from ..models.inputs import model_inputs
from ..partials import partial_path, remove_stale_partials
from .cache_files import FEATURES_FILE, META_FILE, check_entry, file_digest
from .features import extract, needs

log = logging.getLogger(__name__)

#: ``config.json`` keys left out of the cache key: names, label names, the library version,
#: output switches the recorder sets per call, and the weights' dtype (their bytes are hashed)
CONFIG_KEYS_NOT_HASHED = ("_name_or_path", "transformers_version", "architectures", "id2label", "label2id",
                          "finetuning_task", "tokenizer_class", "problem_type", "output_attentions",
                          "output_hidden_states", "return_dict", "use_cache", "torch_dtype", "dtype",
                          "_commit_hash")


def default_cache_dir() -> Path:
    return Path(os.environ.get("BERTDISTILL_CACHE", Path.home() / ".cache" / "bertdistill")) / "teacher"


def per_token(key: str, example_ndim: int) -> bool:
    """Whether ``key``'s feature has one row per token (hidden states, token-level logits), given
    the number of dimensions of one example's value."""
    return (key.startswith(("hidden", "qkv")) or key == "embeddings"
            or (key == "logits" and example_ndim == 2))


def _pad(key: str, pieces: list[torch.Tensor], length: int) -> torch.Tensor:
    """Stack per-example features back into a batch padded to ``length`` tokens."""
    first = pieces[0]
    if key.startswith("attention"):
        out = first.new_zeros((len(pieces), first.shape[0], length, length))
        for i, p in enumerate(pieces):
            out[i, :, : p.shape[1], : p.shape[2]] = p
        return out
    if per_token(key, first.ndim):
        out = first.new_zeros((len(pieces), length, *first.shape[1:]))
        for i, p in enumerate(pieces):
            out[i, : p.shape[0]] = p
        return out
    return torch.stack(pieces)


def _row_layout(key: str, offsets: torch.Tensor, shapes: torch.Tensor):
    """How ``key``'s examples lie in its flat storage when each is a run of equal-width rows:
    ``(first row of each example, rows of each example, row width, per_token)``; ``None`` for
    attention maps (padded in two dimensions) and anything irregular."""
    if key.startswith("attention") or shapes.ndim != 2 or len(shapes) == 0:
        return None
    token_rows = per_token(key, shapes.shape[1])
    if token_rows:
        counts, widths = shapes[:, 0], shapes[:, 1:].prod(dim=1)
    else:
        counts, widths = torch.ones(len(shapes), dtype=torch.long), shapes.prod(dim=1)
    width = int(widths[0])
    if width == 0 or not bool((widths == width).all()) or bool((offsets[:-1] % width).any()):
        return None
    return offsets[:-1] // width, counts, width, token_rows


def hash_weights(h, model: torch.nn.Module) -> None:
    """Feed every named tensor of ``model``'s state dict, bytes and all, into the hash ``h``."""
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())


def hashed_config(model: torch.nn.Module) -> dict:
    """The part of ``model``'s configuration that decides what it computes (the cache key's)."""
    config = getattr(model, "config", None)
    if config is None:
        return {}
    data = config.to_dict() if hasattr(config, "to_dict") else dict(vars(config))
    return {k: v for k, v in data.items() if k not in CONFIG_KEYS_NOT_HASHED}


def weights_digest(model: torch.nn.Module) -> str:
    """A short content hash of ``model``'s weights (a teacher retrained in place gets another one)."""
    h = hashlib.sha256()
    hash_weights(h, model)
    return h.hexdigest()[:24]


#: the teacher's compute precision while the cache is built (``--mixed-precision``): under
#: ``bf16`` / ``fp16`` its forward runs in autocast, as the student's steps do
CACHE_PRECISIONS = {"no": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def fingerprint(teacher: torch.nn.Module, features: list[dict], keys: list[str], dtype: torch.dtype,
                precision: str = "no", attention: str | None = None) -> str:
    """A content hash of teacher weights and configuration (:func:`hashed_config`), tokenised
    inputs, feature keys, storage dtype and the precision the teacher computed in."""
    h = hashlib.sha256()
    hash_weights(h, teacher)
    h.update(json.dumps(hashed_config(teacher), sort_keys=True, default=str).encode())
    for f in features:
        h.update(json.dumps([f["input_ids"], f.get("token_type_ids")]).encode())
    h.update(json.dumps([sorted(keys), str(dtype)]).encode())
    if precision != "no":
        h.update(f"autocast:{precision}".encode())
    if attention is not None:
        h.update(f"attention:{attention}".encode())
    return h.hexdigest()[:24]


def token_budget_batches(sorted_lengths: list[int], tokens_per_batch: int) -> list[tuple[int, int]]:
    """``(start, end)`` slices of examples sorted by length whose padded size (examples x the
    longest) stays within ``tokens_per_batch``; an example longer than the budget is a batch
    of its own. Short sentences thus share large batches: the teacher's matrix products see
    as many rows for a batch of 3-token phrases as for one of 64-token sentences."""
    if tokens_per_batch < 1:
        raise ValueError(f"tokens_per_batch must be at least 1, got {tokens_per_batch}")
    batches, start = [], 0
    for i, n in enumerate(sorted_lengths):
        if i > start and (i - start + 1) * n > tokens_per_batch:  # adding example i overflows
            batches.append((start, i))
            start = i
    if start < len(sorted_lengths):
        batches.append((start, len(sorted_lengths)))
    return batches


#: the teacher's attention kernels a cache build may choose (``--cache-attention``)
CACHE_ATTENTION = ("eager", "sdpa")


def check_cache_attention(attention: str | None, keys: list[str]) -> None:
    """Refuse an unknown kernel, and ``sdpa`` when a key is an attention map (sdpa has none)."""
    if attention is None:
        return
    if attention not in CACHE_ATTENTION:
        raise ValueError(f"--cache-attention must be one of {', '.join(CACHE_ATTENTION)}, got {attention!r}")
    if attention == "sdpa" and needs(keys).attentions:
        raise ValueError("--cache-attention sdpa: the cached keys include attention maps, which sdpa "
                         "attention cannot output; leave the option out")


@contextlib.contextmanager
def attention_kernel(model: torch.nn.Module, attention: str | None, keys: list[str]):
    """Within the block, ``model`` runs ``attention``, its own kernel set back afterwards; a
    no-op for ``None`` and when ``keys`` include attention maps (recorded by their own kernel)."""
    own = getattr(model.config, "_attn_implementation", None)
    if attention is None or own == attention or needs(keys).attentions:
        yield
        return
    model.set_attn_implementation(attention)
    try:
        yield
    finally:
        model.set_attn_implementation(own)


class TeacherCache:
    """Per-example teacher features, looked up by example index and padded per batch."""

    def __init__(self, tensors: dict[str, torch.Tensor], keys: list[str], path: Path | None = None):
        self.keys = keys
        self.path = path
        self._data = {k: tensors[f"{k}.data"] for k in keys}
        self._offsets = {k: tensors[f"{k}.offsets"].tolist() for k in keys}
        self._shapes = {k: tensors[f"{k}.shapes"].tolist() for k in keys}
        self._rows = {k: rows for k in keys if (rows := _row_layout(k, tensors[f"{k}.offsets"],
                                                                   tensors[f"{k}.shapes"])) is not None}

    def __len__(self) -> int:
        return len(self._offsets[self.keys[0]]) - 1

    def example(self, key: str, index: int) -> torch.Tensor:
        start, end = self._offsets[key][index], self._offsets[key][index + 1]
        return self._data[key][start:end].view(self._shapes[key][index])

    def lookup(self, indices: list[int], length: int, device=None) -> dict[str, torch.Tensor]:
        """The batch's features in float32, padded to ``length`` tokens (padding = 0)."""
        out = {}
        for key in self.keys:
            if key in self._rows:
                batch = self._gather_rows(key, indices, length)
            else:  # attention maps: padded in two dimensions, one example at a time
                # float32 pieces: stacking fp16 under CPU bf16 autocast is refused by torch
                batch = _pad(key, [self.example(key, i).float() for i in indices], length)
            out[key] = batch.to(device) if device is not None else batch
        return out

    def _gather_rows(self, key: str, indices: list[int], length: int) -> torch.Tensor:
        """One gather for the whole batch (per-token or per-example rows of equal width),
        instead of a slice, a cast and a copy per example."""
        starts, counts, width, token_rows = self._rows[key]
        idx = torch.as_tensor(indices, dtype=torch.long)
        rows = self._data[key].view(-1, width)
        if not token_rows:  # one row per example (sentence logits, [CLS] vectors)
            return rows.index_select(0, starts[idx]).float()
        n = counts[idx]
        positions = torch.arange(length)
        valid = positions.unsqueeze(0) < n.unsqueeze(1)  # (batch, length)
        # padded positions read the example's first row and are zeroed after the cast
        flat = starts[idx].unsqueeze(1) + torch.where(valid, positions.unsqueeze(0), 0)
        batch = rows.index_select(0, flat.reshape(-1)).float().view(len(indices), length, width)
        return batch.masked_fill_(~valid.unsqueeze(-1), 0.0)

    # ---- building ----------------------------------------------------------------------
    @classmethod
    def estimate_bytes(cls, teacher_config, features: list[dict], keys: list[str], itemsize: int = 2) -> int:
        hidden, heads = teacher_config.hidden_size, teacher_config.num_attention_heads
        labels = max(1, getattr(teacher_config, "num_labels", 2))
        total = 0
        for f in features:
            n = len(f["input_ids"])
            for key in keys:
                if key.startswith("attention"):
                    total += heads * n * n
                elif key.startswith("hidden") or key == "embeddings":
                    total += n * hidden
                elif key.startswith("qkv"):
                    total += 3 * n * hidden
                elif key.startswith("cls"):
                    total += hidden
                else:
                    total += labels * n
        return total * itemsize

    @classmethod
    def load_or_build(
        cls,
        teacher: torch.nn.Module,
        features: list[dict],
        keys: list[str],
        *,
        cache_dir: str | Path | None = None,
        tokens_per_batch: int = 4096,
        dtype: torch.dtype = torch.float16,
        pad_token_id: int = 0,
        precision: str = "no",
        attention: str | None = None,
    ) -> "TeacherCache":
        """The cache of ``teacher``'s ``keys`` over ``features``: read from ``cache_dir`` when the
        same build is there, else computed and written (atomically). ``attention`` (``eager`` or
        ``sdpa``; default: the teacher's own) sets the teacher's attention kernel for the build
        when no key is an attention map: on a CPU, eager attention is the faster of the two for
        short sentences (benchmarks/RESULTS.md); the cached values differ in the last bits."""
        if precision not in CACHE_PRECISIONS:
            raise ValueError(f"--mixed-precision must be one of {sorted(CACHE_PRECISIONS)}, got {precision!r}")
        check_cache_attention(attention, keys)
        if needs(keys).attentions:  # maps are recorded by the recorder's own kernel: the build is the same
            attention = None
        root = Path(cache_dir) if cache_dir else default_cache_dir()
        folder = root / fingerprint(teacher, features, keys, dtype, precision, attention)
        if folder.exists():
            damage = check_entry(folder)
            if damage is None:
                log.info("teacher outputs: reusing cache %s", folder)
                return cls(load_file(str(folder / FEATURES_FILE)), keys, folder)
            log.warning("teacher cache entry %s is damaged (%s): removed, the teacher outputs are computed again",
                        folder, damage)
            shutil.rmtree(folder, ignore_errors=True)
        with attention_kernel(teacher, attention, keys):
            tensors = cls._compute(teacher, features, keys, tokens_per_batch, dtype, pad_token_id, precision)
        publish_entry(folder, tensors, {"keys": keys, "examples": len(features), "dtype": str(dtype),
                                        "precision": precision})
        return cls(tensors, keys, folder)

    @staticmethod
    def _compute(teacher, features, keys, tokens_per_batch, dtype, pad_token_id, precision="no") -> dict[str, torch.Tensor]:
        if not features:
            raise ValueError("the teacher cache needs at least one example")
        want = needs(keys)
        collate = Collator(pad_token_id=pad_token_id)
        lengths = [len(f["input_ids"]) for f in features]
        order = sorted(range(len(features)), key=lengths.__getitem__)
        batches = token_budget_batches([lengths[i] for i in order], tokens_per_batch)
        sinks: dict[str, FeatureSink] = {}
        device = next(teacher.parameters()).device
        was_training = teacher.training
        teacher.eval()
        half = CACHE_PRECISIONS[precision]
        autocast = torch.autocast(device.type, dtype=half) if half is not None else contextlib.nullcontext()
        with torch.inference_mode(), autocast:
            for start, end in tqdm(batches, desc="teacher outputs", dynamic_ncols=True):
                idx = order[start:end]
                batch = collate([{k: features[i][k] for k in ("input_ids", "token_type_ids") if k in features[i]}
                                 for i in idx])
                batch = {k: v.to(device) for k, v in batch.items()}
                out = teacher(**model_inputs(teacher, batch), output_hidden_states=want.hidden_states,
                              output_attentions=want.attentions)
                for key, value in extract(out, keys).items():
                    value = value.to("cpu", dtype)  # one cast per key and batch
                    if key not in sinks:
                        sinks[key] = FeatureSink(key, value, lengths, dtype)
                    sinks[key].write(idx, value)
        teacher.train(was_training)
        tensors = {}
        for key in keys:
            tensors.update(sinks[key].tensors())
        return tensors


class FeatureSink:
    """One feature key's flat storage in example-index order, written a batch at a time.

    The storage (``data``: each example's values without padding, one after another;
    ``offsets``; ``shapes``) is allocated at the first batch, when the feature's trailing
    shape is known, since every example's length is known up front. Per-token and
    per-example features go in with one ``index_copy_`` of the batch's real rows; attention
    maps (trimmed in two dimensions) are copied an example at a time.
    """

    def __init__(self, key: str, first: torch.Tensor, lengths: list[int], dtype: torch.dtype):
        tail = tuple(first.shape[1:])  # one example's padded shape
        if key.startswith("attention"):
            self.kind, shapes = "square", [(tail[0], n, n) for n in lengths]
        elif per_token(key, first.ndim - 1):
            self.kind, shapes = "token", [(n, *tail[1:]) for n in lengths]
        else:
            self.kind, shapes = "example", [tail for _ in lengths]
        self.width = math.prod(tail[1:]) if self.kind == "token" else math.prod(tail)
        sizes = torch.tensor([math.prod(s) for s in shapes], dtype=torch.int64)
        self.offsets = torch.zeros(len(lengths) + 1, dtype=torch.int64)
        torch.cumsum(sizes, 0, out=self.offsets[1:])
        self.shapes = torch.tensor(shapes, dtype=torch.int64).reshape(len(lengths), len(tail))
        self.lengths = torch.tensor(lengths, dtype=torch.int64)
        self.data = torch.empty(int(self.offsets[-1]), dtype=dtype)
        self.key = key

    def write(self, indices: list[int], value: torch.Tensor) -> None:
        idx = torch.as_tensor(indices, dtype=torch.long)
        if self.kind == "example":
            self.data.view(-1, self.width).index_copy_(0, idx, value.reshape(len(indices), self.width))
        elif self.kind == "token":
            n = self.lengths[idx]
            real = torch.arange(value.shape[1]).unsqueeze(0) < n.unsqueeze(1)  # (batch, padded length)
            rows = value.reshape(value.shape[0], value.shape[1], self.width)[real]  # example by example
            first_row = self.offsets[idx] // self.width
            within = torch.arange(len(rows)) - torch.repeat_interleave(torch.cumsum(n, 0) - n, n)
            self.data.view(-1, self.width).index_copy_(0, torch.repeat_interleave(first_row, n) + within, rows)
        else:
            for row, i in enumerate(indices):
                k = int(self.lengths[i])
                start, end = int(self.offsets[i]), int(self.offsets[i + 1])
                self.data[start:end].view(-1, k, k).copy_(value[row, :, :k, :k])

    def tensors(self) -> dict[str, torch.Tensor]:
        return {f"{self.key}.data": self.data, f"{self.key}.offsets": self.offsets,
                f"{self.key}.shapes": self.shapes}


# ---- entries on disk ------------------------------------------------------------------------
def publish_entry(folder: Path, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Write an entry into this process's partial folder, record its size and checksum, and rename
    it into place (partial folders of killed builds of the same key are removed first)."""
    remove_stale_partials(folder)
    tmp = partial_path(folder)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        save_file(tensors, str(tmp / FEATURES_FILE))
        file = tmp / FEATURES_FILE
        meta = {**meta, "bytes": file.stat().st_size, "sha256": file_digest(file)}
        (tmp / META_FILE).write_text(json.dumps(meta))
        try:
            os.replace(tmp, folder)
        except OSError:  # another run published the same entry meanwhile: keep a whole one
            if check_entry(folder) is None:
                shutil.rmtree(tmp, ignore_errors=True)
                return
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
