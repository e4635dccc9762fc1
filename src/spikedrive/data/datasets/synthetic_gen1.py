"""Synthetic Gen1: cars and pedestrians crossing a textured scene, in Gen1's files and layout.

Gen1 (Prophesee's ATIS automotive detection dataset) is a folder per split holding pairs::

    root/<split>/<name>_td.dat     events, Prophesee DAT (Event2D), 304x240
    root/<split>/<name>_bbox.npy   boxes: t, x, y, w, h, class_id, confidence, track_id

with classes 0 = car and 1 = pedestrian and boxes listed at label times. Here each recording is
a static camera over a textured background; cars (wide textured rectangles, fast) and
pedestrians (tall textured ellipses, slower) move horizontally at constant speeds, entering and
leaving the view, nearer objects (lower in the image) occluding farther ones. Only moving edges
and texture make events, so the last time bins of a label window show where each object is: a
detector can learn to box them (``object_scale`` shrinks the objects with a smaller sensor). Events come from
the DVS simulator; boxes are the objects' exact extents at each label time, clipped to the
sensor, kept when at least ``min_visible`` of the box is on the sensor, with one track id per
object.

The CPU demonstration (``configs/spikeyolo/gen1_small.yaml``, ``benchmarks/spikeyolo_gen1.py``)
uses a 64x64 sensor, cars at half size (``object_scale=0.5``) and pedestrians at full size
(``pedestrian_scale=1.0``, so their boxes hold stride-8 anchor centres), with labels every 250 ms
from 250 ms on, so each label has its whole histogram window of events.

Default size: 2 train, 1 val, 1 test recordings of 1 s at 200 frames/s with labels every 100 ms
(30-50 boxes and 30k-120k events per recording, 2 MB in all); about 2.5 s to generate.
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np

from ..events.gen1 import BOX_DTYPE, write_gen1_boxes
from ..events.prophesee import GEN1_SENSOR_SIZE, write_prophesee_dat
from ..events.simulator import simulate_dvs
from .synthetic_common import child_rng, frame_times, paint_textured_rect, value_noise

__all__ = ["make_gen1"]

_DATE = "2020-01-01 00:00:00"  # fixed header date: same seed, byte-identical files
_SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class _Object:
    class_id: int
    track_id: int
    x0: float  # left edge at t = 0, px
    y0: float  # top edge, px
    w: float
    h: float
    vx: float  # px / s
    texture: np.ndarray
    brightness: float

    def left(self, t_us: float) -> float:
        return self.x0 + self.vx * t_us * 1e-6


def _make_objects(rng: np.random.Generator, n_cars: int, n_peds: int, duration_s: float,
                  width: int, height: int, scale: float = 1.0, ped_scale: float | None = None) -> list[_Object]:
    objs = []
    for k in range(n_cars + n_peds):
        car = k < n_cars
        scale_k = scale if car or ped_scale is None else ped_scale
        w = scale_k * (rng.uniform(40, 80) if car else rng.uniform(10, 16))
        h = scale_k * (rng.uniform(18, 32) if car else rng.uniform(26, 44))
        speed = scale_k * (rng.uniform(60, 140) if car else rng.uniform(25, 50))
        vx = speed if rng.random() < 0.5 else -speed
        # start so that the object is in view for most of the recording
        x_mid = rng.uniform(0.2, 0.8) * width
        x0 = x_mid - vx * duration_s / 2 - w / 2
        bottom = rng.uniform(0.5, 0.95) * height
        tex = value_noise((int(np.ceil(h)) + 2, int(np.ceil(w)) + 2), 6.0, rng)
        objs.append(_Object(0 if car else 1, k + 1, x0, bottom - h, w, h, vx, tex,
                            rng.uniform(0.15, 0.9)))
    # painter's order: farther (higher in the image) first, so nearer objects occlude them
    return sorted(objs, key=lambda o: o.y0 + o.h)


def _render(background: np.ndarray, objs: list[_Object], t_us: float) -> np.ndarray:
    img = background.copy()
    for o in objs:
        left = o.left(t_us)
        paint_textured_rect(img, o.texture, o.brightness, left, o.y0, left + o.w, o.y0 + o.h, ellipse=o.class_id != 0)
    return img


def _boxes(objs: list[_Object], label_times: np.ndarray, width: int, height: int,
           min_visible: float) -> np.ndarray:
    rows = []
    for t in label_times:
        for o in sorted(objs, key=lambda o: o.track_id):
            left = o.left(float(t))
            x1, y1 = max(left, 0.0), max(o.y0, 0.0)
            x2, y2 = min(left + o.w, float(width)), min(o.y0 + o.h, float(height))
            if x2 <= x1 or y2 <= y1 or (x2 - x1) * (y2 - y1) < min_visible * o.w * o.h:
                continue
            rows.append((int(t), x1, y1, x2 - x1, y2 - y1, o.class_id, 1.0, o.track_id))
    return np.array(rows, dtype=BOX_DTYPE)


def make_gen1(
    root: str | PathLike[str],
    n_train: int = 2,
    n_val: int = 1,
    n_test: int = 1,
    *,
    seed: int = 0,
    duration_us: int = 1_000_000,
    fps: int = 200,
    label_period_us: int = 100_000,
    n_cars: tuple[int, int] = (1, 3),
    n_pedestrians: tuple[int, int] = (1, 2),
    min_visible: float = 0.3,
    noise_rate_hz: float = 0.2,
    sensor_size: tuple[int, int] = GEN1_SENSOR_SIZE,
    object_scale: float = 1.0,
    pedestrian_scale: float | None = None,
) -> Path:
    """Write a Gen1-format detection set under ``root`` (``train/``, ``val/``, ``test/``).

    Args:
        root: output folder.
        n_train, n_val, n_test: recordings per split.
        seed: seeds every scene and recording (same seed, byte-identical files).
        duration_us: length of each recording.
        fps: rendered frames per second (the simulator interpolates between frames).
        label_period_us: boxes are listed at ``k * label_period_us``, ``k >= 1``.
        n_cars, n_pedestrians: inclusive ``(min, max)`` objects per recording.
        min_visible: keep a box when at least this fraction of it is on the sensor.
        noise_rate_hz: background activity per pixel.
        sensor_size: ``(W, H)``; Gen1's 304x240 by default (smaller sizes make tiny tests).
        object_scale: multiplies object sizes and speeds (e.g. ``W / 304`` on a smaller sensor).
        pedestrian_scale: the same for pedestrians alone (None: ``object_scale``). Shrinking
            Gen1's 10-16 px wide pedestrians with the cars leaves boxes narrower than the stride-8
            anchor grid, some with no anchor centre inside, which an anchor-free detector's
            assigner can never match.

    Returns:
        ``Path(root)``.
    """
    width, height = (int(v) for v in sensor_size)
    if duration_us <= 0 or fps <= 0 or label_period_us <= 0:
        raise ValueError(
            f"duration_us, fps, label_period_us: expected positive values, got "
            f"{duration_us}, {fps}, {label_period_us}"
        )
    if not object_scale > 0:
        raise ValueError(f"object_scale: expected > 0, got {object_scale}")
    if pedestrian_scale is not None and not pedestrian_scale > 0:
        raise ValueError(f"pedestrian_scale: expected > 0 or None, got {pedestrian_scale}")
    for name, (lo, hi) in (("n_cars", n_cars), ("n_pedestrians", n_pedestrians)):
        if not 0 <= lo <= hi:
            raise ValueError(f"{name}: expected (min, max) with 0 <= min <= max, got {(lo, hi)}")
    root = Path(root)
    ts = frame_times(duration_us, fps)
    label_times = np.arange(label_period_us, duration_us + 1, label_period_us, dtype=np.int64)
    for split_id, (split, count) in enumerate(zip(_SPLITS, (n_train, n_val, n_test))):
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            rng = child_rng(seed, split_id, i)
            background = 0.25 + 0.4 * value_noise((height, width), 24.0, rng, octaves=3)
            objs = _make_objects(rng, int(rng.integers(n_cars[0], n_cars[1] + 1)),
                                 int(rng.integers(n_pedestrians[0], n_pedestrians[1] + 1)),
                                 duration_us * 1e-6, width, height, float(object_scale),
                                 None if pedestrian_scale is None else float(pedestrian_scale))
            frames = np.stack([_render(background, objs, float(t)) for t in ts])
            events = simulate_dvs(frames, ts, noise_rate_hz=noise_rate_hz,
                                  refractory_us=100, seed=int(rng.integers(2**31)))
            name = f"synthetic_{split}_{i:03d}"
            write_prophesee_dat(folder / f"{name}_td.dat", events, width, height, date=_DATE)
            write_gen1_boxes(folder / f"{name}_bbox.npy",
                             _boxes(objs, label_times, width, height, min_visible))
    return root
