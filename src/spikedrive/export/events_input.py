"""Recorded event files read window by window into the binary frames a spiking model takes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from ..data.events import (
    downsample, read_aedat, read_nmnist, read_prophesee_dat, read_prophesee_npy, sensor_size_of, sniff_format,
    to_frames,
)
from ..data.events.signature import looks_like_nmnist

__all__ = ["read_recording", "event_windows"]


def read_recording(path: str | os.PathLike) -> tuple[np.ndarray, tuple[int, int]]:
    """``(events, (W, H))`` of a recorded file: AEDAT 2/3/4, Prophesee DAT / NPY or N-MNIST
    binary, recognised from its first bytes. A file that states no sensor size gets the
    smallest one holding its events.

    Raises ``FileNotFoundError`` if absent and the readers' ``ValueError`` for damaged files or
    ``ValueError`` for a format none of them reads."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"stream: no event file at {str(path)!r}")
    kind = sniff_format(path)
    if kind is not None and kind.startswith("aedat"):
        events = read_aedat(path)
    elif kind == "prophesee_dat":
        events = read_prophesee_dat(path)
    elif kind == "npy":
        events = read_prophesee_npy(path)
    elif kind is None and looks_like_nmnist(path):
        events = read_nmnist(path)
    else:
        raise ValueError(f"stream: {str(path)!r} is {kind or 'of no known format'}; expected an AEDAT, Prophesee "
                         "DAT / NPY or N-MNIST binary recording")
    size = sensor_size_of(path)
    if size is None:
        size = (int(events["x"].max()) + 1, int(events["y"].max()) + 1) if len(events) else (1, 1)
    return events, (int(size[0]), int(size[1]))


def event_windows(events: np.ndarray, sensor_size: tuple[int, int], image_size: int, window_us: int,
                  steps_per_window: int = 1) -> Iterator[tuple[int, int, int, torch.Tensor]]:
    """Consecutive windows of ``window_us`` µs: ``(t_start, t_end, n_events, frames [S, 1, 2, s, s])``.

    Each window's events are binned into ``steps_per_window`` equal time bins of binary frames
    (1 where a pixel had an event of that polarity); a sensor larger than ``image_size`` is
    scaled down to it (``x * s // W``). Only the window's own events are touched, as a live
    camera would deliver them."""
    if window_us < 1 or steps_per_window < 1:
        raise ValueError(f"event_windows: window_us and steps_per_window must be >= 1, got {window_us}, "
                         f"{steps_per_window}")
    if tuple(sensor_size) != (image_size, image_size):
        events = downsample(events, sensor_size, target_size=(image_size, image_size))
    if len(events) == 0:
        return
    t = events["t"]
    start = int(t[0])
    while start <= int(t[-1]):
        end = start + window_us
        lo, hi = np.searchsorted(t, [start, end])
        chunk = events[lo:hi]
        frames = to_frames(chunk, (image_size, image_size), n_time_bins=steps_per_window, start_time_us=start,
                           end_time_us=end, binarize=True)
        yield start, end, int(hi - lo), torch.from_numpy(frames).unsqueeze(1)
        start = end
