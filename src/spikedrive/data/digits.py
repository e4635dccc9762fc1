"""The embedded default data: scikit-learn's 8x8 handwritten digits (real data, ships with
scikit-learn, no download)."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import TensorDataset

__all__ = ["load_digits_split"]


def load_digits_split(test_fraction: float = 0.25, seed: int = 0) -> tuple[TensorDataset, TensorDataset]:
    """Stratified train / held-out split of the 1,797 digits.

    Returns two ``TensorDataset``s of ``(image [1, 8, 8] float32 in [0, 1], label int64)``.
    The split depends only on ``seed``, so every run and every process sees the same one.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"load_digits_split: test_fraction must be in (0, 1), got {test_fraction}")
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype(np.float32) / 16.0
    labels = digits.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    test_idx = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        test_idx.append(idx[: int(round(len(idx) * test_fraction))])
    test_mask = np.zeros(len(labels), dtype=bool)
    test_mask[np.concatenate(test_idx)] = True

    def subset(mask: np.ndarray) -> TensorDataset:
        return TensorDataset(torch.from_numpy(images[mask]).unsqueeze(1), torch.from_numpy(labels[mask]))

    return subset(~test_mask), subset(test_mask)
