"""Spiking Heidelberg Digits HDF5 files (Cramer et al. 2020), ``shd_train.h5`` / ``shd_test.h5``.

Layout::

    spikes/times   [S] variable-length float arrays, spike times in seconds
    spikes/units   [S] variable-length integer arrays, input channel 0..699 of each spike
    labels         [S] integer class 0..19 (digits 0-9 in English and German)
    extra/speaker  [S] speaker id (optional here), and other metadata we do not read

The Spiking Speech Commands files (``ssc_*.h5``) share the layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import h5py
import numpy as np

from ._hdf5 import check_vlen_dataset, dataset, open_hdf5, read_dataset
from ._records import PathLike
from .errors import CorruptFileError

__all__ = [
    "SHD_CHANNELS",
    "SHD_CLASSES",
    "SHDData",
    "read_shd",
    "read_shd_sample",
    "shd_length",
    "write_shd",
    "shd_sensor_size",
]

SHD_CHANNELS = 700
SHD_CLASSES = 20


@dataclass
class SHDData:
    """The samples of one SHD file.

    Attributes:
        times: per sample, spike times ``[n_i]`` float64 seconds.
        units: per sample, channel of each spike ``[n_i]`` int64.
        labels: ``[S]`` int64 class.
        speakers: ``[S]`` int64 speaker id, or None if the file has none.
    """

    times: list[np.ndarray]
    units: list[np.ndarray]
    labels: np.ndarray
    speakers: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)


def _check_sample(path: PathLike, i: int, t: np.ndarray, u: np.ndarray) -> None:
    if t.ndim != 1 or t.shape != u.shape:
        raise CorruptFileError(path, None, f"sample {i}: times {t.shape} but units {u.shape}")
    if t.size and (not np.all(np.isfinite(t)) or t.min() < 0 or u.min() < 0):
        raise CorruptFileError(path, None, f"sample {i}: negative or non-finite times/units")
    if u.size and u.max() >= SHD_CHANNELS:
        raise CorruptFileError(
            path, None, f"sample {i}: unit {u.max()} is not a channel (expected 0..{SHD_CHANNELS - 1})"
        )


def shd_length(path: PathLike) -> int:
    """Number of samples in an SHD file (reads only the labels' shape)."""
    with open_hdf5(path, "shd_length", "shd") as f:
        return int(dataset(f, "labels", path).shape[0])


def read_shd_sample(path: PathLike, index: int) -> tuple[np.ndarray, np.ndarray, int]:
    """One sample: times ``[n]`` float64 s, units ``[n]`` int64, label. Random access."""
    with open_hdf5(path, "read_shd_sample", "shd") as f:
        times = dataset(f, "spikes/times", path)
        n = times.shape[0]
        if not -n <= index < n:
            raise IndexError(f"read_shd_sample: index {index} out of range for {n} samples")
        units = dataset(f, "spikes/units", path)
        if units.shape != times.shape:
            raise CorruptFileError(path, None, f"{times.shape} time arrays but {units.shape} unit arrays")
        check_vlen_dataset(times, path, index)
        check_vlen_dataset(units, path, index)
        t = np.asarray(read_dataset(times, path, index), dtype=np.float64)
        u = np.asarray(read_dataset(units, path, index), dtype=np.int64)
        label = int(read_dataset(dataset(f, "labels", path), path, index))
    _check_sample(path, index, t, u)
    return t, u, label


def read_shd(path: PathLike) -> SHDData:
    """Read every sample of an SHD/SSC file.

    Returns:
        :class:`SHDData` (times in seconds, units, labels, optional speakers).

    Raises:
        CorruptFileError (a ValueError): not HDF5, truncated, missing datasets, or mismatched
            lengths.
    """
    with open_hdf5(path, "read_shd", "shd") as f:
        times_ds = dataset(f, "spikes/times", path)
        units_ds = dataset(f, "spikes/units", path)
        labels = np.asarray(read_dataset(dataset(f, "labels", path), path), dtype=np.int64)
        speakers = None
        if isinstance(f.get("extra/speaker"), h5py.Dataset):
            speakers = np.asarray(read_dataset(f["extra/speaker"], path), dtype=np.int64)
        check_vlen_dataset(times_ds, path)
        check_vlen_dataset(units_ds, path)
        raw_t = read_dataset(times_ds, path)
        raw_u = read_dataset(units_ds, path)
    if not len(raw_t) == len(raw_u) == labels.shape[0]:
        raise CorruptFileError(
            path, None, f"{len(raw_t)} time arrays, {len(raw_u)} unit arrays, {labels.shape[0]} labels"
        )
    times = [np.asarray(t, dtype=np.float64) for t in raw_t]
    units = [np.asarray(u, dtype=np.int64) for u in raw_u]
    for i, (t, u) in enumerate(zip(times, units)):
        _check_sample(path, i, t, u)
    return SHDData(times, units, labels, speakers)


def shd_sensor_size(path: PathLike) -> tuple[int, int]:
    """``(700, 1)``: the 700 cochlea channels as the width of a one-row sensor.

    The channel count is fixed by the dataset (:data:`SHD_CHANNELS`); this checks only that
    ``path`` is an SHD/SSC file, raising WrongFormatError otherwise. Channels map to ``x`` and
    ``y = 0`` when spikes are turned into events.
    """
    with open_hdf5(path, "shd_sensor_size", "shd"):
        pass
    return SHD_CHANNELS, 1


def write_shd(path: PathLike, times: Sequence[np.ndarray], units: Sequence[np.ndarray],
              labels: Sequence[int] | np.ndarray, speakers: Sequence[int] | None = None) -> None:
    """Write samples in the SHD layout.

    Args:
        path: destination ``.h5`` (overwritten).
        times: per sample, spike times ``[n_i]`` in seconds (>= 0), stored as float32 like the
            release (about 0.1 us resolution over a 1 s sample).
        units: per sample, channels ``[n_i]`` in ``0..SHD_CHANNELS - 1`` (0..699), stored as
            uint16.
        labels: ``[S]`` classes, stored as uint16.
        speakers: optional ``[S]`` speaker ids for ``extra/speaker``.
    """
    labels = np.asarray(labels)
    if not len(times) == len(units) == labels.shape[0]:
        raise ValueError(
            f"write_shd: {len(times)} time arrays, {len(units)} unit arrays, {labels.shape[0]} labels"
        )
    t32 = [np.asarray(t, dtype=np.float32) for t in times]
    u16 = []
    for i, (t, u) in enumerate(zip(t32, units)):
        u = np.asarray(u)
        if t.shape != u.shape or t.ndim != 1:
            raise ValueError(f"write_shd: sample {i} has times {t.shape} and units {u.shape}")
        if u.size and (u.min() < 0 or u.max() >= SHD_CHANNELS):
            raise ValueError(
                f"write_shd: sample {i} units span [{u.min()}, {u.max()}], expected 0..{SHD_CHANNELS - 1}"
            )
        if t.size and (t.min() < 0 or not np.all(np.isfinite(t))):
            raise ValueError(f"write_shd: sample {i} has negative or non-finite times")
        u16.append(u.astype(np.uint16))
    if labels.size and (labels.min() < 0 or labels.max() > 65535):
        raise ValueError("write_shd: labels must be in 0..65535")
    with h5py.File(path, "w") as f:
        tds = f.create_dataset("spikes/times", (len(t32),), dtype=h5py.vlen_dtype(np.float32))
        uds = f.create_dataset("spikes/units", (len(u16),), dtype=h5py.vlen_dtype(np.uint16))
        for i, (t, u) in enumerate(zip(t32, u16)):
            tds[i] = t
            uds[i] = u
        f.create_dataset("labels", data=labels.astype(np.uint16))
        if speakers is not None:
            f.create_dataset("extra/speaker", data=np.asarray(speakers, dtype=np.uint16))
