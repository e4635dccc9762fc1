"""N-Digits as frames: the synthetic N-MNIST-format set, read through the real reader.

The full path of an event-camera classification recipe, on data that needs no download:
``make_ndigits`` (sklearn digits → DVS simulator → N-MNIST ``.bin`` files) → :class:`NMNIST`
(the real reader and layout) → :class:`ToFrame` (``T`` frames of ``[2, 34, 34]``) → batches
``[T, B, 2, 34, 34]``. Train and validation are a stratified split of the ``Train/`` recordings;
``Test/`` is the test split.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from torch.utils.data import Subset

from .datasets import NMNIST, make_ndigits
from .digits import stratified_split
from .events import NMNIST_SENSOR_SIZE, ToFrame
from .sequence import TimeMajorDataset

__all__ = ["load_ndigits_frames", "default_cache_dir"]

MARKER = "ndigits.json"


def default_cache_dir() -> Path:
    """Where generated datasets are kept: ``$SPIKEDRIVE_CACHE`` or ``~/.cache/spikedrive``."""
    return Path(os.environ.get("SPIKEDRIVE_CACHE", Path.home() / ".cache" / "spikedrive"))


def load_ndigits_frames(
    root: str | os.PathLike[str] | None = None,
    T: int = 8,
    n_per_class: int = 100,
    n_test_per_class: int = 30,
    seed: int = 0,
    binarize: bool = True,
    val_fraction: float = 0.1,
) -> tuple[TimeMajorDataset, TimeMajorDataset, TimeMajorDataset]:
    """``(train, val, test)`` N-Digits datasets of ``(frames [T, 2, 34, 34] float32, label)``.

    ``val`` is a stratified ``val_fraction`` of the ``n_per_class`` training recordings per
    class (at least one per class; seeded by ``seed``), ``train`` the rest; ``test`` is the
    ``n_test_per_class`` recordings per class of ``Test/``, made from other sklearn samples.
    With ``binarize`` (default) a pixel is 1 if it saw any event of that polarity in the bin,
    so the frames are spikes and the whole network can be spike-driven; otherwise event counts.

    Where the recordings live:

    * ``root=None``: a folder named after the parameters in :func:`default_cache_dir`, created
      and generated into on first use.
    * ``root`` given: it must be an existing folder (it is never created). If it holds the
      ``ndigits.json`` marker of these parameters it is read; if it is empty the set is
      generated into it; anything else is refused, so a user's own files are never overwritten.

    The marker is written last, so an interrupted generation is redone (in the cache) or
    refused until the folder is emptied (a named root).

    Raises:
        ValueError: ``root`` does not exist, is not a folder, or holds other files.
    """
    params = {"n_per_class": n_per_class, "n_test_per_class": n_test_per_class, "seed": seed}
    if root is None:
        folder = default_cache_dir() / f"ndigits-{n_per_class}-{n_test_per_class}-{seed}"
        if not _has_marker(folder, params):
            _generate(folder, params)
    else:
        folder = Path(root)
        if not folder.is_dir():
            what = "is not a folder" if folder.exists() else "does not exist"
            raise ValueError(f"load_ndigits_frames: root={str(folder)!r} {what}; pass an existing (empty) folder "
                             "to generate N-Digits into, or root=None for the default cache")
        if not _has_marker(folder, params):
            if any(folder.iterdir()):
                raise ValueError(
                    f"load_ndigits_frames: root={str(folder)!r} holds files but no {MARKER} marker for "
                    f"{params}; refusing to generate over them (use an empty folder or root=None)")
            _generate(folder, params)
    to_frames = ToFrame(sensor_size=NMNIST_SENSOR_SIZE, n_time_bins=T, binarize=binarize)
    recordings = NMNIST(folder, train=True, transform=to_frames)
    labels = np.asarray([label for _, label in recordings.samples])
    train_idx, val_idx, _ = stratified_split(labels, val_fraction, 0.0, seed)
    return (
        TimeMajorDataset(Subset(recordings, train_idx.tolist())),
        TimeMajorDataset(Subset(recordings, val_idx.tolist())),
        TimeMajorDataset(NMNIST(folder, train=False, transform=to_frames)),
    )


def _has_marker(folder: Path, params: dict[str, int]) -> bool:
    marker = folder / MARKER
    return marker.is_file() and json.loads(marker.read_text()) == params


def _generate(folder: Path, params: dict[str, int]) -> None:
    make_ndigits(folder, **params)
    (folder / MARKER).write_text(json.dumps(params))
