"""Root checks and deterministic train / validation carving shared by every dataset builder.

The builders registered in the engine return ``(train, val, test)``. Real layouts that ship only
a training and a test split (CIFAR, ImageNet train/val, N-MNIST, ...) carve ``val`` out of the
training split here, by seed, so the test split never takes part in model selection.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

__all__ = ["require_root", "carve_val", "SplitView"]


def require_root(name: str, root: str | os.PathLike[str] | None, expected: str) -> Path:
    """``root`` as a ``Path`` if it is an existing folder, else a one-line ``ValueError``.

    Args:
        name: the dataset's registry name, which leads the message.
        root: the recipe's ``data_root``.
        expected: the layout under ``root``, written with ``{root}`` where the path goes, e.g.
            ``"{root}/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}"``.
    """
    if root is None or str(root) == "":
        raise ValueError(
            f"{name}: data_root is required (null given); expected "
            f"{expected.format(root='<data_root>')}")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise ValueError(
            f"{name}: data_root {str(path)!r} does not exist; expected {expected.format(root=path)}")
    return path


def carve_val(n: int, val_fraction: float, seed: int, labels: Sequence[int] | None = None,
              contiguous: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(n)`` into sorted ``(train_idx, val_idx)`` int64 arrays, the same for every seed.

    ``round(n * val_fraction)`` samples (at least one) go to validation. With ``labels`` the draw
    is stratified: each class gives its share in proportion to its size. With ``contiguous`` the
    last samples are taken instead of a random draw (for sequences whose neighbours are nearly
    the same sample, such as depth maps 50 ms apart, so validation is not a copy of training).
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction: must be in (0, 1), got {val_fraction}")
    n_val = max(1, int(round(n * val_fraction)))
    if n_val >= n:
        raise ValueError(
            f"val_fraction: {val_fraction} of {n} training samples leaves none to train on; "
            f"use a smaller fraction or more samples")
    if contiguous:
        order = np.arange(n - n_val, n)
    else:
        rng = np.random.default_rng(seed)
        perm = rng.permutation(n)
        if labels is None:
            order = perm[:n_val]
        else:
            if len(labels) != n:
                raise ValueError(f"carve_val: {len(labels)} labels for {n} samples")
            y = np.asarray(labels)[perm]
            # Each sample's rank within its class, as a fraction: taking the smallest fractions
            # first takes every class in proportion to its size.
            frac = np.empty(n)
            for c in np.unique(y):
                members = np.flatnonzero(y == c)
                frac[members] = (np.arange(len(members)) + 0.5) / len(members)
            order = perm[np.argsort(frac, kind="stable")[:n_val]]
    val = np.sort(order).astype(np.int64)
    train = np.setdiff1d(np.arange(n, dtype=np.int64), val)
    return train, val


class SplitView(Dataset):
    """Samples ``indices`` of ``base`` with their own ``transform`` (train and val views of one
    base dataset share its decoded data but not their augmentation).

    ``base[i]`` must return ``(sample, target)``; the view returns ``(transform(sample), target)``,
    or ``transform(sample, target)`` with ``joint=True`` (detection transforms that move boxes
    with the image). Attributes ``classes`` and ``collate_fn`` of ``base`` are passed through.
    """

    def __init__(self, base: Dataset, indices: Sequence[int] | np.ndarray | None = None,
                 transform: Callable[..., Any] | None = None, joint: bool = False) -> None:
        self.base = base
        self.joint = joint
        self.indices = np.arange(len(base)) if indices is None else np.asarray(indices, dtype=np.int64)  # type: ignore[arg-type]
        self.transform = transform
        if hasattr(base, "classes"):
            self.classes = base.classes
        if hasattr(base, "collate_fn"):
            self.collate_fn = base.collate_fn

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        sample, target = self.base[int(self.indices[index])]
        if self.transform is None:
            return sample, target
        if self.joint:
            return self.transform(sample, target)
        return self.transform(sample), target
