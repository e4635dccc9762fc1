"""CIFAR-10 / CIFAR-100 from the python pickle batches, read through torchvision.

``torchvision.datasets.CIFAR10/100`` does the reading; the subclasses here only (1) check that
the files exist instead of checking torchvision's MD5 sums (so sets written by
:func:`spikedrive.data.datasets.make_cifar` load too; ``check_md5=True`` restores the check for
the real release) and (2) turn an unreadable batch into a ``ValueError`` naming the file.

Note: the CIFAR batches are Python pickles, and unpickling runs code: read only files you trust.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
from torchvision.datasets import CIFAR10, CIFAR100

from ..events.errors import CorruptFileError

__all__ = ["CIFAR_LAYOUTS", "CIFAR_STATS", "load_cifar"]

CIFAR_LAYOUTS = {
    "cifar10": "{root}/cifar-10-batches-py/{{data_batch_1..5,test_batch,batches.meta}} (the CIFAR-10 python version)",
    "cifar100": "{root}/cifar-100-python/{{train,test,meta}} (the CIFAR-100 python version)",
}
# Per-channel mean and standard deviation of the training images, in [0, 1].
CIFAR_STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}


def _presence_only(files: list[list[str]]) -> list[list[str | None]]:
    # torchvision's check_integrity(path, md5=None) checks only that the file exists.
    return [[name, None] for name, _ in files]


class _CIFAR10Files(CIFAR10):
    train_list = _presence_only(CIFAR10.train_list)
    test_list = _presence_only(CIFAR10.test_list)
    meta = {**CIFAR10.meta, "md5": None}


class _CIFAR100Files(CIFAR100):
    train_list = _presence_only(CIFAR100.train_list)
    test_list = _presence_only(CIFAR100.test_list)
    meta = {**CIFAR100.meta, "md5": None}


_CLASSES = {"cifar10": (CIFAR10, _CIFAR10Files), "cifar100": (CIFAR100, _CIFAR100Files)}


def _diagnose(path: Path, label_key: str | None) -> str | None:
    """Why ``path`` is not a readable CIFAR batch (or meta file), or None if it reads."""
    try:
        with open(path, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
    except Exception as err:  # pickle raises EOFError, UnpicklingError, ValueError, ... on bad bytes
        return f"not a readable pickle ({type(err).__name__}: {err}); the file is truncated or corrupt"
    if not isinstance(entry, dict):
        return f"expected a pickled dict, got {type(entry).__name__}"
    if label_key is None:
        return None
    if "data" not in entry or not any(k in entry for k in ("labels", "fine_labels")):
        return f"missing 'data' or 'labels'/'fine_labels' (keys: {sorted(entry)})"
    data = np.asarray(entry["data"])
    labels = entry.get("labels", entry.get("fine_labels"))
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or data.shape[0] != len(labels):
        return (f"'data' has shape {data.shape} for {len(labels)} labels; expected "
                f"[{len(labels)}, 3072] (32x32x3 uint8 rows)")
    return None


def load_cifar(root: str | os.PathLike[str], variant: str = "cifar10", train: bool = True,
               check_md5: bool = False) -> CIFAR10:
    """The CIFAR ``variant`` (``"cifar10"`` or ``"cifar100"``) split under ``root``, untransformed.

    Items are ``(PIL.Image 32x32 RGB, label int)``; ``.classes`` names the labels. ``root`` is the
    folder that holds ``cifar-10-batches-py/`` (or ``cifar-100-python/``), as torchvision expects.

    Raises:
        ValueError: a missing file, or a batch that is truncated, corrupt or of the wrong shape,
            or a label outside ``[0, len(classes))``, naming the file.
    """
    if variant not in _CLASSES:
        raise ValueError(f"load_cifar: variant must be one of {sorted(_CLASSES)}, got {variant!r}")
    official, files = _CLASSES[variant]
    cls = official if check_md5 else files
    folder = Path(root).expanduser() / cls.base_folder
    names = [n for n, _ in (cls.train_list if train else cls.test_list)]
    for name in [*names, cls.meta["filename"]]:
        if not (folder / name).is_file():
            raise ValueError(
                f"{variant}: {folder / name} is missing; expected {CIFAR_LAYOUTS[variant].format(root=root)}")
    try:
        dataset = cls(str(Path(root).expanduser()), train=train, download=False)
    except Exception as err:
        # torchvision reads every batch in one loop: find the one that broke it.
        for name in names:
            reason = _diagnose(folder / name, "labels")
            if reason is not None:
                raise CorruptFileError(folder / name, None, reason) from err
        reason = _diagnose(folder / cls.meta["filename"], None)
        if reason is not None:
            raise CorruptFileError(folder / cls.meta["filename"], None, reason) from err
        if isinstance(err, RuntimeError) and check_md5:
            raise ValueError(f"{variant}: a file under {folder} fails torchvision's MD5 check ({err})") from err
        raise ValueError(f"{variant}: cannot read {folder}: {type(err).__name__}: {err}") from err
    _check_labels(dataset, variant, folder / names[0] if len(names) == 1 else folder)
    return dataset


def _check_labels(dataset: Any, variant: str, where: Path) -> None:
    targets = np.asarray(dataset.targets)
    bad = np.flatnonzero((targets < 0) | (targets >= len(dataset.classes)))
    if len(bad):
        raise ValueError(
            f"{variant}: {where}: label {int(targets[bad[0]])} of sample {int(bad[0])} is outside "
            f"[0, {len(dataset.classes)}) ({len(dataset.classes)} classes in the meta file)")
