"""Small rendering helpers shared by the synthetic generators: textures, resizing, soft shapes.

All images are float64 ``[H, W]`` intensities in ``[0, 1]``; coordinates are in pixels with
pixel ``(x, y)`` covering ``[x, x + 1) x [y, y + 1)`` (its centre at ``x + 0.5``). Shapes are
anti-aliased (exact area coverage for rectangles, a one-pixel soft edge for ellipses) so that a
shape moving by a fraction of a pixel changes intensities gradually, which the DVS simulator
turns into events with sensible timestamps.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "child_rng",
    "frame_times",
    "paint_textured_rect",
    "value_noise",
    "resize_bilinear",
    "rect_coverage",
    "ellipse_alpha",
    "sample_wrapped",
]


def child_rng(seed: int, *keys: int) -> np.random.Generator:
    """An independent generator for one item (``keys``) of a dataset made with ``seed``.

    Seeding each recording on its own keeps a file identical when other files' settings change.
    """
    return np.random.default_rng(np.random.SeedSequence([int(seed), *map(int, keys)]))


def frame_times(duration_us: int, fps: float) -> np.ndarray:
    """Render times ``[F]`` int64 µs: ``F = max(2, round(duration * fps) + 1)`` frames evenly over
    ``[0, duration_us]``, both ends included (the simulator interpolates between them)."""
    n_frames = max(2, int(round(duration_us * 1e-6 * fps)) + 1)
    return np.rint(np.linspace(0, duration_us, n_frames)).astype(np.int64)


def resize_bilinear(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Resize ``[h, w]`` to ``[out_h, out_w]`` with bilinear interpolation (pixel-centre aligned)."""
    img = np.asarray(image, dtype=np.float64)
    h, w = img.shape

    def axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        src = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
        src = np.clip(src, 0, n_in - 1)
        lo = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, src - lo

    y0, y1, fy = axis(h, out_h)
    x0, x1, fx = axis(w, out_w)
    top = img[y0][:, x0] * (1 - fx) + img[y0][:, x1] * fx
    bot = img[y1][:, x0] * (1 - fx) + img[y1][:, x1] * fx
    return top * (1 - fy[:, None]) + bot * fy[:, None]


def value_noise(
    shape: tuple[int, int], cell_px: float, rng: np.random.Generator, octaves: int = 2
) -> np.ndarray:
    """Smooth random texture ``[H, W]`` in ``[0, 1]``: random grids upsampled bilinearly.

    Args:
        shape: ``(H, W)``.
        cell_px: feature size of the coarsest octave in pixels.
        rng: generator (the texture is a function of its state).
        octaves: number of octaves, each at half the cell size and half the amplitude.
    """
    h, w = shape
    out = np.zeros((h, w))
    amp, cell = 1.0, float(cell_px)
    for _ in range(octaves):
        gh, gw = max(2, int(np.ceil(h / cell)) + 1), max(2, int(np.ceil(w / cell)) + 1)
        out += amp * resize_bilinear(rng.random((gh, gw)), h, w)
        amp, cell = amp / 2, max(cell / 2, 1.0)
    lo, hi = out.min(), out.max()
    return (out - lo) / (hi - lo) if hi > lo else np.zeros((h, w))


def _interval_coverage(n: int, a: float, b: float, first: int = 0) -> np.ndarray:
    """Length of ``[a, b)`` inside each pixel ``[i, i + 1)``, ``i = first..first+n-1``."""
    i = np.arange(first, first + n, dtype=np.float64)
    return np.clip(np.minimum(b, i + 1) - np.maximum(a, i), 0.0, 1.0)


def rect_coverage(
    h: int, w: int, x0: float, y0: float, x1: float, y1: float, row0: int = 0, col0: int = 0
) -> np.ndarray:
    """Fraction ``[h, w]`` of each pixel covered by the rectangle ``[x0, x1) x [y0, y1)``.

    The ``[h, w]`` pixels start at row ``row0`` and column ``col0`` (a window on the image, so
    a small object costs only its own pixels).
    """
    return (_interval_coverage(h, y0, y1, row0)[:, None]
            * _interval_coverage(w, x0, x1, col0)[None, :])


def ellipse_alpha(
    h: int, w: int, cx: float, cy: float, rx: float, ry: float, soft_px: float = 1.0
) -> np.ndarray:
    """Opacity ``[H, W]`` of an ellipse centred at ``(cx, cy)`` with radii ``(rx, ry)`` pixels.

    The edge ramps from 1 to 0 over ``soft_px`` pixels (approximate distance to the boundary).
    """
    ys = np.arange(h) + 0.5
    xs = np.arange(w) + 0.5
    r = np.hypot((xs[None, :] - cx) / rx, (ys[:, None] - cy) / ry)
    dist = (r - 1.0) * min(rx, ry)
    return np.clip(0.5 - dist / soft_px, 0.0, 1.0)


def sample_wrapped(texture: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Bilinear samples ``[len(ys), len(xs)]`` of a periodic ``texture [th, tw]`` on a grid.

    ``xs`` and ``ys`` are 1-D texture coordinates (any real values; the texture wraps), so a
    texture attached to a moving object is sampled at pixel centres minus the object's offset.
    """
    th, tw = texture.shape
    xs = np.asarray(xs, dtype=np.float64) - 0.5
    ys = np.asarray(ys, dtype=np.float64) - 0.5
    x0 = np.floor(xs).astype(np.int64)
    y0 = np.floor(ys).astype(np.int64)
    fx, fy = xs - x0, ys - y0
    xa, xb = x0 % tw, (x0 + 1) % tw
    ya, yb = y0 % th, (y0 + 1) % th
    top = texture[ya][:, xa] * (1 - fx) + texture[ya][:, xb] * fx
    bot = texture[yb][:, xa] * (1 - fx) + texture[yb][:, xb] * fx
    return top * (1 - fy[:, None]) + bot * fy[:, None]


def paint_textured_rect(
    img: np.ndarray, texture: np.ndarray, brightness: float,
    x0: float, y0: float, x1: float, y1: float, contrast: float = 0.5, ellipse: bool = False,
) -> tuple[slice, slice, np.ndarray] | None:
    """Paint, in place, a rectangle ``[x0, x1) x [y0, y1)`` (or, with ``ellipse``, the ellipse
    inscribed in it, edges from :func:`ellipse_alpha`) with a texture that moves with it.

    Only the pixels the rectangle touches are visited; its edges are anti-aliased by exact area
    coverage (:func:`rect_coverage`). The look is ``clip(brightness + contrast * (tex - 0.5))``
    with ``tex`` sampled from the wrapped ``texture`` at pixel centres minus the rectangle's
    origin. Later calls paint over earlier ones (painter's order).

    Returns:
        ``(rows, cols, alpha)``: the painted window and its coverage ``[len(rows), len(cols)]``
        (e.g. to paint a depth map too), or None when the rectangle is off the image.
    """
    h, w = img.shape
    c0, c1 = max(int(np.floor(x0)), 0), min(int(np.ceil(x1)), w)
    r0, r1 = max(int(np.floor(y0)), 0), min(int(np.ceil(y1)), h)
    if c1 <= c0 or r1 <= r0:
        return None
    if ellipse:
        alpha = ellipse_alpha(r1 - r0, c1 - c0, (x0 + x1) / 2 - c0, (y0 + y1) / 2 - r0, (x1 - x0) / 2, (y1 - y0) / 2)
    else:
        alpha = rect_coverage(r1 - r0, c1 - c0, x0, y0, x1, y1, r0, c0)
    tex = sample_wrapped(texture, np.arange(c0, c1) + 0.5 - x0, np.arange(r0, r1) + 0.5 - y0)
    look = np.clip(brightness + contrast * (tex - 0.5), 0.0, 1.0)
    rows, cols = slice(r0, r1), slice(c0, c1)
    img[rows, cols] = img[rows, cols] * (1 - alpha) + look * alpha
    return rows, cols, alpha
