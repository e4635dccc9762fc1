"""Event transforms: frozen dataclasses over :mod:`spikedrive.data.events.representations`.

Each transform is a callable ``transform(events) -> array`` with its parameters as fields, so it
has a free ``repr``, compares by value and pickles into DataLoader workers (as Tonic's
transforms). Random transforms take an optional ``rng`` at call time
(``np.random.default_rng(seed)``); without one they draw from a fresh, unseeded generator.

Label time: transforms whose window ends at a label (:class:`ToEventHistogram`,
:class:`ToCumulativeFrames`) take ``label_time_us`` at call time. A transform receives it when
its call signature has a parameter of that name (:func:`takes_label_time`); datasets whose
samples have a label time (Gen1's box time, MVSEC's depth time) call
:func:`apply_transform`, which passes it only to such transforms, and :class:`Compose` forwards
it to the members that take it. So ``Gen1(root, transform=ToEventHistogram(...))`` cuts its
window at the label time, not at the last event.

Example::

    to_input = Compose((Denoise(SENSOR, 10_000), ToFrame(SENSOR, n_time_bins=10)))
    x = to_input(events)          # [10, 2, H, W] float32
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import augment as A
from . import representations as R

__all__ = [
    "takes_label_time",
    "apply_transform",
    "Compose",
    "ToFrame",
    "ToEventHistogram",
    "ToVoxelGrid",
    "ToTimeSurface",
    "ToCumulativeFrames",
    "Denoise",
    "CenterCrop",
    "CropBox",
    "Downsample",
    "Flip",
    "RandomFlip",
    "TimeJitter",
    "TimeSlice",
]

SensorSize = tuple[int, ...]


def _tuple(v: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(a) for a in v)


def takes_label_time(transform: Callable[..., Any]) -> bool:
    """True when ``transform`` can be called as ``transform(events, label_time_us=t)``."""
    try:
        params = inspect.signature(transform).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return False
    p = params.get("label_time_us")
    return p is not None and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)


def apply_transform(transform: Callable[..., Any], events: Any, label_time_us: int | None = None) -> Any:
    """``transform(events, label_time_us=t)`` if ``t`` is known and the transform takes it, else
    ``transform(events)``: how datasets with label times call their transform."""
    if label_time_us is not None and takes_label_time(transform):
        return transform(events, label_time_us=label_time_us)
    return transform(events)


def _label_time_or_after_last(events: np.ndarray, label_time_us: int | None) -> int:
    """The label time given, or one µs after the last event (0 for no events)."""
    if label_time_us is not None:
        return label_time_us
    return int(events["t"][-1]) + 1 if len(events) else 0


@dataclass(frozen=True)
class _Sensor:
    """Base: a transform that knows the sensor size; validated (and made a tuple) on creation."""

    sensor_size: SensorSize

    def __post_init__(self) -> None:
        R.sensor_wh(self.sensor_size)
        object.__setattr__(self, "sensor_size", _tuple(self.sensor_size))


@dataclass(frozen=True)
class Compose:
    """Apply ``transforms`` in order (a tuple, so the composition stays hashable and picklable).

    ``label_time_us``, when given, goes to the members that take it (see :func:`apply_transform`).
    """

    transforms: tuple[Callable[..., np.ndarray], ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "transforms", tuple(self.transforms))

    def __call__(self, events: np.ndarray, label_time_us: int | None = None) -> np.ndarray:
        for tf in self.transforms:
            events = apply_transform(tf, events, label_time_us)
        return events


@dataclass(frozen=True)
class ToFrame(_Sensor):
    """Events -> ``[T, 2, H, W]`` counts; see :func:`representations.to_frames`."""

    n_time_bins: int | None = None
    n_event_bins: int | None = None
    event_count: int | None = None
    time_window_us: int | None = None
    overlap: float = 0.0
    include_incomplete: bool = False
    binarize: bool = False

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return R.to_frames(
            events,
            self.sensor_size,
            n_time_bins=self.n_time_bins,
            n_event_bins=self.n_event_bins,
            event_count=self.event_count,
            time_window_us=self.time_window_us,
            overlap=self.overlap,
            include_incomplete=self.include_incomplete,
            binarize=self.binarize,
        )


@dataclass(frozen=True)
class ToEventHistogram(_Sensor):
    """SpikeYOLO's Gen1 input ``[T, 3, H, W]``; see :func:`representations.to_event_histogram`.

    The window ``[label_time_us - window_us, label_time_us)`` ends at ``label_time_us`` given at
    call time (Gen1 passes each sample's box time, see :func:`apply_transform`); called without
    it, one µs after the last event, so the whole tail of the stream is used.
    """

    n_bins: int = 5
    window_us: int = 250_000
    normalize: bool = False

    def __call__(self, events: np.ndarray, label_time_us: int | None = None) -> np.ndarray:
        return R.to_event_histogram(
            events,
            self.sensor_size,
            label_time_us=_label_time_or_after_last(events, label_time_us),
            n_bins=self.n_bins,
            window_us=self.window_us,
            normalize=self.normalize,
        )


@dataclass(frozen=True)
class ToCumulativeFrames(_Sensor):
    """Cumulative stacking ``[T, 2, H, W]``; see :func:`representations.to_cumulative_frames`.

    The window ends at ``label_time_us`` given at call time (MVSEC passes each depth map's time,
    see :func:`apply_transform`); called without it, one µs after the last event.
    """

    n_steps: int = 5
    window_us: int = 50_000
    binarize: bool = False

    def __call__(self, events: np.ndarray, label_time_us: int | None = None) -> np.ndarray:
        return R.to_cumulative_frames(
            events,
            self.sensor_size,
            label_time_us=_label_time_or_after_last(events, label_time_us),
            window_us=self.window_us,
            n_steps=self.n_steps,
            binarize=self.binarize,
        )


@dataclass(frozen=True)
class ToVoxelGrid(_Sensor):
    """Bilinear-in-time voxel grid ``[n_bins, H, W]``; see :func:`representations.to_voxel_grid`."""

    n_bins: int = 5

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return R.to_voxel_grid(events, self.sensor_size, self.n_bins)


@dataclass(frozen=True)
class ToTimeSurface(_Sensor):
    """Time surfaces ``[K, 2, H, W]`` at ``n_samples`` equally spaced times ending at the last
    event, or at explicit ``sample_times_us`` given at call time."""

    tau_us: float = 50_000.0
    n_samples: int = 1

    def __call__(
        self, events: np.ndarray, sample_times_us: Sequence[int] | None = None
    ) -> np.ndarray:
        if sample_times_us is None:
            if len(events) == 0:
                sample_times_us = np.zeros(self.n_samples, np.int64)
            else:
                t0, t1 = int(events["t"][0]), int(events["t"][-1])
                sample_times_us = np.linspace(t1, t0, self.n_samples, endpoint=False)[::-1]
                sample_times_us = np.rint(sample_times_us).astype(np.int64)
        return R.to_time_surface(events, self.sensor_size, sample_times_us, self.tau_us)


@dataclass(frozen=True)
class Denoise(_Sensor):
    """Drop unsupported events; see :func:`augment.denoise` (``neighbours=4`` is Tonic's)."""

    filter_time_us: int = 10_000
    neighbours: int = 8

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return A.denoise(events, self.sensor_size, self.filter_time_us, neighbours=self.neighbours)


@dataclass(frozen=True)
class CenterCrop(_Sensor):
    """Centred crop to ``target_size = (w, h)``; coordinates shift to the crop's origin."""

    target_size: SensorSize

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return A.crop(events, self.sensor_size, target_size=self.target_size)


@dataclass(frozen=True)
class CropBox(_Sensor):
    """Crop to ``box = (x0, y0, w, h)``; coordinates shift to the crop's origin."""

    box: tuple[int, int, int, int]

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return A.crop(events, self.sensor_size, box=self.box)


@dataclass(frozen=True)
class Downsample(_Sensor):
    """Spatial downsampling by an integer ``factor`` or to a ``target_size``."""

    factor: int | None = None
    target_size: SensorSize | None = None

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return A.downsample(events, self.sensor_size, factor=self.factor, target_size=self.target_size)


@dataclass(frozen=True)
class Flip(_Sensor):
    """Deterministic mirror left-right and/or up-down, optionally swapping polarities."""

    lr: bool = False
    ud: bool = False
    flip_polarity: bool = False

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return A.flip(events, self.sensor_size, lr=self.lr, ud=self.ud, flip_polarity=self.flip_polarity)


@dataclass(frozen=True)
class RandomFlip(_Sensor):
    """Mirror left-right with probability ``p_lr`` and up-down with probability ``p_ud``."""

    p_lr: float = 0.5
    p_ud: float = 0.0
    flip_polarity: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("p_lr", "p_ud"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}: expected a probability in [0, 1], got {getattr(self, name)}")

    def __call__(self, events: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        rng = np.random.default_rng() if rng is None else rng
        lr, ud = rng.random(2) < (self.p_lr, self.p_ud)
        return A.flip(
            events, self.sensor_size, lr=bool(lr), ud=bool(ud), flip_polarity=self.flip_polarity
        )


@dataclass(frozen=True)
class TimeJitter:
    """Gaussian timestamp jitter (``std_us`` µs), output kept sorted."""

    std_us: float = 100.0
    clip_negative: bool = True

    def __call__(self, events: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        rng = np.random.default_rng() if rng is None else rng
        return A.time_jitter(events, self.std_us, rng, clip_negative=self.clip_negative)


@dataclass(frozen=True)
class TimeSlice:
    """Events with ``start_us <= t < end_us``."""

    start_us: int = 0
    end_us: int = 2**63 - 1

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return A.time_slice(events, self.start_us, self.end_us)
