"""Small image sets in the real CIFAR and ImageFolder layouts, made from scikit-learn's digits.

No download: the 8x8 digits ship with scikit-learn. Each digit is upscaled to 24x24, placed at a
random offset on a 32x32 canvas and coloured (a random foreground colour on a random, darker or
lighter background, plus a little noise), so the images are RGB, 32x32 and still say which digit
they show. Train and test (val) images come from disjoint sklearn samples; the same ``seed``
writes byte-identical files.

* :func:`make_cifar` writes the CIFAR-10 / CIFAR-100 *python version* pickles, read by
  ``torchvision.datasets.CIFAR10/100`` (labels: the digit; for CIFAR-100 digit x 10 + colour).
* :func:`make_imagefolder` writes ``train/<class>/*.png`` and ``val/<class>/*.png`` (ImageNet's
  folder layout, read by ``torchvision.datasets.ImageFolder``).
"""

from __future__ import annotations

import pickle
from os import PathLike
from pathlib import Path

import numpy as np

from .synthetic_common import child_rng, resize_bilinear

__all__ = ["make_cifar", "make_imagefolder", "coloured_digits"]

# Ten distinct foreground hues (RGB in [0, 1]); CIFAR-100's label is digit x 10 + hue index.
_HUES = np.array([
    [0.95, 0.20, 0.20], [0.20, 0.85, 0.25], [0.25, 0.35, 0.95], [0.95, 0.85, 0.20], [0.85, 0.25, 0.90],
    [0.20, 0.85, 0.90], [0.98, 0.55, 0.10], [0.60, 0.95, 0.40], [0.55, 0.40, 0.95], [0.95, 0.95, 0.95],
])
_DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_HUE_NAMES = ("red", "green", "blue", "yellow", "magenta", "cyan", "orange", "lime", "violet", "white")


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images, d.target.astype(np.int64)


def coloured_digits(n: int, seed: int, offset: int = 0, size: int = 32,
                    pool: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` coloured 32x32 digit images: ``(images [n, size, size, 3] uint8, digits [n], hues [n])``.

    Image ``i`` uses sklearn sample ``pool[offset + i]`` (default pool: all 1,797 samples in a
    ``seed``-shuffled order) and its own generator (``seed``, ``offset + i``), so an image does
    not change when ``n`` does. ``hues`` index ``_HUES`` (0..9).
    """
    images8, targets = _digits()
    if pool is None:
        pool = np.random.default_rng(seed).permutation(len(targets))
    if offset + n > len(pool):
        raise ValueError(f"coloured_digits: {offset + n} images asked, only {len(pool)} sklearn digits")
    digit_px = size * 3 // 4
    out = np.empty((n, size, size, 3), np.uint8)
    hues = np.empty(n, np.int64)
    for i in range(n):
        k = int(pool[offset + i])
        rng = child_rng(seed, offset + i)
        ink = np.clip(resize_bilinear(images8[k] / 16.0, digit_px, digit_px), 0.0, 1.0)
        canvas = np.zeros((size, size))
        oy, ox = rng.integers(0, size - digit_px + 1, size=2)
        canvas[oy:oy + digit_px, ox:ox + digit_px] = ink
        hues[i] = rng.integers(0, len(_HUES))
        fg = _HUES[hues[i]] * rng.uniform(0.8, 1.0)
        bg = rng.uniform(0.0, 0.35, size=3)
        rgb = bg + canvas[..., None] * (fg - bg) + rng.normal(0.0, 0.03, size=(size, size, 3))
        out[i] = np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)
    return out, targets[pool[offset:offset + n]], hues


def _rows(images: np.ndarray) -> np.ndarray:
    """``[n, 32, 32, 3]`` → CIFAR rows ``[n, 3072]``: the red plane, then green, then blue."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2).reshape(len(images), -1))


def _dump(path: Path, obj: dict) -> None:
    # protocol 2, as the released files (pickled by Python 2); torchvision reads them with latin1.
    path.write_bytes(pickle.dumps(obj, protocol=2))


def make_cifar(root: str | PathLike[str], variant: str = "cifar10", n_train: int = 100, n_test: int = 50,
               seed: int = 0) -> Path:
    """Write a small CIFAR-10 or CIFAR-100 (python version) under ``root``; returns ``root``.

    CIFAR-10: ``root/cifar-10-batches-py/data_batch_1..5`` (training images spread over the
    five batches), ``test_batch``, ``batches.meta``; labels are the digits. CIFAR-100:
    ``root/cifar-100-python/train``, ``test``, ``meta`` with ``fine_labels`` = digit x 10 + hue
    and ``coarse_labels`` = (fine label) // 5 (20 super-classes, as the real set).
    """
    if variant not in ("cifar10", "cifar100"):
        raise ValueError(f"make_cifar: variant must be 'cifar10' or 'cifar100', got {variant!r}")
    if n_train < 5 or n_test < 1:
        raise ValueError(f"make_cifar: need n_train >= 5 (one per batch) and n_test >= 1, got {n_train}, {n_test}")
    root = Path(root)
    train, train_digit, train_hue = coloured_digits(n_train, seed)
    test, test_digit, test_hue = coloured_digits(n_test, seed, offset=n_train)
    if variant == "cifar10":
        folder = root / "cifar-10-batches-py"
        folder.mkdir(parents=True, exist_ok=True)
        for b, idx in enumerate(np.array_split(np.arange(n_train), 5), start=1):
            _dump(folder / f"data_batch_{b}", {
                "batch_label": f"training batch {b} of 5", "labels": train_digit[idx].tolist(),
                "data": _rows(train[idx]), "filenames": [f"digit_{i:05d}.png" for i in idx]})
        _dump(folder / "test_batch", {
            "batch_label": "testing batch 1 of 1", "labels": test_digit.tolist(), "data": _rows(test),
            "filenames": [f"digit_{n_train + i:05d}.png" for i in range(n_test)]})
        _dump(folder / "batches.meta", {"num_cases_per_batch": int(np.ceil(n_train / 5)),
                                        "label_names": list(_DIGIT_NAMES), "num_vis": 3072})
        return root
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    for name, images, digit, hue, first in (("train", train, train_digit, train_hue, 0),
                                            ("test", test, test_digit, test_hue, n_train)):
        fine = (digit * 10 + hue).tolist()
        _dump(folder / name, {
            "filenames": [f"digit_{first + i:05d}.png" for i in range(len(images))], "batch_label": f"{name}ing batch 1 of 1",
            "fine_labels": fine, "coarse_labels": [f // 5 for f in fine], "data": _rows(images)})
    _dump(folder / "meta", {
        "fine_label_names": [f"{h}_{d}" for d in _DIGIT_NAMES for h in _HUE_NAMES],
        "coarse_label_names": [f"group_{g}" for g in range(20)]})
    return root


def make_imagefolder(root: str | PathLike[str], n_train_per_class: int = 8, n_val_per_class: int = 2,
                     n_classes: int = 10, image_size: int = 32, seed: int = 0) -> Path:
    """Write ``root/train/<class>/<id>.png`` and ``root/val/<class>/<id>.png`` (ImageNet's
    folder layout) of coloured digits; classes ``digit_0 .. digit_<n_classes - 1>``; returns ``root``."""
    from PIL import Image

    if not 1 <= n_classes <= 10:
        raise ValueError(f"make_imagefolder: n_classes must be in [1, 10] (the digits), got {n_classes}")
    root = Path(root)
    _, targets = _digits()
    pool = np.random.default_rng(seed).permutation(len(targets))
    # Take the first samples of each class for train, the next ones for val (disjoint).
    picks = {s: [] for s in ("train", "val")}
    for c in range(n_classes):
        members = pool[targets[pool] == c]
        picks["train"] += members[:n_train_per_class].tolist()
        picks["val"] += members[n_train_per_class:n_train_per_class + n_val_per_class].tolist()
    chosen = np.asarray(picks["train"] + picks["val"])
    images, digits, _ = coloured_digits(len(chosen), seed, size=image_size, pool=chosen)
    for i, (img, d) in enumerate(zip(images, digits)):
        split = "train" if i < len(picks["train"]) else "val"
        folder = root / split / f"digit_{d}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"{split}_{i:05d}.png")
    return root
