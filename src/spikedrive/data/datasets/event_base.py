"""Common shell of the event datasets: root checking, transforms, indexing."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from ..events.transforms import apply_transform

__all__ = ["EventDataset", "first_existing"]

Transform = Callable[[Any], Any]


class EventDataset(Dataset):
    """A dataset of ``(events, target)`` read from a real on-disk layout under ``root``.

    Subclasses set ``layout`` (shown when ``root`` is wrong), ``sensor_size`` (width, height)
    and ``classes``, and implement ``_find_samples`` and ``_load``. ``transform`` is applied to
    the events (an ``EVENT_DTYPE`` array ``[N]``), ``target_transform`` to the target.

    Datasets whose samples end at a label time (Gen1 boxes, MVSEC depth maps) return the events
    of ``[label - window_us, label)`` and override ``_label_time``; the label time then reaches
    every transform that takes a ``label_time_us`` argument (``ToEventHistogram``,
    ``ToCumulativeFrames``, a ``Compose`` holding them, or your own function with that
    parameter), so a representation's window ends at the label, not at the last event. Other
    transforms are called as ``transform(events)``.
    """

    layout: str = ""
    sensor_size: tuple[int, int] = (0, 0)
    classes: tuple[str, ...] = ()

    def __init__(self, root: str | os.PathLike[str], transform: Transform | None = None,
                 target_transform: Transform | None = None, download: bool = False) -> None:
        self.root = Path(root).expanduser()
        self.transform = transform
        self.target_transform = target_transform
        if download:
            self.download()
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"{type(self).__name__}: root {str(self.root)!r} does not exist; expected layout:\n"
                f"{self.layout}"
            )
        self.samples: list[Any] = self._find_samples()
        if not self.samples:
            raise FileNotFoundError(
                f"{type(self).__name__}: no samples under {str(self.root)!r}; expected layout:\n"
                f"{self.layout}"
            )

    # -- subclass hooks ------------------------------------------------------------------
    def _find_samples(self) -> list[Any]:
        raise NotImplementedError

    def _load(self, index: int) -> tuple[np.ndarray, Any]:
        raise NotImplementedError

    def _label_time(self, index: int) -> int | None:
        """The label time (us) sample ``index``'s window ends at, or None (no label time)."""
        return None

    def download(self) -> None:
        """Fetch and unpack the dataset into ``root``; default: no scriptable public URL."""
        raise RuntimeError(
            f"{type(self).__name__} has no public URL that a script can fetch; download it by "
            f"hand (see the class docstring) and unpack it under {str(self.root)!r} as:\n{self.layout}"
        )

    # -- Dataset protocol -----------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"{type(self).__name__}: index {index} out of range for {len(self)}")
        index = index % len(self)
        events, target = self._load(index)
        if self.transform is not None:
            events = apply_transform(self.transform, events, self._label_time(index))
        if self.target_transform is not None:
            target = self.target_transform(target)
        return events, target


def first_existing(root: Path, *candidates: str) -> Path | None:
    """The first of ``root / c`` that is a directory, or None."""
    for c in candidates:
        if (root / c).is_dir():
            return root / c
    return None
