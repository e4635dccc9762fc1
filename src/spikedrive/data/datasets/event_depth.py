"""MVSEC (Zhu et al. 2018) monocular event-depth samples read from the released HDF5 files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..events import augment
from ..events.mvsec import (
    MVSEC_SENSOR_SIZE,
    read_mvsec_depth_frame,
    read_mvsec_depth_times,
    read_mvsec_events_window,
    read_mvsec_frame_size,
)
from .event_base import EventDataset, Transform

__all__ = ["MVSEC"]

Root = str | os.PathLike[str]


class MVSEC(EventDataset):
    """MVSEC DAVIS events with lidar depth, one sample per depth map.

    The HDF5 release (Google Drive / UPenn, not scriptable, so no download here) has per
    sequence ``<sequence>_data.hdf5`` (events) and ``<sequence>_gt.hdf5`` (depth). A sample is
    the events with ``t_k - window_us <= t < t_k`` before depth map ``k`` (half-open, like every
    label window here) and the depth map ``[H, W]`` float32 in metres (NaN = no lidar return).
    ``t_k`` is passed to transforms that take ``label_time_us`` (e.g.
    ``ToCumulativeFrames(MVSEC_SENSOR_SIZE, window_us=window_us)``).

    **Frame size.** The files store no sensor size; the dataset takes it from the depth maps
    (346x260 for the real recordings, whatever a generator wrote otherwise) as the instance's
    ``sensor_size``, so size the frame transform with ``dataset.sensor_size``. ``crop = (x, y,
    w, h)`` keeps the ``w x h`` pixels from column ``x``, row ``y``: events outside are dropped,
    the others shifted to the crop's origin, the depth map sliced, and ``sensor_size`` becomes
    ``(w, h)`` (a small CPU-sized input from full-size recordings).

    The default split is the one of Hidalgo-Carrio et al. (2020) and the spiking depth
    papers: train on ``outdoor_day2``, test on ``outdoor_day1``; pass ``sequences`` for others
    (e.g. the night sequences).

    Args:
        root: folder with the ``*_data.hdf5`` / ``*_gt.hdf5`` files (or one subfolder per scene).
        train: picks the default sequences.
        sequences: names like ``"outdoor_day1"``; overrides ``train``.
        window_us: event window before each depth map, in us.
        camera: "left" or "right".
        depth_kind: "raw" (``depth_image_raw``) or "rect" (``depth_image_rect``).
        crop: ``(x, y, w, h)`` pixels inside the frame, or None for the whole frame.
    """

    layout = "root/\n  outdoor_day1_data.hdf5, outdoor_day1_gt.hdf5\n  outdoor_day2_data.hdf5, ..."
    sensor_size = MVSEC_SENSOR_SIZE
    default_sequences = {True: ("outdoor_day2",), False: ("outdoor_day1",)}

    def __init__(self, root: Root, train: bool = True, sequences: Sequence[str] | None = None,
                 window_us: int = 50_000, camera: str = "left", depth_kind: str = "raw",
                 transform: Transform | None = None, target_transform: Transform | None = None,
                 download: bool = False, crop: Sequence[int] | None = None) -> None:
        if window_us <= 0:
            raise ValueError(f"MVSEC: window_us={window_us}, expected > 0")
        if depth_kind not in ("raw", "rect"):
            raise ValueError(f"MVSEC: depth_kind={depth_kind!r}, expected 'raw' or 'rect'")
        self.sequences = tuple(sequences) if sequences is not None else self.default_sequences[bool(train)]
        self.window_us, self.camera, self.depth_kind = window_us, camera, depth_kind
        self.files: list[tuple[Path, Path]] = []
        self.frame_size: tuple[int, int] | None = None  # (W, H) of the files' depth maps
        self.crop = tuple(int(v) for v in crop) if crop is not None else None
        super().__init__(root, transform, target_transform, download)
        full = self.frame_size or MVSEC_SENSOR_SIZE
        if self.crop is not None:
            x, y, w, h = self.crop if len(self.crop) == 4 else (-1, -1, 0, 0)
            if not (w >= 1 and h >= 1 and x >= 0 and y >= 0 and x + w <= full[0] and y + h <= full[1]):
                raise ValueError(f"MVSEC: crop={tuple(crop)}, expected (x, y, w, h) with w, h >= 1 inside the "
                                 f"{full[0]}x{full[1]} frame")
            self.sensor_size = (w, h)
        else:
            self.sensor_size = full

    def _locate(self, sequence: str) -> tuple[Path, Path] | None:
        for folder in (self.root, self.root / sequence.rstrip("0123456789")):
            data, gt = folder / f"{sequence}_data.hdf5", folder / f"{sequence}_gt.hdf5"
            if data.is_file() and gt.is_file():
                return data, gt
        return None

    def _find_samples(self) -> list[tuple[int, int, int]]:
        samples = []
        for sequence in self.sequences:
            found = self._locate(sequence)
            if found is None:
                raise FileNotFoundError(
                    f"MVSEC: {sequence}_data.hdf5 / {sequence}_gt.hdf5 not found under "
                    f"{str(self.root)!r}; expected layout:\n{self.layout}"
                )
            ts = read_mvsec_depth_times(found[1], self.camera, self.depth_kind)
            size = read_mvsec_frame_size(found[1], self.camera, self.depth_kind)
            if self.frame_size is not None and size != self.frame_size:
                raise ValueError(f"MVSEC: {found[1].name} has {size[0]}x{size[1]} depth maps, expected "
                                 f"{self.frame_size[0]}x{self.frame_size[1]} like the sequences before it")
            self.frame_size = size
            self.files.append(found)
            samples.extend((len(self.files) - 1, k, int(t)) for k, t in enumerate(ts))
        return samples

    def _load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        seq, k, t = self.samples[index]
        data, gt = self.files[seq]
        events = read_mvsec_events_window(data, t - self.window_us, t, self.camera)
        depth = read_mvsec_depth_frame(gt, k, self.camera, self.depth_kind)
        if self.crop is None:
            return events, depth
        x, y, w, h = self.crop
        full = self.frame_size or MVSEC_SENSOR_SIZE
        # the events' crop is the library's one; the depth map is sliced with the same box
        return augment.crop(events, full, box=self.crop), depth[y:y + h, x:x + w]

    def _label_time(self, index: int) -> int:
        return self.samples[index][2]
