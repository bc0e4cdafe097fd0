"""Token counts -> masking probabilities (DistilBERT's smoothed frequency weighting).

DistilBERT picks the positions to mask with probability proportional to
``max(count, 1) ** -smoothing`` of their token (smoothing 0.7), so that frequent tokens
("the", ",") are masked less often than their share of the text and rare ones more often.
Special tokens get probability 0 and are never picked.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch


def masking_probabilities(token_counts, smoothing: float = 0.7, special_ids: Iterable[int] = ()) -> torch.Tensor:
    """Float32 tensor over the vocabulary: ``max(count, 1) ** -smoothing``, 0 at ``special_ids``.

    The result is normalised to sum to 1 over the non-special tokens. Normalisation does not
    change sampling (positions are drawn by their weights relative to each other in a
    sequence), it only makes the vector readable as a distribution. Tokens never seen get
    the weight of a token seen once. ``smoothing`` 0 gives uniform weights over non-special
    tokens; 1 weights by inverse frequency.
    """
    counts = np.asarray(token_counts.cpu() if isinstance(token_counts, torch.Tensor) else token_counts)
    if counts.ndim != 1 or counts.size == 0:
        raise ValueError(f"token_counts must be a non-empty 1-D array over the vocabulary, got shape {counts.shape}")
    if (counts < 0).any():
        raise ValueError("token_counts has negative entries")
    if smoothing < 0:
        raise ValueError(f"--smoothing must be >= 0, got {smoothing}")
    weights = np.maximum(counts.astype(np.float64), 1.0) ** -float(smoothing)
    specials = [int(i) for i in special_ids]
    bad = [i for i in specials if not 0 <= i < counts.size]
    if bad:
        raise ValueError(f"special token ids {bad} are outside the vocabulary of {counts.size} ids")
    weights[specials] = 0.0
    total = weights.sum()
    if total <= 0:
        raise ValueError("every token is special: nothing could ever be masked")
    return torch.from_numpy(weights / total).float()
