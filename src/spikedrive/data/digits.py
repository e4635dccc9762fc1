"""The embedded default data: scikit-learn's 8x8 handwritten digits (real data, ships with
scikit-learn, no download), split three ways: train, validation (model selection) and a test
split that model selection never sees."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import TensorDataset

__all__ = ["IndexedTensorDataset", "load_digits_split", "stratified_split"]


class IndexedTensorDataset(TensorDataset):
    """A ``TensorDataset`` that remembers which samples of the full set it holds.

    Attributes:
        indices: int64 ``[N]``, the positions in the full set of the ``N`` samples, in order.
    """

    def __init__(self, indices: torch.Tensor, *tensors: torch.Tensor) -> None:
        super().__init__(*tensors)
        self.indices = indices


def stratified_split(labels: np.ndarray, val_fraction: float, test_fraction: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Disjoint ``(train, val, test)`` index arrays covering ``range(len(labels))``.

    Per class, the samples are shuffled by a generator seeded with ``seed``; the first
    ``round(n * test_fraction)`` go to test, the next ``round(n * val_fraction)`` to val, the rest
    to train. A non-zero fraction takes at least one sample of every class, so tiny sets still
    get a usable split. Each array is sorted (the samples keep the set's order).

    Raises ``ValueError`` when a fraction is outside ``[0, 1)``, the two sum to 1 or more, or a
    class would be left without a training sample.
    """
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"stratified_split: {name}={value!r} is invalid; expected a value in [0, 1)")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(f"stratified_split: val_fraction={val_fraction!r} + test_fraction={test_fraction!r} "
                         "must be < 1, so that training keeps samples")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    parts: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        n_test, n_val = (_take(len(idx), f) for f in (test_fraction, val_fraction))
        if n_test + n_val >= len(idx):
            raise ValueError(f"stratified_split: class {c!r} has {len(idx)} sample(s), too few for "
                             f"val_fraction={val_fraction!r} and test_fraction={test_fraction!r} to leave "
                             "one for training")
        parts[2].append(idx[:n_test])
        parts[1].append(idx[n_test:n_test + n_val])
        parts[0].append(idx[n_test + n_val:])
    train, val, test = (np.sort(np.concatenate(p)).astype(np.int64) for p in parts)
    return train, val, test


def _take(n: int, fraction: float) -> int:
    return 0 if fraction == 0.0 else max(1, int(round(n * fraction)))


def load_digits_split(val_fraction: float = 0.15, test_fraction: float = 0.25,
                      seed: int = 0) -> tuple[IndexedTensorDataset, IndexedTensorDataset, IndexedTensorDataset]:
    """Stratified ``(train, val, test)`` split of the 1,797 digits (:func:`stratified_split`).

    Each is an :class:`IndexedTensorDataset` of ``(image [1, 8, 8] float32 in [0, 1], label
    int64)``. The split depends only on ``seed``, so every run and every process sees the same
    one; the test split is the one a two-way split with the same ``seed`` and ``test_fraction``
    held out (the first shuffled samples of each class).
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy(digits.images.astype(np.float32) / 16.0).unsqueeze(1)
    labels = torch.from_numpy(digits.target.astype(np.int64))
    splits = stratified_split(labels.numpy(), val_fraction, test_fraction, seed)

    def subset(idx: np.ndarray) -> IndexedTensorDataset:
        index = torch.from_numpy(idx)
        return IndexedTensorDataset(index, images[index], labels[index])

    train, val, test = (subset(idx) for idx in splits)
    return train, val, test
