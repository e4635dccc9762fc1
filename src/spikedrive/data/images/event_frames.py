"""``(train, val, test)`` event-camera datasets as time-major frames, for the engine's registry.

Each builder reads the real layout under ``root`` with the event dataset classes of
:mod:`spikedrive.data.datasets`, turns every sample's events into ``T`` frames with the event
transforms (:class:`~spikedrive.data.events.ToFrame` and friends) and batches them
``[T, B, ...]``. Classification sets carve ``val`` out of their training split by ``seed``
(stratified); Gen1 has an official ``val``; MVSEC takes the last ``val_fraction`` of its
training sequence (neighbouring depth maps are near copies, so a random draw would leak).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Subset
from torchvision import tv_tensors
from torchvision.ops import box_convert

from ..datasets import CIFAR10DVS, MVSEC, NCARS, NMNIST, SHD, DVSGesture, EventDataset, Gen1
from ..events import Compose, Downsample, ToCumulativeFrames, ToEventHistogram, ToFrame
from ..sequence import TimeMajorDataset
from .coco import detection_collate
from .splits import carve_val, require_root

__all__ = [
    "EVENT_LAYOUTS", "build_nmnist", "build_gesture", "build_cifar10dvs", "build_ncars", "build_shd",
    "build_gen1", "build_mvsec", "ChannelFrames", "Gen1Target", "time_major_detection_collate",
    "time_major_dense_collate", "open_event_split",
]

Root = str | os.PathLike[str] | None
Splits = tuple[Dataset, Dataset, Dataset]

# One line each: what a missing data_root's message shows.
EVENT_LAYOUTS = {
    "nmnist": "{root}/Train/<digit 0-9>/<id>.bin and {root}/Test/<digit 0-9>/<id>.bin (N-MNIST)",
    "gesture": "{root}/user<NN>_<lighting>.aedat with user<NN>_<lighting>_labels.csv, trials_to_train.txt, trials_to_test.txt (DVS128 Gesture, AEDAT 3.1; or under {root}/DvsGesture/)",
    "cifar10dvs": "{root}/<class>/cifar10_<class>_<i>.aedat for the 10 CIFAR-10 classes (CIFAR10-DVS, AEDAT 2.0; i < 100 is the test split)",
    "ncars": "{root}/n-cars_train/{{background,cars}}/*.dat and {root}/n-cars_test/... (N-CARS, Prophesee DAT)",
    "shd": "{root}/shd_train.h5 and {root}/shd_test.h5 (Spiking Heidelberg Digits)",
    "gen1": "{root}/{{train,val,test}}/<name>_td.dat with <name>_bbox.npy (Gen1; or under {root}/detection_dataset_duration_60s_ratio_1.0/)",
    "mvsec": "{root}/<sequence>_data.hdf5 and {root}/<sequence>_gt.hdf5, e.g. outdoor_day1, outdoor_day2 (MVSEC)",
}


def open_event_split(name: str, cls: type[EventDataset], root: Any, **kwargs: Any) -> EventDataset:
    """``cls(root, **kwargs)``, with a missing split or file as a one-line ``ValueError`` naming
    ``EVENT_LAYOUTS[name]``."""
    try:
        return cls(root, **kwargs)
    except FileNotFoundError as err:
        first = str(err).splitlines()[0].split("; expected layout")[0]
        raise ValueError(f"{name}: {first}; expected {EVENT_LAYOUTS[name].format(root=root)}") from err


def _frame_transform(sensor_size: tuple[int, int], T: int, binarize: bool,
                     frame_size: int | Sequence[int] | None) -> tuple[Callable[[np.ndarray], np.ndarray], tuple[int, int]]:
    """Events → ``[T, 2, h, w]`` frames, optionally downsampled to ``frame_size`` (``(w, h)``)."""
    if frame_size is None:
        return ToFrame(sensor_size, n_time_bins=T, binarize=binarize), sensor_size
    size = (int(frame_size), int(frame_size)) if isinstance(frame_size, int) else (int(frame_size[0]), int(frame_size[1]))
    return Compose((Downsample(sensor_size, target_size=size),
                    ToFrame(size, n_time_bins=T, binarize=binarize))), size


def _classification(name: str, cls: type[EventDataset], root: Root, label_pos: int | None,
                    val_fraction: float, seed: int, transform: Callable[[np.ndarray], Any],
                    **kwargs: Any) -> Splits:
    path = require_root(name, root, EVENT_LAYOUTS[name])
    train = open_event_split(name, cls, path, train=True, transform=transform, **kwargs)
    test = open_event_split(name, cls, path, train=False, transform=transform, **kwargs)
    labels = None if label_pos is None else [s[label_pos] for s in train.samples]
    train_idx, val_idx = carve_val(len(train), val_fraction, seed, labels=labels)
    return (TimeMajorDataset(Subset(train, train_idx.tolist())),
            TimeMajorDataset(Subset(train, val_idx.tolist())), TimeMajorDataset(test))


def build_nmnist(root: Root, T: int = 8, binarize: bool = True, frame_size: int | Sequence[int] | None = None,
                 first_saccade_only: bool = False, val_fraction: float = 0.1, seed: int = 0) -> Splits:
    """N-MNIST: items ``(frames [T, 2, 34, 34] float32, digit)``, batches ``[T, B, 2, 34, 34]``.

    ``binarize``: 1 where a pixel saw an event in the bin (spikes), else counts. ``frame_size``
    (``(w, h)`` or one int) downsamples the sensor first. ``val`` is ``val_fraction`` of
    ``Train/``, ``test`` is ``Test/``.
    """
    tf, _ = _frame_transform(NMNIST.sensor_size, T, binarize, frame_size)
    return _classification("nmnist", NMNIST, root, 1, val_fraction, seed, tf, first_saccade_only=first_saccade_only)


def build_gesture(root: Root, T: int = 16, binarize: bool = True, frame_size: int | Sequence[int] | None = None,
                  val_fraction: float = 0.1, seed: int = 0) -> Splits:
    """DVS128 Gesture: ``(frames [T, 2, 128, 128], gesture 0..10)`` (or ``frame_size``), each
    labelled span binned into ``T`` equal time bins. ``test`` is the trials_to_test users."""
    tf, _ = _frame_transform(DVSGesture.sensor_size, T, binarize, frame_size)
    return _classification("gesture", DVSGesture, root, 3, val_fraction, seed, tf)


def build_cifar10dvs(root: Root, T: int = 10, binarize: bool = False, frame_size: int | Sequence[int] | None = None,
                     val_fraction: float = 0.1, seed: int = 0) -> Splits:
    """CIFAR10-DVS: ``(frames [T, 2, 128, 128] counts, class 0..9)`` (or ``frame_size``).
    ``test`` is files ``i < 100`` of each class (the common 9:1 split), ``val`` comes from the rest."""
    tf, _ = _frame_transform(CIFAR10DVS.sensor_size, T, binarize, frame_size)
    return _classification("cifar10dvs", CIFAR10DVS, root, 1, val_fraction, seed, tf)


def build_ncars(root: Root, T: int = 5, binarize: bool = False, frame_size: int | Sequence[int] | None = None,
                val_fraction: float = 0.1, seed: int = 0) -> Splits:
    """N-CARS: ``(frames [T, 2, 100, 120], 0 background / 1 car)``; ``frame_size=(w, h)``
    rescales each axis on its own (e.g. 48 for the square inputs of the small CNNs)."""
    tf, _ = _frame_transform(NCARS.sensor_size, T, binarize, frame_size)
    return _classification("ncars", NCARS, root, 1, val_fraction, seed, tf)


@dataclass(frozen=True)
class ChannelFrames:
    """Events of a 1-row sensor (SHD's 700 cochlea channels) → ``[T, channels]`` spike counts
    (or 0/1 with ``binarize``) in ``T`` equal time bins; polarities are summed."""

    channels: int
    T: int
    binarize: bool = False

    def __call__(self, events: np.ndarray) -> np.ndarray:
        frames = ToFrame((self.channels, 1), n_time_bins=self.T)(events)  # [T, 2, 1, C]
        counts = frames.sum(axis=(1, 2))
        return (counts > 0).astype(np.float32) if self.binarize else counts.astype(np.float32)


def build_shd(root: Root, T: int = 100, binarize: bool = False, val_fraction: float = 0.1,
              seed: int = 0) -> Splits:
    """Spiking Heidelberg Digits: ``(counts [T, 700] float32, class 0..19)``, batches
    ``[T, B, 700]``. ``val`` is ``val_fraction`` of ``shd_train.h5`` (not stratified: labels
    live in the file), ``test`` is ``shd_test.h5``."""
    return _classification("shd", SHD, root, None, val_fraction, seed, ChannelFrames(SHD.sensor_size[0], T, binarize))


@dataclass(frozen=True)
class Gen1Target:
    """Gen1 boxes (``BOX_DTYPE``: ``[x, y, w, h]`` pixels, ``class_id``) → the detection target
    ``{"boxes": BoundingBoxes [N, 4] XYXY pixels, "labels": [N] int64}`` on a ``(W, H)`` sensor.
    Boxes are kept as recorded (partly outside the sensor included)."""

    sensor_size: tuple[int, int]

    def __call__(self, boxes: np.ndarray) -> dict[str, Any]:
        xywh = torch.from_numpy(np.stack([boxes[k].astype(np.float32) for k in ("x", "y", "w", "h")], axis=-1).reshape(-1, 4))
        width, height = self.sensor_size
        return {
            "boxes": tv_tensors.BoundingBoxes(box_convert(xywh, "xywh", "xyxy"), format="XYXY", canvas_size=(height, width)),
            "labels": torch.from_numpy(boxes["class_id"].astype(np.int64)),
        }


def time_major_detection_collate(samples: Sequence[tuple[Any, dict[str, Any]]]) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """``(frames [T, ...], target dict)`` samples → ``(frames [T, B, ...] float32, [target, ...])``:
    :func:`~spikedrive.data.images.coco.detection_collate` with ``time_major=True``."""
    return detection_collate(samples, time_major=True)


def time_major_dense_collate(samples: Sequence[tuple[Any, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(frames [T, ...], map [H, W])`` samples → ``(frames [T, B, ...], maps [B, H, W])`` float32."""
    frames = torch.stack([torch.as_tensor(np.asarray(f)) for f, _ in samples], dim=1).float()
    return frames, torch.stack([torch.as_tensor(np.asarray(m)) for _, m in samples]).float()


class _DetectionFrames(TimeMajorDataset):
    collate_fn = staticmethod(time_major_detection_collate)


class _DenseFrames(TimeMajorDataset):
    collate_fn = staticmethod(time_major_dense_collate)


def build_gen1(root: Root, T: int = 5, window_us: int = 50_000, normalize: bool = True) -> Splits:
    """Gen1 detection: ``(histogram [T, 3, 240, 304], target)`` per box time (SpikeYOLO's
    input: :class:`~spikedrive.data.events.ToEventHistogram` over the ``window_us`` before the
    label, in ``T`` bins, ``/255`` with ``normalize``), target as :class:`Gen1Target`.
    The official ``train``/``val``/``test`` folders are the three splits."""
    path = require_root("gen1", root, EVENT_LAYOUTS["gen1"])
    tf = ToEventHistogram(Gen1.sensor_size, n_bins=T, window_us=window_us, normalize=normalize)
    target = Gen1Target(Gen1.sensor_size)
    return tuple(  # type: ignore[return-value]
        _DetectionFrames(open_event_split("gen1", Gen1, path, split=s, window_us=window_us, transform=tf,
                                          target_transform=target))
        for s in ("train", "val", "test"))


def build_mvsec(root: Root, T: int = 5, window_us: int = 50_000, binarize: bool = False,
                train_sequences: Sequence[str] = ("outdoor_day2",), test_sequences: Sequence[str] = ("outdoor_day1",),
                val_fraction: float = 0.1, camera: str = "left", depth_kind: str = "raw",
                crop: tuple[int, int, int, int] | None = None) -> Splits:
    """MVSEC depth: ``(cumulative frames [T, 2, H, W], depth [H, W] metres, NaN = none)`` per
    depth map (:class:`~spikedrive.data.events.ToCumulativeFrames` over ``window_us``); ``H, W``
    are the recording's (260, 346 for the DAVIS346) or those of ``crop = (x, y, w, h)`` pixels.
    ``val`` is the last ``val_fraction`` of the training sequences' depth maps (a contiguous
    block); ``test`` is ``test_sequences`` (outdoor_day1, as in the spiking depth papers)."""
    path = require_root("mvsec", root, EVENT_LAYOUTS["mvsec"])
    common = dict(window_us=window_us, camera=camera, depth_kind=depth_kind, crop=crop)
    train = open_event_split("mvsec", MVSEC, path, sequences=tuple(train_sequences), **common)
    tf = ToCumulativeFrames(train.sensor_size, n_steps=T, window_us=window_us, binarize=binarize)
    train.transform = tf
    test = open_event_split("mvsec", MVSEC, path, sequences=tuple(test_sequences), transform=tf, **common)
    train_idx, val_idx = carve_val(len(train), val_fraction, 0, contiguous=True)
    return (_DenseFrames(Subset(train, train_idx.tolist())), _DenseFrames(Subset(train, val_idx.tolist())),
            _DenseFrames(test))
