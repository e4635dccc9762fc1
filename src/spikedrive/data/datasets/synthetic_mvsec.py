"""Synthetic MVSEC: a camera driving sideways past textured planes, in MVSEC's HDF5 files.

MVSEC keeps one pair of files per sequence::

    root/outdoor_day1_data.hdf5   davis/left/events [N, 4] (x, y, t s, p -1/+1)
    root/outdoor_day1_gt.hdf5     davis/left/depth_image_raw [K, H, W] metres, NaN = no depth
                                  davis/left/depth_image_raw_ts [K] seconds (and the rect pair)

Each sequence is its own random world (seeded by the sequence name, so ``outdoor_day1`` and
``outdoor_day2`` never share a scene), drawn from one distribution:

* a flat textured **ground** ``camera_height_m`` below a pinhole camera (focal ``focal_px``,
  horizon at mid-height); its depth grows towards the horizon, NaN beyond ``max_depth_m``
  (the lidar range);
* a row of fronto-parallel textured **facades** at ``far_depth_m`` (some gaps), and above them
  uniform **sky**, which gives no events and no depth (NaN, as the lidar gets no return);
* textured **objects** standing on the ground (fronto-parallel rectangles) at depths drawn
  log-uniformly from ``object_depth_m``, ``n_objects`` per second of driving.

The camera translates along its x axis at a constant ``camera_speed_mps``. The intensity video
is ray-cast (2x2 super-sampled, exact area coverage at plane edges, nearer planes occluding
farther ones) and turned into events by the DVS simulator, so the depth cue is real motion
parallax: a surface at depth ``Z`` moves ``focal * speed / Z`` pixels per second, near surfaces
sweep many pixels (long, dense event trails) and far ones few; occlusion boundaries appear and
disappear as planes slide past each other. The speed is the same in every sequence: a monocular
camera can only tell depth from parallax if it knows how fast it moves, and the lidar depth is
absolute. Textures are sized in *image* pixels at each plane's depth (``texel_px``), so the
event density of a plane does not betray its depth by texture scale alone; the ground's texture
is fixed in metres and fades where its texels fall below a pixel (a mip-map, so the far ground
does not alias into noise events). Sequences named ``*night*`` are rendered at a quarter of the
brightness. Depth maps come at ``depth_rate_hz`` (20 Hz in MVSEC), from the first one at
``1 / depth_rate_hz``; the depth of a pixel is that of the surface covering its centre.

Default size: ``outdoor_day1`` and ``outdoor_day2``, 1 s each at 346x260 and 200 frames/s,
20 depth maps per sequence.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from ..events.mvsec import MVSEC_SENSOR_SIZE, write_mvsec_hdf5
from ..events.simulator import simulate_dvs
from .synthetic_common import child_rng, frame_times, rect_coverage, sample_wrapped, value_noise

__all__ = ["make_mvsec", "MVSEC_SEQUENCE_NAMES", "render_mvsec_scene"]

MVSEC_SEQUENCE_NAMES = (
    "indoor_flying1", "indoor_flying2", "indoor_flying3", "indoor_flying4",
    "outdoor_day1", "outdoor_day2", "outdoor_night1", "outdoor_night2", "outdoor_night3",
)
_SUPERSAMPLE = 2
_TEX = 48  # texture tile side, texels


@dataclass(frozen=True)
class _Plane:
    """A fronto-parallel textured rectangle: world x in ``[x0, x1)`` m, from height ``top`` (m, y
    down, camera at 0) to the ground, at depth ``depth`` m."""

    x0: float
    x1: float
    top: float
    depth: float
    texture: np.ndarray  # [_TEX, _TEX], wraps
    texel_m: float
    brightness: float
    contrast: float


@dataclass(frozen=True)
class _Scene:
    width: int
    height: int
    focal: float
    cam_h: float
    cam_v: float
    max_z: float
    sky: float
    ground_tex: np.ndarray
    ground_texel_m: float
    planes: tuple[_Plane, ...]  # far to near (painter's order)


def _plane(rng: np.random.Generator, x0: float, width_m: float, height_m: float, depth: float,
           focal: float, cam_h: float, texel_px: tuple[float, float]) -> _Plane:
    tex = value_noise((_TEX, _TEX), rng.uniform(2.0, 5.0), rng, octaves=2)
    return _Plane(x0, x0 + width_m, cam_h - height_m, depth, tex, depth * rng.uniform(*texel_px) / focal,
                  rng.uniform(0.25, 0.75), rng.uniform(0.5, 0.9))


def _make_scene(rng: np.random.Generator, width: int, height: int, n_objects: int | float,
                object_depth_m: tuple[float, float], far_depth_m: tuple[float, float], duration_s: float,
                focal: float, cam_h: float, cam_v: float, max_z: float) -> _Scene:
    half_w, horizon = width / 2.0, height / 2.0
    travel = cam_v * duration_s
    texel_px = (0.8, 1.6)
    planes: list[_Plane] = []
    # facades: contiguous along x over everything the camera can see of their depth range
    reach = half_w * far_depth_m[1] / focal + 5.0
    x = -reach
    while x < travel + reach:
        w_m = rng.uniform(6.0, 25.0)
        if rng.random() > 0.15:  # else a gap showing the sky
            z = rng.uniform(*far_depth_m)
            # height by elevation so the sky band at the top of the image always stays
            elev_px = rng.uniform(0.15, 0.8) * horizon
            planes.append(_plane(rng, x, w_m, cam_h + elev_px * z / focal, z, focal, cam_h, texel_px))
        x += w_m
    lo, hi = math.log(object_depth_m[0]), math.log(object_depth_m[1])
    for _ in range(max(1, int(round(n_objects * duration_s)))):
        z = math.exp(rng.uniform(lo, hi))
        w_m = rng.uniform(0.4, 4.0)
        h_m = min(rng.uniform(0.8, 4.5), cam_h + 0.85 * horizon * z / focal)
        # in view (image offset u_off from the centre) at a random time of the sequence
        t_c = rng.uniform(-0.2, 1.2) * duration_s
        x_c = cam_v * t_c + rng.uniform(-1.0, 1.0) * half_w * z / focal
        planes.append(_plane(rng, x_c - w_m / 2, w_m, h_m, z, focal, cam_h, texel_px))
    planes.sort(key=lambda p: -p.depth)
    ground_tex = value_noise((_TEX, _TEX), rng.uniform(3.0, 6.0), rng, octaves=3)
    return _Scene(width, height, focal, cam_h, cam_v, max_z, 0.85, ground_tex, 0.25, tuple(planes))


def _bilinear_wrapped(tex: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear samples of a periodic ``tex [th, tw]`` at texel coordinates ``u, v`` (any shape)."""
    th, tw = tex.shape
    u0, v0 = np.floor(u), np.floor(v)
    fu, fv = u - u0, v - v0
    iu, iv = u0.astype(np.int64) % tw, v0.astype(np.int64) % th
    ju, jv = (iu + 1) % tw, (iv + 1) % th
    return ((tex[iv, iu] * (1 - fu) + tex[iv, ju] * fu) * (1 - fv)
            + (tex[jv, iu] * (1 - fu) + tex[jv, ju] * fu) * fv)


def _render(scene: _Scene, t_s: float, image: bool) -> np.ndarray:
    """Intensity ``[H, W]`` (``image``; 2x2 super-sampled) or depth ``[H, W]`` metres (NaN =
    none, the surface at each pixel centre) at time ``t_s``."""
    ss = _SUPERSAMPLE if image else 1
    h, w, f = scene.height * ss, scene.width * ss, scene.focal * ss
    cx, cy = w / 2.0, h / 2.0
    cols, rows = np.arange(w) + 0.5, np.arange(h) + 0.5
    xc = scene.cam_v * t_s
    out = np.full((h, w), scene.sky if image else np.nan)
    below = rows - cy
    g = np.flatnonzero(below > 0)
    zg = f * scene.cam_h / below[g]
    if image:
        xg = xc + (cols[None, :] - cx) * zg[:, None] / f
        tex = _bilinear_wrapped(scene.ground_tex, xg / scene.ground_texel_m,
                                np.broadcast_to(zg[:, None] / scene.ground_texel_m, xg.shape))
        # mip-map: texels smaller than a pixel average out instead of aliasing into flicker
        fade = np.clip(f * scene.ground_texel_m / zg / ss, 0.0, 1.0)[:, None]
        out[g] = np.clip(0.45 + 0.5 * fade * (tex - 0.5), 0.0, 1.0)
    else:
        out[g] = np.where(zg <= scene.max_z, zg, np.nan)[:, None]
    for p in scene.planes:
        x0, x1 = cx + f * (p.x0 - xc) / p.depth, cx + f * (p.x1 - xc) / p.depth
        y0, y1 = cy + f * p.top / p.depth, cy + f * scene.cam_h / p.depth
        c0, c1 = max(int(np.floor(x0)), 0), min(int(np.ceil(x1)), w)
        r0, r1 = max(int(np.floor(y0)), 0), min(int(np.ceil(y1)), h)
        if c1 <= c0 or r1 <= r0:
            continue
        alpha = rect_coverage(r1 - r0, c1 - c0, x0, y0, x1, y1, r0, c0)
        win = out[r0:r1, c0:c1]
        if image:
            step = p.depth / f / p.texel_m  # texels per (super-)sample
            # sample_wrapped subtracts half a texel; add it back so texel coords are exact
            tex = sample_wrapped(p.texture, (np.arange(c0, c1) + 0.5 - x0) * step + 0.5,
                                 (np.arange(r0, r1) + 0.5 - y0) * step + 0.5)
            look = np.clip(p.brightness + p.contrast * (tex - 0.5), 0.0, 1.0)
            win[...] = win * (1 - alpha) + look * alpha
        else:
            win[alpha >= 0.5] = p.depth
    if image and ss > 1:
        out = out.reshape(scene.height, ss, scene.width, ss).mean(axis=(1, 3))
    return out


def render_mvsec_scene(sequence: str, t_us: np.ndarray, *, seed: int = 0, duration_us: int = 1_000_000,
                       sensor_size: tuple[int, int] = MVSEC_SENSOR_SIZE,
                       **scene_kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
    """Intensity ``[K, H, W]`` (in ``[0, 1]``, before the night gain) and depth ``[K, H, W]``
    (metres, NaN = none) of ``sequence``'s world at times ``t_us [K]`` (us), as
    :func:`make_mvsec` renders it (same ``seed``, ``duration_us``, ``sensor_size`` and scene
    keywords); for tests and figures."""
    scene, _ = _scene_for(sequence, seed, duration_us, sensor_size, **scene_kwargs)
    t = np.asarray(t_us, dtype=np.float64) * 1e-6
    return (np.stack([_render(scene, ti, True) for ti in t]),
            np.stack([_render(scene, ti, False) for ti in t]).astype(np.float32))


def _scene_for(name: str, seed: int, duration_us: int, sensor_size: tuple[int, int], *, n_objects: float = 12.0,
               object_depth_m: tuple[float, float] = (2.5, 25.0), far_depth_m: tuple[float, float] = (30.0, 70.0),
               max_depth_m: float = 80.0, focal_px: float | None = None, camera_height_m: float = 1.5,
               camera_speed_mps: float = 10.0) -> tuple[_Scene, np.random.Generator]:
    width, height = (int(v) for v in sensor_size)
    focal = float(focal_px) if focal_px is not None else 226.0 * width / MVSEC_SENSOR_SIZE[0]
    rng = child_rng(seed, zlib.crc32(name.encode()))
    scene = _make_scene(rng, width, height, n_objects, tuple(object_depth_m), tuple(far_depth_m),
                        duration_us * 1e-6, focal, camera_height_m, camera_speed_mps, max_depth_m)
    return scene, rng


def make_mvsec(
    root: str | PathLike[str],
    sequences: tuple[str, ...] = ("outdoor_day1", "outdoor_day2"),
    *,
    seed: int = 0,
    duration_us: int = 1_000_000,
    fps: int = 200,
    depth_rate_hz: float = 20.0,
    sensor_size: tuple[int, int] = MVSEC_SENSOR_SIZE,
    n_objects: float = 12.0,
    object_depth_m: tuple[float, float] = (2.5, 25.0),
    far_depth_m: tuple[float, float] = (30.0, 70.0),
    max_depth_m: float = 80.0,
    focal_px: float | None = None,
    camera_height_m: float = 1.5,
    camera_speed_mps: float = 10.0,
    noise_rate_hz: float = 0.2,
) -> Path:
    """Write MVSEC-layout sequences (``<name>_data.hdf5`` + ``<name>_gt.hdf5``) under ``root``.

    Args:
        root: output folder.
        sequences: MVSEC names (any of :data:`MVSEC_SEQUENCE_NAMES`); each is its own random
            world seeded by its name, so a sequence's files do not depend on which others are
            generated, and train and test sequences never share a scene.
        seed: base seed (same seed, same files).
        duration_us: length of each sequence, us.
        fps: rendered frames per second (the simulator interpolates between frames).
        depth_rate_hz: depth maps per second.
        sensor_size: ``(W, H)``, the DAVIS 346's 346x260 by default.
        n_objects: objects per second of driving; ``object_depth_m``: their depth range, metres
            (drawn log-uniformly).
        far_depth_m: depth range of the facades, metres; ``max_depth_m``: lidar range (farther
            ground is NaN).
        focal_px: focal length in pixels (default: MVSEC's 226 px scaled to ``sensor_size``'s width);
        camera_height_m: camera above the ground; camera_speed_mps: sideways speed, metres / s.
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
    for name, rng_m in (("object_depth_m", object_depth_m), ("far_depth_m", far_depth_m)):
        if not 0 < rng_m[0] <= rng_m[1]:
            raise ValueError(f"{name}: expected 0 < min <= max metres, got {rng_m}")
    if not camera_speed_mps > 0:
        raise ValueError(f"camera_speed_mps: expected a speed > 0 m/s, got {camera_speed_mps}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    ts = frame_times(duration_us, fps)
    period = 1e6 / depth_rate_hz
    depth_ts = np.rint(np.arange(1, int(duration_us / period + 1e-9) + 1) * period).astype(np.int64)
    kwargs = dict(n_objects=n_objects, object_depth_m=object_depth_m, far_depth_m=far_depth_m,
                  max_depth_m=max_depth_m, focal_px=focal_px, camera_height_m=camera_height_m,
                  camera_speed_mps=camera_speed_mps)
    for name in sequences:
        scene, rng = _scene_for(name, seed, duration_us, sensor_size, **kwargs)
        gain = 0.25 if "night" in name else 1.0
        frames = np.stack([_render(scene, t * 1e-6, True) for t in ts]) * gain
        events = simulate_dvs(frames, ts, refractory_us=100, noise_rate_hz=noise_rate_hz,
                              seed=int(rng.integers(2**31)))
        depth = np.stack([_render(scene, t * 1e-6, False) for t in depth_ts]).astype(np.float32)
        write_mvsec_hdf5(root / f"{name}_data.hdf5", root / f"{name}_gt.hdf5", events, depth,
                         depth_ts)
    return root
