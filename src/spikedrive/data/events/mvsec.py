"""MVSEC HDF5 files (Zhu et al. 2018): ``<sequence>_data.hdf5`` and ``<sequence>_gt.hdf5``.

The layout mirrors the ROS bags, one group per camera (``davis/left``, ``davis/right``)::

    *_data.hdf5  davis/left/events               [N, 4] float64: x, y, t (s, ROS time), p (-1/+1)
                 davis/left/image_raw            [F, H, W] uint8 (not read here)
    *_gt.hdf5    davis/left/depth_image_raw      [K, H, W] float32 metres, NaN = no depth
                 davis/left/depth_image_raw_ts   [K] float64 seconds
                 davis/left/depth_image_rect(_ts) the rectified variant

DAVIS 346 sensor: 346 x 260. Readers convert times to int64 microseconds (float64 seconds
of ROS time keep better than 0.25 us resolution) and polarity to {0, 1}.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ._hdf5 import dataset, open_hdf5, read_dataset
from ._records import DEFAULT_CHUNK, PathLike
from ._validate import _check_ranges
from ._window import lazy_window_bounds
from .dtype import EVENT_DTYPE, as_events
from .errors import CorruptFileError

__all__ = [
    "MVSEC_SENSOR_SIZE",
    "MVSECRecording",
    "gt_path_for",
    "seconds_to_us",
    "read_mvsec_hdf5",
    "write_mvsec_hdf5",
    "iter_mvsec_events",
    "read_mvsec_events_window",
    "read_mvsec_depth",
    "read_mvsec_depth_times",
    "read_mvsec_depth_frame",
    "read_mvsec_frame_size",
    "mvsec_sensor_size",
]

MVSEC_SENSOR_SIZE = (346, 260)


@dataclass
class MVSECRecording:
    """One MVSEC camera of one sequence.

    Attributes:
        events: ``[N]`` ``EVENT_DTYPE``, t in us.
        depth: ``[K, H, W]`` float32 metres, NaN where the lidar gave no depth.
        depth_t: ``[K]`` int64 us, the time of each depth map.
        width, height: sensor size in pixels.
    """

    events: np.ndarray
    depth: np.ndarray
    depth_t: np.ndarray
    width: int
    height: int


def gt_path_for(data_path: PathLike) -> Path:
    """``outdoor_day1_data.hdf5`` -> ``outdoor_day1_gt.hdf5`` (the MVSEC naming)."""
    p = Path(data_path)
    stem = p.stem[: -len("_data")] if p.stem.endswith("_data") else p.stem
    return p.with_name(f"{stem}_gt{p.suffix}")


_MAX_SECONDS = 9.2e12  # int64 microseconds hold about +-9.22e12 s


def seconds_to_us(t: np.ndarray) -> np.ndarray:
    """Float seconds -> int64 microseconds, rounded to nearest.

    Raises ValueError for non-finite times or times beyond int64 microseconds.
    """
    t = np.asarray(t, dtype=np.float64)
    if t.size and not (np.all(np.isfinite(t)) and np.abs(t).max() < _MAX_SECONDS):
        raise ValueError("times must be finite and within +-9.2e12 s")
    return np.rint(t * 1e6).astype(np.int64)


def _times_us(t: np.ndarray, path: PathLike, what: str) -> np.ndarray:
    try:
        return seconds_to_us(t)
    except ValueError as err:
        raise CorruptFileError(path, None, f"bad {what} ({err})") from None


def _events_from_rows(rows: np.ndarray, path: PathLike, first_row: int) -> np.ndarray:
    if rows.ndim != 2 or rows.shape[1] != 4:
        raise CorruptFileError(path, None, f"events of shape {rows.shape}, expected [N, 4]")
    x, y, t, p = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(rows).all(axis=1) | (x != np.round(x)) | (y != np.round(y)) \
            | (x < 0) | (y < 0) | (x > 32767) | (y > 32767) | ~np.isin(p, (-1.0, 0.0, 1.0)) \
            | (np.abs(t) >= _MAX_SECONDS)
    if np.any(bad):
        i = int(np.argmax(bad))
        raise CorruptFileError(path, None, f"invalid event row {first_row + i}: {rows[i].tolist()}")
    out = np.empty(rows.shape[0], dtype=EVENT_DTYPE)
    out["t"] = seconds_to_us(t)
    out["x"] = x
    out["y"] = y
    out["p"] = p > 0
    return out


def iter_mvsec_events(data_path: PathLike, camera: str = "left",
                      chunk_events: int = DEFAULT_CHUNK) -> Iterator[np.ndarray]:
    """Stream ``davis/<camera>/events`` in ``EVENT_DTYPE`` chunks of ``chunk_events`` rows."""
    return _iter_events(data_path, camera, chunk_events, "iter_mvsec_events")


def _iter_events(data_path: PathLike, camera: str, chunk_events: int,
                 reader: str) -> Iterator[np.ndarray]:
    if chunk_events <= 0:
        raise ValueError(f"chunk_events must be positive, got {chunk_events}")
    with open_hdf5(data_path, reader, "mvsec") as f:
        ds = dataset(f, f"davis/{camera}/events", data_path)
        n = ds.shape[0]
        for lo in range(0, n, chunk_events):
            rows = read_dataset(ds, data_path, slice(lo, min(lo + chunk_events, n)))
            yield _events_from_rows(np.asarray(rows, dtype=np.float64), data_path, lo)


def read_mvsec_events_window(data_path: PathLike, t_start: int, t_end: int,
                             camera: str = "left") -> np.ndarray:
    """Events with ``t_start <= t < t_end`` (us) by binary search on the HDF5 rows.

    Reads about ``2 * log2(N)`` single timestamps plus the window, so a 50 ms slice of a
    100 M-event sequence costs milliseconds, not a full read.
    """
    with open_hdf5(data_path, "read_mvsec_events_window", "mvsec") as f:
        ds = dataset(f, f"davis/{camera}/events", data_path)
        if ds.ndim != 2 or ds.shape[1] != 4:
            raise CorruptFileError(data_path, None, f"events of shape {ds.shape}, expected [N, 4]")

        def time_at(row: int) -> int:
            return int(_times_us(read_dataset(ds, data_path, (row, 2)), data_path, "event time"))

        lo, hi = lazy_window_bounds(time_at, ds.shape[0], int(t_start), int(t_end))
        rows = np.asarray(read_dataset(ds, data_path, slice(lo, hi)), dtype=np.float64)
    return _events_from_rows(rows.reshape(-1, 4), data_path, lo)


def read_mvsec_depth(gt_path: PathLike, camera: str = "left",
                     kind: str = "raw") -> tuple[np.ndarray, np.ndarray]:
    """Depth maps ``[K, H, W]`` float32 (m, NaN = none) and times ``[K]`` int64 us.

    ``kind`` is "raw" (``depth_image_raw``) or "rect" (``depth_image_rect``).
    """
    if kind not in ("raw", "rect"):
        raise ValueError(f"read_mvsec_depth: kind={kind!r}, expected 'raw' or 'rect'")
    key = f"davis/{camera}/depth_image_{kind}"
    with open_hdf5(gt_path, "read_mvsec_depth", "mvsec") as f:
        depth = np.asarray(read_dataset(dataset(f, key, gt_path), gt_path), dtype=np.float32)
        ts = np.asarray(read_dataset(dataset(f, key + "_ts", gt_path), gt_path), dtype=np.float64)
    if depth.ndim != 3 or ts.shape != (depth.shape[0],):
        raise CorruptFileError(gt_path, None, f"depth {depth.shape} and times {ts.shape} do not match")
    return depth, _times_us(ts, gt_path, "depth times")


def read_mvsec_depth_times(gt_path: PathLike, camera: str = "left", kind: str = "raw") -> np.ndarray:
    """Times ``[K]`` int64 us of the depth maps, without reading the maps."""
    key = f"davis/{camera}/depth_image_{kind}_ts"
    with open_hdf5(gt_path, "read_mvsec_depth_times", "mvsec") as f:
        return _times_us(read_dataset(dataset(f, key, gt_path), gt_path), gt_path, "depth times")


def read_mvsec_depth_frame(gt_path: PathLike, index: int, camera: str = "left",
                           kind: str = "raw") -> np.ndarray:
    """Depth map ``index`` as ``[H, W]`` float32 metres (NaN = none), read alone."""
    key = f"davis/{camera}/depth_image_{kind}"
    with open_hdf5(gt_path, "read_mvsec_depth_frame", "mvsec") as f:
        ds = dataset(f, key, gt_path)
        if ds.ndim != 3 or not -ds.shape[0] <= index < ds.shape[0]:
            raise IndexError(f"read_mvsec_depth_frame: index {index} out of range for {ds.shape}")
        return np.asarray(read_dataset(ds, gt_path, index), dtype=np.float32)


def read_mvsec_frame_size(gt_path: PathLike, camera: str = "left", kind: str = "raw") -> tuple[int, int]:
    """``(W, H)`` of the depth maps in ``gt_path`` (read from the dataset's shape, not its data)."""
    key = f"davis/{camera}/depth_image_{kind}"
    with open_hdf5(gt_path, "read_mvsec_frame_size", "mvsec") as f:
        ds = dataset(f, key, gt_path)
        if ds.ndim != 3:
            raise CorruptFileError(gt_path, None, f"depth of shape {ds.shape}, expected [K, H, W]")
        return int(ds.shape[2]), int(ds.shape[1])


def read_mvsec_hdf5(data_path: PathLike, gt_path: PathLike | None = None, camera: str = "left",
                    depth_kind: str = "raw") -> MVSECRecording:
    """Read one camera of an MVSEC sequence: all events plus the depth ground truth.

    Args:
        data_path: ``<sequence>_data.hdf5``.
        gt_path: ``<sequence>_gt.hdf5``; None uses the sibling named like the data file if it
            exists (otherwise the recording has no depth: ``depth`` is ``[0, H, W]``).
        camera: "left" or "right".
        depth_kind: "raw" or "rect".

    Returns:
        :class:`MVSECRecording`. For a whole sequence prefer :func:`read_mvsec_events_window`
        or :func:`iter_mvsec_events`; events take 13 bytes each in memory.

    Raises:
        CorruptFileError (a ValueError): not HDF5, truncated, missing datasets, bad rows.
    """
    chunks = list(_iter_events(data_path, camera, DEFAULT_CHUNK, "read_mvsec_hdf5"))
    events = np.concatenate(chunks or [np.empty(0, EVENT_DTYPE)])
    gt = Path(gt_path) if gt_path is not None else gt_path_for(data_path)
    width, height = MVSEC_SENSOR_SIZE
    if gt_path is not None or gt.is_file():
        depth, depth_t = read_mvsec_depth(gt, camera, depth_kind)
        height, width = depth.shape[1:]
    else:
        depth = np.empty((0, height, width), dtype=np.float32)
        depth_t = np.empty(0, dtype=np.int64)
    return MVSECRecording(events, depth, depth_t, int(width), int(height))


def mvsec_sensor_size(data_path: PathLike) -> tuple[int, int]:
    """``(346, 260)``: every MVSEC sequence is recorded by DAVIS 346 cameras.

    The files store no size, so this checks only that ``data_path`` (a ``*_data.hdf5`` or
    ``*_gt.hdf5``) is an MVSEC file, raising WrongFormatError otherwise.
    """
    with open_hdf5(data_path, "mvsec_sensor_size", "mvsec"):
        pass
    return MVSEC_SENSOR_SIZE


def write_mvsec_hdf5(data_path: PathLike, gt_path: PathLike, events: np.ndarray,
                     depth: np.ndarray, depth_t: np.ndarray, camera: str = "left") -> None:
    """Write events and depth in the MVSEC layout (what a synthetic generator needs).

    Args:
        data_path: ``<sequence>_data.hdf5`` to create (overwritten).
        gt_path: ``<sequence>_gt.hdf5`` to create (overwritten).
        events: ``[N]`` events, t in us (written as float64 seconds), p -> -1/+1.
        depth: ``[K, H, W]`` metres (NaN = no depth), written as ``depth_image_raw`` and
            ``depth_image_rect``.
        depth_t: ``[K]`` us.
        camera: "left" or "right".
    """
    ev = as_events(events, "events")
    depth = np.asarray(depth, dtype=np.float32)
    depth_t = np.asarray(depth_t)
    if depth.ndim != 3:
        raise ValueError(f"write_mvsec_hdf5: depth must be [K, H, W], got shape {depth.shape}")
    if depth_t.shape != (depth.shape[0],):
        raise ValueError(f"write_mvsec_hdf5: depth_t has shape {depth_t.shape}, expected ({depth.shape[0]},)")
    _check_ranges(ev, {"x": (0, 32767), "y": (0, 32767)}, "write_mvsec_hdf5")
    rows = np.empty((ev.shape[0], 4), dtype=np.float64)
    rows[:, 0], rows[:, 1] = ev["x"], ev["y"]
    rows[:, 2] = ev["t"] / 1e6
    rows[:, 3] = np.where(ev["p"] > 0, 1.0, -1.0)
    with h5py.File(data_path, "w") as f:
        f.create_dataset(f"davis/{camera}/events", data=rows, chunks=True if rows.size else None)
    ts = np.asarray(depth_t, dtype=np.float64) / 1e6
    with h5py.File(gt_path, "w") as f:
        for kind in ("raw", "rect"):
            f.create_dataset(f"davis/{camera}/depth_image_{kind}", data=depth)
            f.create_dataset(f"davis/{camera}/depth_image_{kind}_ts", data=ts)
