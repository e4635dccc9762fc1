"""N-Digits as frames: the synthetic N-MNIST-format set, read through the real reader.

The full path of an event-camera classification recipe, on data that needs no download:
``make_ndigits`` (sklearn digits → DVS simulator → N-MNIST ``.bin`` files) → :class:`NMNIST`
(the real reader and layout) → :class:`ToFrame` (``T`` frames of ``[2, 34, 34]``) → batches
``[T, B, 2, 34, 34]``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .datasets import NMNIST, make_ndigits
from .events import NMNIST_SENSOR_SIZE, ToFrame
from .sequence import TimeMajorDataset

__all__ = ["load_ndigits_frames", "default_cache_dir"]


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
) -> tuple[TimeMajorDataset, TimeMajorDataset]:
    """``(train, test)`` N-Digits datasets of ``(frames [T, 2, 34, 34] float32, label)``.

    With ``binarize`` (default) a pixel is 1 if it saw any event of that polarity in the bin,
    so the frames are spikes and the whole network can be spike-driven; otherwise event counts.

    Generates the recordings under ``root`` (default: a folder named after the parameters in
    :func:`default_cache_dir`) unless a previous call with the same parameters already did; a
    ``ndigits.json`` marker, written last, records them, so an interrupted generation is redone.
    """
    params = {"n_per_class": n_per_class, "n_test_per_class": n_test_per_class, "seed": seed}
    folder = Path(root) if root is not None else default_cache_dir() / f"ndigits-{n_per_class}-{n_test_per_class}-{seed}"
    marker = folder / "ndigits.json"
    if not marker.is_file() or json.loads(marker.read_text()) != params:
        make_ndigits(folder, n_per_class=n_per_class, n_test_per_class=n_test_per_class, seed=seed)
        marker.write_text(json.dumps(params))
    to_frames = ToFrame(sensor_size=NMNIST_SENSOR_SIZE, n_time_bins=T, binarize=binarize)
    return (
        TimeMajorDataset(NMNIST(folder, train=True, transform=to_frames)),
        TimeMajorDataset(NMNIST(folder, train=False, transform=to_frames)),
    )
