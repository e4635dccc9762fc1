"""Event-wise operations: denoise, crop, downsample, flip, time jitter, time slice.

Each takes an event array (fields ``t`` µs, ``x``, ``y``, ``p``, sorted by ``t``) and returns a
new one; nothing is modified in place. The frozen-dataclass wrappers live in
:mod:`spikedrive.data.events.transforms`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._validate import _positive_int, _prepare, sensor_wh
from ._window import time_window
from .dtype import check_events

__all__ = ["denoise", "crop", "downsample", "flip", "time_jitter", "time_slice"]


_NEIGHBOURS = {
    4: ((-1, 0), (1, 0), (0, -1), (0, 1)),
    8: ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)),
}


def denoise(
    events: np.ndarray, sensor_size: Sequence[int], filter_time_us: int, *, neighbours: int = 8
) -> np.ndarray:
    """Drop events without support (background-activity filter).

    An event at ``(x, y, t)`` is kept when one of its ``neighbours`` pixels had an event earlier
    in the (sorted) stream with ``t - t_prev < filter_time_us``; the pixel itself never counts,
    so a hot pixel cannot support itself.

    Args:
        neighbours: 8 (default: the 3x3 patch without its centre, as Orchard's ``FilterTD``)
            or 4 (the pixels left, right, above and below: Tonic's ``Denoise`` neighbourhood).

    With ``neighbours=4`` this is Tonic's ``denoise_numpy`` rule except for two quirks of
    Tonic's we do not copy: Tonic starts every pixel's memory at ``filter_time`` (as if each
    pixel had an event at ``t = 0``, so in the first ``filter_time`` µs every event with an
    in-sensor neighbour is kept), and takes the sensor size from the largest ``x`` and ``y``
    seen instead of ``sensor_size``.

    Returns:
        the kept events, in their original order.
    """
    w, h = _prepare(events, sensor_size, need_sorted=True)
    filter_time_us = _positive_int("filter_time_us", filter_time_us)
    if neighbours not in _NEIGHBOURS:
        raise ValueError(f"neighbours: expected 4 or 8, got {neighbours!r}")
    n = len(events)
    if n == 0:
        return events.copy()
    pix = events["y"].astype(np.int64) * w + events["x"].astype(np.int64)
    # key = pixel * n + index: sorted keys group events by pixel, in stream order inside a pixel,
    # so "the latest event at pixel q before event i" is the key just below q * n + i. Working
    # in key order makes every needle array (key + offset * n) sorted too, which keeps the
    # binary searches cache-friendly (linear-ish instead of random probes).
    keys = np.sort(pix * n + np.arange(n, dtype=np.int64))
    order = keys % n  # event index of each key
    kpix = keys // n
    kx, ky = kpix % w, kpix // w
    kt = events["t"].astype(np.int64)[order]
    supported = np.zeros(n, bool)
    for dx, dy in _NEIGHBOURS[neighbours]:
        d = dy * w + dx
        pos = np.searchsorted(keys, keys + d * n, "left") - 1
        pos_c = np.maximum(pos, 0)
        qx, qy = kx + dx, ky + dy
        found = (qx >= 0) & (qx < w) & (qy >= 0) & (qy < h) & (pos >= 0) & (kpix[pos_c] == kpix + d)
        supported |= found & (kt - kt[pos_c] < filter_time_us)
    keep = np.zeros(n, bool)
    keep[order] = supported
    return events[keep]


def crop(
    events: np.ndarray,
    sensor_size: Sequence[int],
    *,
    target_size: Sequence[int] | None = None,
    box: Sequence[int] | None = None,
) -> np.ndarray:
    """Keep events inside a crop and shift them to its origin.

    Args:
        target_size: ``(w, h)`` of a centred crop, or
        box: ``(x0, y0, w, h)`` of an explicit crop (exactly one of the two).

    Returns:
        events in the crop's coordinates; the new sensor size is ``(w, h)``.
    """
    sw, sh = _prepare(events, sensor_size, need_sorted=False)
    if (target_size is None) == (box is None):
        raise ValueError("crop: give exactly one of target_size=(w, h) or box=(x0, y0, w, h)")
    if box is None:
        cw, ch = sensor_wh(target_size)  # type: ignore[arg-type]
        x0, y0 = (sw - cw) // 2, (sh - ch) // 2
    else:
        if len(box) != 4:
            raise ValueError(f"box: expected (x0, y0, w, h), got {box!r}")
        x0, y0, cw, ch = (int(v) for v in box)
    if cw <= 0 or ch <= 0 or x0 < 0 or y0 < 0 or x0 + cw > sw or y0 + ch > sh:
        raise ValueError(
            f"crop: the crop (x0={x0}, y0={y0}, w={cw}, h={ch}) must lie inside "
            f"sensor_size ({sw}, {sh})"
        )
    x, y = events["x"], events["y"]
    keep = (x >= x0) & (x < x0 + cw) & (y >= y0) & (y < y0 + ch)
    out = events[keep]  # boolean indexing copies already
    out["x"] -= x0
    out["y"] -= y0
    return out


def downsample(
    events: np.ndarray,
    sensor_size: Sequence[int],
    *,
    factor: int | None = None,
    target_size: Sequence[int] | None = None,
) -> np.ndarray:
    """Spatially downsample coordinates (events are kept; several may share a pixel).

    Args:
        factor: integer factor: ``x // factor``; the new size is ``ceil(W / factor)``; or
        target_size: ``(w, h)``: ``x * w // W`` (each axis scaled on its own).
    """
    sw, sh = _prepare(events, sensor_size, need_sorted=False)
    if (factor is None) == (target_size is None):
        raise ValueError("downsample: give exactly one of factor or target_size")
    out = events.copy()
    if factor is not None:
        f = _positive_int("factor", factor)
        out["x"] = events["x"] // f
        out["y"] = events["y"] // f
        return out
    tw, th = sensor_wh(target_size)  # type: ignore[arg-type]
    if tw > sw or th > sh:
        raise ValueError(f"target_size: must not exceed sensor_size ({sw}, {sh}), got {target_size!r}")
    out["x"] = events["x"].astype(np.int64) * tw // sw
    out["y"] = events["y"].astype(np.int64) * th // sh
    return out


def flip(
    events: np.ndarray,
    sensor_size: Sequence[int],
    *,
    lr: bool = False,
    ud: bool = False,
    flip_polarity: bool = False,
) -> np.ndarray:
    """Mirror left-right (``x -> W - 1 - x``) and/or up-down, optionally swapping ON and OFF."""
    w, h = _prepare(events, sensor_size, need_sorted=False)
    out = events.copy()
    if lr:
        out["x"] = w - 1 - events["x"]
    if ud:
        out["y"] = h - 1 - events["y"]
    if flip_polarity:
        # 0/1 polarities swap as 1 - p; -1/+1 ones as -p
        out["p"] = -events["p"] if np.any(events["p"] < 0) else 1 - events["p"]
    return out


def time_jitter(
    events: np.ndarray,
    std_us: float,
    rng: np.random.Generator,
    *,
    clip_negative: bool = True,
) -> np.ndarray:
    """Add Gaussian noise (``std_us`` µs, rounded to whole µs) to timestamps and re-sort.

    Args:
        rng: the generator (``np.random.default_rng(seed)``), so the caller owns reproducibility.
        clip_negative: clamp jittered times at 0.

    Returns:
        the jittered events, sorted by ``t`` (stable, so equal times keep their order).
    """
    check_events(events, exact=False)
    if not std_us >= 0:
        raise ValueError(f"std_us: expected a non-negative standard deviation, got {std_us!r}")
    out = events.copy()
    t = events["t"].astype(np.int64) + np.rint(rng.normal(0.0, std_us, len(events))).astype(np.int64)
    if clip_negative:
        t = np.maximum(t, 0)
    out["t"] = t
    return out[np.argsort(t, kind="stable")]


def time_slice(events: np.ndarray, start_us: int, end_us: int) -> np.ndarray:
    """Events with ``start_us <= t < end_us`` (sorted input, binary search), as a copy."""
    check_events(events, exact=False, need_sorted=True)
    if end_us < start_us:
        raise ValueError(f"end_us: must not be before start_us={start_us}, got {end_us}")
    return time_window(events, start_us, end_us).copy()
