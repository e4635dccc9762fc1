"""Batching sequences time-major: samples ``[T, ...]`` → batches ``[T, B, ...]``."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["time_major_collate", "TimeMajorDataset"]


def time_major_collate(samples: Sequence[tuple[Any, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack ``(sequence [T, ...], label)`` samples into ``(inputs [T, B, ...], labels [B])``.

    Every sequence must have the same shape; a mismatch raises ``ValueError`` naming both shapes.
    """
    seqs = [torch.as_tensor(np.asarray(s)) if not isinstance(s, torch.Tensor) else s for s, _ in samples]
    first = seqs[0].shape
    for s in seqs:
        if s.shape != first:
            raise ValueError(f"time_major_collate: sequences differ in shape: {tuple(first)} vs {tuple(s.shape)}")
    labels = torch.as_tensor([int(y) for _, y in samples], dtype=torch.int64)
    return torch.stack(seqs, dim=1).float(), labels


class TimeMajorDataset(Dataset):
    """Wraps a dataset of ``(sequence [T, ...], label)`` so loaders batch it as ``[T, B, ...]``.

    The engine's loaders use ``dataset.collate_fn``; ``time_major = True`` tells analysis tools
    that the batch lies in dimension 1.
    """

    time_major = True
    collate_fn = staticmethod(time_major_collate)

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        return self.dataset[index]
