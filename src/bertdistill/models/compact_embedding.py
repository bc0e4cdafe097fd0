"""Word embeddings that train only the rows the training set reads (``--compact-embeddings``).

A BERT student's word-embedding matrix (30,522 x 384 with MiniLM's vocabulary) is most of
its parameters, but a task's training set reads a fraction of its rows (11,572 on SST-2).
With the dense matrix every optimizer step pays for all rows: the embedding backward fills
a zero gradient of the whole matrix, clipping takes its norm, and AdamW reads and writes
the weights and both moments. A row that no training example reads has a zero gradient at
every step, so for it AdamW's update is the decoupled weight decay alone,
``p <- p * (1 - lr_t * wd)``, and its moments stay zero.

``CompactEmbedding`` holds the rows the training set reads as its parameter and the other
rows as a buffer, with the running product of the steps' ``(1 - lr_t * wd)`` factors
(``track(optimizer)`` records it after each optimizer step). The full matrix, those rows
decayed by the product, is built when it is needed: for ids outside the trained rows
(evaluation on dev text, under no_grad) and for saving (``full_vocabulary``).

Against the dense run:
- the trained rows, their moments and every other parameter get the same element-wise
  updates; the clipping norm sums fewer zeros, so it may differ in its last bit, and with
  it the clipping factor;
- the other rows get the float64 product of the factors applied once, where the dense run
  multiplies in float32 at every step, by a factor rounded to float32 (1 - 5e-7 has a
  rounding step of 6e-8). Over the 2,105 steps of an SST-2 epoch (lr 5e-5, decay 0.01), in which
  these rows shrink by 5.3e-4 in all, the two differ by up to 5.9e-5 relative
  (benchmarks/results/peak-flops/compact-and-dropout-ab.md).

A training forward that reads a row outside the compact set raises: that row would need
training (e.g. a recipe that replaces tokens at random during training). A step that a
GradScaler skips (fp16 with inf gradients) adds no decay, as the dense step changes nothing.
Under several processes the compact rows are a parameter of the DDP module, so their
gradients are all-reduced like any other's (tests/test_compact_ddp.py), and the all-reduce
carries those rows' gradient instead of the whole matrix's. DDP also broadcasts the untrained
rows with the other buffers at each forward. On SST-2 with 2 gloo processes on 2 CPU cores, the training loop
was still 8 % faster than the dense one, with the same model (benchmarks/RESULTS.md, "Performance options").
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

OPTION = "--compact-embeddings"


class CompactEmbedding(nn.Module):
    """A drop-in for ``nn.Embedding`` that trains the rows ``used_ids`` (see the module doc)."""

    def __init__(self, dense: nn.Embedding, used_ids: torch.Tensor):
        super().__init__()
        weight = dense.weight.detach()
        vocab, dim = weight.shape
        used = torch.unique(used_ids.to(torch.long).flatten().cpu())
        if dense.padding_idx is not None:
            used = torch.unique(torch.cat([used, torch.tensor([dense.padding_idx])]))
        if used.numel() and (used[0] < 0 or used[-1] >= vocab):
            raise ValueError(f"{OPTION}: token ids must lie in [0, {vocab}), got {int(used[0])}..{int(used[-1])}")
        remap = torch.full((vocab,), -1, dtype=torch.long)
        remap[used] = torch.arange(used.numel())
        rest = torch.nonzero(remap < 0).flatten()
        device = weight.device
        self.num_embeddings, self.embedding_dim = vocab, dim
        self.full_padding_idx = dense.padding_idx
        self.padding_idx = int(remap[dense.padding_idx]) if dense.padding_idx is not None else None
        self.weight = nn.Parameter(weight[used.to(device)].clone(), requires_grad=dense.weight.requires_grad)
        self.register_buffer("used_ids", used.to(device))
        self.register_buffer("remap", remap.to(device))
        self.register_buffer("rest_ids", rest.to(device))
        self.register_buffer("rest", weight[rest.to(device)].clone())
        self.register_buffer("decay", torch.ones((), dtype=torch.float64, device=device))

    def full_weight(self) -> torch.Tensor:
        """The (vocab, dim) matrix of the dense run: trained rows, the others decayed; differentiable
        with respect to the trained rows."""
        full = torch.zeros(self.num_embeddings, self.embedding_dim, dtype=self.weight.dtype, device=self.weight.device)
        full = full.index_copy(0, self.rest_ids, self.rest * self.decay.to(self.rest.dtype))
        return full.index_copy(0, self.used_ids, self.weight)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        index = self.remap[input_ids]
        if bool((index < 0).any()):
            if torch.is_grad_enabled() and self.weight.requires_grad:
                bad = input_ids[index < 0].unique()[:5].tolist()
                raise ValueError(f"{OPTION}: a training batch reads token ids {bad}, which no training example "
                                 "had when the compact embedding was built; run without " + OPTION)
            return F.embedding(input_ids, self.full_weight(), self.full_padding_idx)
        return F.embedding(index, self.weight, self.padding_idx)

    def to_dense(self) -> nn.Embedding:
        """A plain ``nn.Embedding`` with the full matrix (a copy)."""
        dense = nn.Embedding(self.num_embeddings, self.embedding_dim, padding_idx=self.full_padding_idx,
                             device=self.weight.device, dtype=self.weight.dtype)
        with torch.no_grad():
            dense.weight.copy_(self.full_weight())
        dense.weight.requires_grad_(self.weight.requires_grad)
        return dense

    def track(self, optimizer: torch.optim.Optimizer):
        """Record each step's weight-decay factor of AdamW for the untrained rows; returns the hook's handle."""
        inner = getattr(optimizer, "optimizer", optimizer)  # accelerate's wrapper holds the torch optimizer
        if not isinstance(inner, torch.optim.AdamW):
            raise ValueError(f"{OPTION} needs AdamW (decoupled weight decay), got {type(inner).__name__}")
        group = next((g for g in inner.param_groups if any(p is self.weight for p in g["params"])), None)
        if group is None:
            raise ValueError(f"{OPTION}: the optimizer does not train the compact embedding")

        def after_step(opt, *_):
            # a GradScaler hands fused AdamW its inf flag and the kernel skips the whole update
            skipped = getattr(opt, "found_inf", None)
            decay = float(group.get("weight_decay", 0.0))
            if decay and not (skipped is not None and bool(skipped > 0)):
                self.decay.mul_(1.0 - float(group["lr"]) * decay)

        return inner.register_step_post_hook(after_step)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, trained rows={self.weight.shape[0]}"


def used_token_ids(features: Iterable[dict]) -> torch.Tensor:
    """Every token id in ``features``' ``input_ids`` (sorted, unique)."""
    ids = [torch.as_tensor(f["input_ids"], dtype=torch.long) for f in features]
    return torch.unique(torch.cat(ids)) if ids else torch.zeros(0, dtype=torch.long)


def install(model: nn.Module, used_ids: torch.Tensor) -> CompactEmbedding | None:
    """Swap ``model``'s input embeddings for a ``CompactEmbedding`` over ``used_ids``; None when
    they are frozen (nothing to save)."""
    dense = model.get_input_embeddings()
    if not isinstance(dense, nn.Embedding):
        raise ValueError(f"{OPTION}: the student's input embeddings are {type(dense).__name__}, not nn.Embedding")
    if model.get_output_embeddings() is not None:
        raise ValueError(f"{OPTION}: the student's output layer shares the word embeddings (a language-model "
                         "head), which reads every row; run without " + OPTION)
    if not dense.weight.requires_grad:
        return None
    compact = CompactEmbedding(dense, used_ids)
    model.set_input_embeddings(compact)
    return compact


def restore_dense(model: nn.Module) -> None:
    """Put a plain ``nn.Embedding`` with the full matrix back in place of a ``CompactEmbedding``."""
    compact = model.get_input_embeddings()
    if isinstance(compact, CompactEmbedding):
        model.set_input_embeddings(compact.to_dense())


@contextmanager
def full_vocabulary(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` with plain full-vocabulary embeddings for the duration (e.g. to save it)."""
    compact = model.get_input_embeddings()
    if not isinstance(compact, CompactEmbedding):
        yield model
        return
    model.set_input_embeddings(compact.to_dense())
    try:
        yield model
    finally:
        model.set_input_embeddings(compact)
