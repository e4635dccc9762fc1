"""Gen1 automotive detection (de Tournemire et al. 2020) read from its released layout."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..events.gen1 import GEN1_CLASSES, read_gen1_boxes
from ..events.prophesee import GEN1_SENSOR_SIZE, read_prophesee_dat_window
from .event_base import EventDataset, Transform, first_existing

__all__ = ["Gen1", "last_box_per_track"]

Root = str | os.PathLike[str]


def last_box_per_track(boxes: np.ndarray) -> np.ndarray:
    """The boxes of one label time with a track listed twice reduced to its last row (SpikeYOLO's
    and Prophesee's loaders do the same); the kept rows stay in file order.

    A track is keyed by ``(track_id, class_id)``: a real track has one class, and files written
    without track ids (all 0) must not merge a car with a pedestrian.
    """
    if len(boxes) < 2:
        return boxes
    key = boxes["track_id"].astype(np.int64) * 256 + boxes["class_id"].astype(np.int64)
    _, first_in_reversed = np.unique(key[::-1], return_index=True)
    keep = np.sort(len(boxes) - 1 - first_in_reversed)
    return boxes[keep]


class Gen1(EventDataset):
    """Gen1 ATIS automotive detection: 39 h of driving, cars and pedestrians boxed at 1-4 Hz.

    Prophesee's release (registration required, so no download here) unpacks to
    ``detection_dataset_duration_60s_ratio_1.0/{train,val,test}/`` with one 60 s recording
    per pair ``<name>_td.dat`` (events) + ``<name>_bbox.npy`` (boxes). Every distinct box
    time ``t`` of a recording is one sample: the events with ``t - window_us <= t_ev < t``
    (half-open, SpikeYOLO's label windows) and the boxes labelled at ``t``, the last row of each
    track id when one is listed twice (:func:`last_box_per_track`; ``BOX_DTYPE``:
    ``[x, y, w, h]`` pixels, ``class_id`` 0 car / 1 pedestrian). Events are cut by binary
    search, so only the window is read. ``t`` is passed to transforms that take
    ``label_time_us`` (e.g. ``ToEventHistogram(GEN1_SENSOR_SIZE, window_us=window_us)``).

    Args:
        root: the folder holding ``train/val/test`` (or its parent).
        train: True -> "train", False -> "test"; ``split`` overrides it (e.g. "val").
        window_us: length of the event window before each label, in us.
    """

    layout = (
        "root/  (or root/detection_dataset_duration_60s_ratio_1.0/)\n"
        "  train/<name>_td.dat, train/<name>_bbox.npy\n  val/...\n  test/..."
    )
    sensor_size = GEN1_SENSOR_SIZE
    classes = GEN1_CLASSES

    def __init__(self, root: Root, train: bool = True, split: str | None = None,
                 window_us: int = 50_000, transform: Transform | None = None,
                 target_transform: Transform | None = None, download: bool = False) -> None:
        self.split = split if split is not None else ("train" if train else "test")
        if self.split not in ("train", "val", "test"):
            raise ValueError(f"Gen1: split={self.split!r}, expected 'train', 'val' or 'test'")
        if window_us <= 0:
            raise ValueError(f"Gen1: window_us={window_us}, expected > 0")
        self.window_us = window_us
        self.recordings: list[tuple[Path, np.ndarray]] = []
        super().__init__(root, transform, target_transform, download)

    def _find_samples(self) -> list[tuple[int, int]]:
        base = first_existing(self.root, "detection_dataset_duration_60s_ratio_1.0") or self.root
        folder = base / self.split
        samples = []
        for dat in sorted(folder.glob("*_td.dat")) if folder.is_dir() else []:
            bbox = dat.with_name(dat.name[: -len("_td.dat")] + "_bbox.npy")
            if not bbox.is_file():
                raise FileNotFoundError(f"Gen1: {dat.name} has no {bbox.name} beside it in {folder}")
            boxes = read_gen1_boxes(bbox)
            rec = len(self.recordings)
            self.recordings.append((dat, boxes))
            samples.extend((rec, int(t)) for t in np.unique(boxes["t"]))
        return samples

    def _load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rec, t = self.samples[index]
        dat, boxes = self.recordings[rec]
        events = read_prophesee_dat_window(dat, t - self.window_us, t)
        return events, last_box_per_track(boxes[boxes["t"] == t])

    def _label_time(self, index: int) -> int:
        return self.samples[index][1]
