"""Batches for masked-LM training from token shards: a Dataset view and a masking collator.

``ShardDataset(shards)[i]`` is ``{"input_ids": int64 array, "index": i}``. ``MlmCollator``
pads a list of such items on the right, then masks each row with the seed
``MlmMasker.seed_for(base_seed, epoch, index)``: a sequence gets the same mask in a given
epoch whatever batch or process it lands in, and a new one the next epoch. Use it as a
DataLoader ``collate_fn`` after ``collator.set_epoch(epoch)``, or call it with ``epoch=``.
"""

from __future__ import annotations

import numpy as np
import torch

from .masking import MlmMasker
from .shards import TokenShards


class ShardDataset(torch.utils.data.Dataset):
    """Map-style dataset over a prepared corpus; items carry their sequence index."""

    def __init__(self, shards: TokenShards):
        self.shards = shards

    def __len__(self) -> int:
        return len(self.shards)

    def __getitem__(self, index: int) -> dict:
        return {"input_ids": self.shards[index], "index": int(index)}


class MlmCollator:
    """items (dicts with ``index`` and ``input_ids``, or bare indices read from ``shards``) -> batch.

    The batch has ``input_ids`` (masked), ``attention_mask``, ``labels`` (-100 where not
    masked), ``original_input_ids`` (unmasked, e.g. for the teacher) and ``index``.
    """

    def __init__(self, shards: TokenShards | None, pad_token_id: int, masker: MlmMasker, base_seed: int = 0):
        self.shards = shards
        self.pad_token_id = int(pad_token_id)
        self.masker = masker
        self.base_seed = int(base_seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _item(self, item) -> tuple[int, np.ndarray]:
        if isinstance(item, dict):
            index = int(item["index"])
            ids = item.get("input_ids")
        else:
            index, ids = int(item), None
        if ids is None:
            if self.shards is None:
                raise ValueError(f"item {index} has no input_ids and the collator has no shards to read them from")
            ids = self.shards[index]
        return index, np.asarray(ids, dtype=np.int64)

    def __call__(self, items: list, epoch: int | None = None) -> dict[str, torch.Tensor]:
        if not items:
            raise ValueError("cannot collate an empty batch")
        epoch = self.epoch if epoch is None else int(epoch)
        pairs = [self._item(item) for item in items]
        width = max(ids.size for _, ids in pairs)
        input_ids = torch.full((len(pairs), width), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(pairs), width), dtype=torch.long)
        for row, (_, ids) in enumerate(pairs):
            input_ids[row, : ids.size] = torch.from_numpy(ids)
            attention[row, : ids.size] = 1
        indices = [index for index, _ in pairs]
        seeds = [MlmMasker.seed_for(self.base_seed, epoch, index) for index in indices]
        masked, labels = self.masker(input_ids, attention, seeds)
        return {"input_ids": masked, "attention_mask": attention, "labels": labels,
                "original_input_ids": input_ids, "index": torch.tensor(indices, dtype=torch.long)}
