"""Synthetic MVSEC: a camera sliding past objects at known depths, in MVSEC's HDF5 files.

MVSEC keeps one pair of files per sequence::

    root/outdoor_day1_data.hdf5   davis/left/events [N, 4] (x, y, t s, p -1/+1)
    root/outdoor_day1_gt.hdf5     davis/left/depth_image_raw [K, H, W] metres, NaN = no depth
                                  davis/left/depth_image_raw_ts [K] seconds (and the rect pair)

The scene is a pinhole view (focal ``focal_px``, horizon at mid-height, camera ``camera_height_m``
above a flat textured ground) from a camera translating sideways at ``camera_speed_mps``:
sky (uniform, no depth: NaN, as the lidar gets no return), a far textured skyline at
``far_depth_m``, the ground whose depth grows towards the horizon (NaN beyond ``max_depth_m``),
and fronto-parallel textured boxes standing on the ground at depths in ``object_depth_m``, each
also moving a little on its own. Image motion is ``focal * (v_object - v_camera) / Z``, so near
things move fast and far things slowly: the depth cue an event camera sees. Sequences named
``*night*`` are rendered at a quarter of the brightness. Depth maps come at ``depth_rate_hz``
(20 Hz in MVSEC), from the first one at ``1 / depth_rate_hz``.

Default size: ``outdoor_day1`` and ``outdoor_day2``, 1 s each at 346x260 and 200 frames/s,
20 depth maps per sequence (47 MB in all, mostly float64 event rows and two copies of the
depth maps, as MVSEC stores them); about 5 s to generate.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np

from ..events.mvsec import MVSEC_SENSOR_SIZE, write_mvsec_hdf5
from ..events.simulator import simulate_dvs
from .synthetic_common import (
    child_rng,
    frame_times,
    paint_textured_rect,
    sample_wrapped,
    value_noise,
)

__all__ = ["make_mvsec", "MVSEC_SEQUENCE_NAMES"]

MVSEC_SEQUENCE_NAMES = (
    "indoor_flying1", "indoor_flying2", "indoor_flying3", "indoor_flying4",
    "outdoor_day1", "outdoor_day2", "outdoor_night1", "outdoor_night2", "outdoor_night3",
)


@dataclass(frozen=True)
class _Box:
    x_world: float  # left edge at t = 0, metres (camera starts at x = 0)
    depth: float  # Z, metres
    width: float
    height: float
    speed: float  # own lateral speed, m/s
    texture: np.ndarray
    brightness: float


@dataclass(frozen=True)
class _Scene:
    width: int
    height: int
    focal: float
    cam_h: float
    cam_v: float
    far_z: float
    max_z: float
    sky: float
    far_tex: np.ndarray
    skyline: np.ndarray  # building height (px above the horizon) per far-texture column
    ground_tex: np.ndarray
    boxes: tuple[_Box, ...]  # far to near

    @property
    def horizon(self) -> float:
        return self.height / 2.0

    def ground_depth(self) -> np.ndarray:
        """Depth ``[H]`` of the ground in each row (inf above the horizon)."""
        below = np.arange(self.height) + 0.5 - self.horizon
        with np.errstate(divide="ignore"):
            return np.where(below > 0, self.focal * self.cam_h / np.maximum(below, 1e-9), np.inf)

    def box_rect(self, b: _Box, t_s: float) -> tuple[float, float, float, float]:
        """``(x0, y0, x1, y1)`` in pixels at time ``t_s``."""
        rel = b.x_world + b.speed * t_s - self.cam_v * t_s
        x0 = self.width / 2 + self.focal * rel / b.depth
        bottom = self.horizon + self.focal * self.cam_h / b.depth
        return x0, bottom - self.focal * b.height / b.depth, x0 + self.focal * b.width / b.depth, bottom


def _make_scene(rng: np.random.Generator, width: int, height: int, n_objects: int,
                object_depth_m: tuple[float, float], duration_s: float, focal: float,
                cam_h: float, cam_v: float, far_z: float, max_z: float) -> _Scene:
    tex_w = 2 * width
    far_tex = 0.25 + 0.35 * value_noise((height, tex_w), 12.0, rng, octaves=3)
    skyline = 20 + 50 * value_noise((1, tex_w), 40.0, rng, octaves=1)[0]
    ground_tex = 0.2 + 0.3 * value_noise((height, tex_w), 8.0, rng, octaves=3)
    boxes = []
    for _ in range(n_objects):
        z = rng.uniform(*object_depth_m)
        w_m, h_m, v = rng.uniform(0.6, 2.5), rng.uniform(0.8, 2.2), rng.uniform(-1.0, 1.0)
        # centre the box in view half-way through the sequence
        x_mid = rng.uniform(-0.35, 0.35) * width * z / focal
        x0 = x_mid - (v - cam_v) * duration_s / 2 - w_m / 2
        px = (int(focal * w_m / z) + 4, int(focal * h_m / z) + 4)
        boxes.append(_Box(x0, z, w_m, h_m, v, value_noise((px[1], px[0]), 5.0, rng),
                          rng.uniform(0.3, 0.9)))
    boxes.sort(key=lambda b: -b.depth)
    return _Scene(width, height, focal, cam_h, cam_v, far_z, max_z, 0.85, far_tex, skyline,
                  ground_tex, tuple(boxes))


def _render(scene: _Scene, t_s: float) -> tuple[np.ndarray, np.ndarray]:
    """``(intensity [H, W], depth [H, W] metres, NaN = none)`` at time ``t_s``."""
    h, w, f = scene.height, scene.width, scene.focal
    tex_h, tex_w = scene.far_tex.shape
    cols = np.arange(w) + 0.5
    rows = np.arange(h) + 0.5
    # far layer: skyline and texture shift together by the far parallax
    far_shift = -f * scene.cam_v * t_s / scene.far_z
    far_cols = np.floor(cols - far_shift).astype(np.int64) % tex_w
    building = rows[:, None] > scene.horizon - scene.skyline[far_cols][None, :]
    img = np.where(building, sample_wrapped(scene.far_tex, cols - far_shift, rows), scene.sky)
    depth = np.where(building, scene.far_z, np.nan)
    # ground: each row at its own depth, hence its own parallax shift
    zg = scene.ground_depth()
    gr = np.flatnonzero(np.isfinite(zg))
    x = cols[None, :] + f * scene.cam_v * t_s / zg[gr, None] - 0.5
    x0 = np.floor(x).astype(np.int64)
    fx = x - x0
    tex_rows = scene.ground_tex[gr % tex_h]
    ground = (np.take_along_axis(tex_rows, x0 % tex_w, 1) * (1 - fx)
              + np.take_along_axis(tex_rows, (x0 + 1) % tex_w, 1) * fx)
    img[gr] = ground
    depth[gr] = np.where(zg[gr, None] <= scene.max_z, zg[gr, None], np.nan)
    for b in scene.boxes:  # far to near: nearer boxes paint over farther ones
        painted = paint_textured_rect(img, b.texture, b.brightness, *scene.box_rect(b, t_s))
        if painted is not None:
            rr, cc, alpha = painted
            d = depth[rr, cc]
            d[alpha >= 0.5] = b.depth  # the lidar sees the box where it covers most of a pixel
    return img, depth


def make_mvsec(
    root: str | PathLike[str],
    sequences: tuple[str, ...] = ("outdoor_day1", "outdoor_day2"),
    *,
    seed: int = 0,
    duration_us: int = 1_000_000,
    fps: int = 200,
    depth_rate_hz: float = 20.0,
    sensor_size: tuple[int, int] = MVSEC_SENSOR_SIZE,
    n_objects: int = 4,
    object_depth_m: tuple[float, float] = (3.0, 15.0),
    far_depth_m: float = 60.0,
    max_depth_m: float = 80.0,
    focal_px: float = 226.0,
    camera_height_m: float = 1.5,
    camera_speed_mps: float = 2.5,
    noise_rate_hz: float = 0.2,
) -> Path:
    """Write MVSEC-layout sequences (``<name>_data.hdf5`` + ``<name>_gt.hdf5``) under ``root``.

    Args:
        root: output folder.
        sequences: MVSEC names (any of :data:`MVSEC_SEQUENCE_NAMES`); each is seeded by its name,
            so a sequence's files do not depend on which others are generated.
        seed: base seed (same seed, same files).
        duration_us: length of each sequence.
        fps: rendered frames per second.
        depth_rate_hz: depth maps per second.
        sensor_size: ``(W, H)``, the DAVIS 346's 346x260 by default.
        n_objects: boxes per sequence; ``object_depth_m``: their depth range.
        far_depth_m: depth of the skyline; ``max_depth_m``: lidar range (farther ground is NaN).
        focal_px, camera_height_m, camera_speed_mps: the camera.
        noise_rate_hz: background activity per pixel.

    Returns:
        ``Path(root)``.
    """
    unknown = [s for s in sequences if s not in MVSEC_SEQUENCE_NAMES]
    if unknown or not sequences:
        raise ValueError(f"sequences: expected names from {MVSEC_SEQUENCE_NAMES}, got {sequences}")
    if duration_us <= 0 or fps <= 0 or depth_rate_hz <= 0:
        raise ValueError(f"duration_us, fps, depth_rate_hz: expected positive values, got "
                         f"{duration_us}, {fps}, {depth_rate_hz}")
    if not 0 < object_depth_m[0] <= object_depth_m[1]:
        raise ValueError(f"object_depth_m: expected 0 < min <= max, got {object_depth_m}")
    width, height = (int(v) for v in sensor_size)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    ts = frame_times(duration_us, fps)
    period = 1e6 / depth_rate_hz
    depth_ts = np.rint(np.arange(1, int(duration_us / period + 1e-9) + 1) * period).astype(np.int64)
    for name in sequences:
        rng = child_rng(seed, zlib.crc32(name.encode()))
        scene = _make_scene(rng, width, height, n_objects, object_depth_m, duration_us * 1e-6,
                            focal_px, camera_height_m, camera_speed_mps, far_depth_m, max_depth_m)
        gain = 0.25 if "night" in name else 1.0
        frames = np.stack([_render(scene, t * 1e-6)[0] for t in ts]) * gain
        events = simulate_dvs(frames, ts, refractory_us=100, noise_rate_hz=noise_rate_hz,
                              seed=int(rng.integers(2**31)))
        depth = np.stack([_render(scene, t * 1e-6)[1] for t in depth_ts]).astype(np.float32)
        write_mvsec_hdf5(root / f"{name}_data.hdf5", root / f"{name}_gt.hdf5", events, depth,
                         depth_ts)
    return root
