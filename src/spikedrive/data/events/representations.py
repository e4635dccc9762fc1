"""Event representations (dense tensors from event streams) as pure NumPy functions.

Every function takes an event array (a NumPy structured array with fields ``t`` µs, ``x``, ``y``,
``p`` in {0, 1}, sorted by ``t``: the house and Tonic convention) and returns a dense ``float32``
array; nothing is modified in place. Event-wise operations (denoise, crop, ...) are in
:mod:`spikedrive.data.events.augment`. The frozen-dataclass
wrappers in :mod:`spikedrive.data.events.transforms` are the thin shells over these.

``sensor_size`` is ``(width, height)`` or Tonic's ``(width, height, 2)``. Dense outputs are
``[..., H, W]``; polarity channel 0 is OFF (``p = 0``), channel 1 is ON (``p = 1``).

Windows that end at a label time are half-open, ``[label - window, label)``, and their ``T`` bins
are equal: bin ``i`` holds ``start + i * window / T <= t < start + (i + 1) * window / T``. This is
how SpikeYOLO's Gen1 preprocessing cuts its windows (``seek_time(label - window)`` then ``T``
``load_delta_t(window // T)`` calls), so an event exactly at the label time is not included.

Everything is vectorised: per-event work goes through ``np.bincount``, ``np.maximum.at``,
``np.searchsorted`` or ``np.unique``; the only Python loops run over bins or sample times.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._validate import _int_arg, _on, _positive_int, _positive_real, _prepare, sensor_wh
from ._window import time_window

__all__ = [
    "sensor_wh",
    "to_frames",
    "to_event_histogram",
    "to_voxel_grid",
    "to_time_surface",
    "to_cumulative_frames",
]

# Float bin edges are rounded up to whole microseconds / events; the tolerance keeps an edge that
# is an exact integer in rational arithmetic (e.g. 3 * 100 / 3) from being pushed one step up.
_EDGE_TOL = 1e-9


# --------------------------------------------------------------------------------------------
# frames
# --------------------------------------------------------------------------------------------
def _equal_slices(n_bins: int, overlap: float, length: float) -> tuple[np.ndarray, np.ndarray]:
    """Float ``(starts, ends)`` of ``n_bins`` equal slices covering ``[0, length]``."""
    span = length / (1.0 + (n_bins - 1) * (1.0 - overlap))
    starts = np.arange(n_bins) * span * (1.0 - overlap)
    return starts, starts + span


def _slice_bounds(
    t: np.ndarray,
    t0: int,
    t1: int,
    n_time_bins: int | None,
    n_event_bins: int | None,
    event_count: int | None,
    time_window_us: int | None,
    overlap: float,
    include_incomplete: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Index bounds ``lo[i]:hi[i]`` into ``t`` (already cut to ``[t0, t1)``) for every frame."""
    n = len(t)
    if n_time_bins is not None:
        if not 0.0 <= overlap < 1.0:
            raise ValueError(f"overlap: expected a fraction in [0, 1) with n_time_bins, got {overlap}")
        starts, ends = _equal_slices(n_time_bins, overlap, float(t1 - t0))
        lo_t = t0 + np.ceil(starts - _EDGE_TOL).astype(np.int64)
        hi_t = t0 + np.ceil(ends - _EDGE_TOL).astype(np.int64)
        hi_t[-1] = t1
        return np.searchsorted(t, lo_t, "left"), np.searchsorted(t, hi_t, "left")
    if n_event_bins is not None:
        if not 0.0 <= overlap < 1.0:
            raise ValueError(f"overlap: expected a fraction in [0, 1) with n_event_bins, got {overlap}")
        starts, ends = _equal_slices(n_event_bins, overlap, float(n))
        lo = np.floor(starts + _EDGE_TOL).astype(np.int64)
        hi = np.floor(ends + _EDGE_TOL).astype(np.int64)
        hi[-1] = n
        return lo, hi
    if event_count is not None:
        return _sliding_windows(n, event_count, overlap, include_incomplete, "events", "event_count")
    assert time_window_us is not None
    lo_t, hi_t = _sliding_windows(t1 - t0, time_window_us, overlap, include_incomplete, "µs", "time_window_us")
    return np.searchsorted(t, t0 + lo_t, "left"), np.searchsorted(t, t0 + hi_t, "left")


def _sliding_windows(length: int, window: int, overlap: float, include_incomplete: bool,
                     unit: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)`` offsets of windows of ``window`` units, ``overlap`` apart, over ``[0, length)``;
    a last shorter window up to ``length`` when ``include_incomplete``."""
    ov = int(overlap)
    if ov != overlap or not 0 <= ov < window:
        raise ValueError(f"overlap: expected an integer number of {unit} in [0, {name}={window}), got {overlap}")
    stride = window - ov
    n_full = (length - window) // stride + 1 if length >= window else 0
    lo = np.arange(n_full, dtype=np.int64) * stride
    hi = lo + window
    covered = int(hi[-1]) if n_full else 0
    if include_incomplete and covered < length:
        lo = np.append(lo, n_full * stride)
        hi = np.append(hi, length)
    return lo, hi


def _accumulate(events: np.ndarray, lo: np.ndarray, hi: np.ndarray, w: int, h: int) -> np.ndarray:
    """Counts ``[len(lo), 2, H, W]`` of the (possibly overlapping) slices ``events[lo:hi]``."""
    n_frames = len(lo)
    lengths = np.maximum(hi - lo, 0)
    total = int(lengths.sum())
    frame = np.repeat(np.arange(n_frames, dtype=np.int64), lengths)
    # index of every (frame, event) pair: lo[frame] + position inside the slice
    first = np.cumsum(lengths) - lengths
    idx = np.repeat(lo - first, lengths) + np.arange(total, dtype=np.int64)
    ev = events[idx]
    flat = ((frame * 2 + _on(ev)) * h + ev["y"].astype(np.int64)) * w + ev["x"].astype(np.int64)
    counts = np.bincount(flat, minlength=n_frames * 2 * h * w)
    return counts.reshape(n_frames, 2, h, w).astype(np.float32)


def to_frames(
    events: np.ndarray,
    sensor_size: Sequence[int],
    *,
    n_time_bins: int | None = None,
    n_event_bins: int | None = None,
    event_count: int | None = None,
    time_window_us: int | None = None,
    overlap: float = 0.0,
    start_time_us: int | None = None,
    end_time_us: int | None = None,
    include_incomplete: bool = False,
    binarize: bool = False,
) -> np.ndarray:
    """Event counts per pixel and polarity in consecutive slices: ``[T, 2, H, W]`` float32.

    Exactly one slicing rule:

    * ``n_time_bins=T``: ``T`` equal time bins over ``[start, end)``;
    * ``n_event_bins=T``: ``T`` slices of (as nearly as possible) equal event counts;
    * ``event_count=c``: slices of ``c`` events each (``T`` follows from the stream length);
    * ``time_window_us=w``: slices of ``w`` µs each.

    Args:
        events: sorted event array.
        sensor_size: ``(W, H)`` or ``(W, H, 2)``.
        overlap: off (0) by default. A fraction in ``[0, 1)`` for ``n_time_bins`` /
            ``n_event_bins`` (consecutive slices share that fraction of their length, all ``T``
            still spanning the whole stream); events for ``event_count``; µs for ``time_window_us``.
        start_time_us, end_time_us: the span ``[start, end)``; default ``t[0]`` and ``t[-1] + 1``
            so that every event is used. Events outside are ignored in every mode.
        include_incomplete: with ``event_count`` / ``time_window_us``, keep a last, shorter slice
            instead of dropping the remainder.
        binarize: 1 where a pixel has any event in the slice, instead of counts.

    Returns:
        ``[T, 2, H, W]`` float32 counts (channel 0 OFF, 1 ON).
    """
    w, h = _prepare(events, sensor_size, need_sorted=True)
    modes = {
        "n_time_bins": n_time_bins,
        "n_event_bins": n_event_bins,
        "event_count": event_count,
        "time_window_us": time_window_us,
    }
    chosen = [k for k, v in modes.items() if v is not None]
    if len(chosen) != 1:
        raise ValueError(f"to_frames: give exactly one of {tuple(modes)}, got {chosen or 'none'}")
    _positive_int(chosen[0], modes[chosen[0]])  # type: ignore[arg-type]
    t = events["t"]
    if len(events) == 0 and (start_time_us is None or end_time_us is None):
        n_out = n_time_bins or n_event_bins or 0
        return np.zeros((n_out, 2, h, w), np.float32)
    t0 = int(t[0]) if start_time_us is None else int(start_time_us)
    t1 = int(t[-1]) + 1 if end_time_us is None else int(end_time_us)
    if t1 <= t0:
        raise ValueError(f"end_time_us: must be after start_time_us={t0}, got {t1}")
    cut = time_window(events, t0, t1)
    lo, hi = _slice_bounds(
        cut["t"], t0, t1, n_time_bins, n_event_bins, event_count, time_window_us, overlap,
        include_incomplete,
    )
    frames = _accumulate(cut, lo, hi, w, h)
    return (frames > 0).astype(np.float32) if binarize else frames


def _window_bins(t: np.ndarray, label_time_us: int, window_us: int, n_bins: int) -> np.ndarray:
    """Bin index of each time in ``[label - window, label)`` split ``n_bins`` ways; -1 outside."""
    rel = t.astype(np.int64) - (int(label_time_us) - int(window_us))
    inside = (rel >= 0) & (rel < window_us)
    # integer arithmetic: exact equal bins even when window_us is not a multiple of n_bins
    return np.where(inside, rel * n_bins // window_us, -1)


def to_event_histogram(
    events: np.ndarray,
    sensor_size: Sequence[int],
    *,
    label_time_us: int,
    n_bins: int,
    window_us: int = 250_000,
    normalize: bool = False,
) -> np.ndarray:
    """SpikeYOLO's Gen1 input: ``[T, 3, H, W]`` grey frames painted by the latest event.

    The window ``[label_time_us - window_us, label_time_us)`` is split into ``n_bins`` equal bins;
    each bin is a frame on grey 127 where an event writes 255 (ON) or 0 (OFF) and the latest event
    at a pixel wins (ties in ``t``: the later one in the array). The three channels are equal, as
    the detector's RGB stem expects.

    Args:
        events: sorted event array.
        sensor_size: ``(W, H)``, 304x240 for Gen1.
        label_time_us: the label time the window ends at (excluded).
        n_bins: ``T``.
        window_us: window length in µs (250 ms in SpikeYOLO).
        normalize: divide by 255 (values in {0, 127/255, 1}).

    Returns:
        ``[T, 3, H, W]`` float32 with values in {0, 127, 255} (or /255).
    """
    w, h = _prepare(events, sensor_size, need_sorted=True)
    label_time_us = _int_arg("label_time_us", label_time_us)
    n_bins = _positive_int("n_bins", n_bins)
    window_us = _positive_int("window_us", window_us)
    b = _window_bins(events["t"], label_time_us, window_us, n_bins)
    keep = b >= 0
    ev, b = events[keep], b[keep]
    frames = np.full(n_bins * h * w, 127.0, np.float32)
    if len(ev):
        flat = (b * h + ev["y"].astype(np.int64)) * w + ev["x"].astype(np.int64)
        # last occurrence of each pixel: first occurrence in the reversed (time-sorted) stream;
        # fancy assignment with repeated indices has no guaranteed order, so do it explicitly
        pix, first_rev = np.unique(flat[::-1], return_index=True)
        last = len(flat) - 1 - first_rev
        frames[pix] = np.where(ev["p"][last] > 0, 255.0, 0.0)
    frames = np.repeat(frames.reshape(n_bins, 1, h, w), 3, axis=1)
    return frames / np.float32(255.0) if normalize else frames


def to_cumulative_frames(
    events: np.ndarray,
    sensor_size: Sequence[int],
    *,
    label_time_us: int,
    window_us: int,
    n_steps: int,
    binarize: bool = False,
) -> np.ndarray:
    """Cumulative stacking (the event-depth SNN's input): ``[T, 2, H, W]`` float32.

    The window ``[label_time_us - window_us, label_time_us)`` is split into ``n_steps`` equal
    sub-windows; step ``t`` counts the events from the window start up to the end of sub-window
    ``t``, so counts never decrease along ``T`` and the last step holds the whole window.

    Args:
        events: sorted event array.
        sensor_size: ``(W, H)``.
        label_time_us: the depth label's time (excluded).
        window_us: window length in µs.
        n_steps: ``T``.
        binarize: 1 where a pixel has any event so far, instead of counts.
    """
    w, h = _prepare(events, sensor_size, need_sorted=True)
    label_time_us = _int_arg("label_time_us", label_time_us)
    n_steps = _positive_int("n_steps", n_steps)
    window_us = _positive_int("window_us", window_us)
    b = _window_bins(events["t"], label_time_us, window_us, n_steps)
    keep = b >= 0
    ev = events[keep]
    flat = ((b[keep] * 2 + _on(ev)) * h + ev["y"].astype(np.int64)) * w + ev["x"].astype(np.int64)
    counts = np.bincount(flat, minlength=n_steps * 2 * h * w).reshape(n_steps, 2, h, w)
    frames = np.cumsum(counts, axis=0).astype(np.float32)
    return (frames > 0).astype(np.float32) if binarize else frames


# --------------------------------------------------------------------------------------------
# voxel grid and time surface
# --------------------------------------------------------------------------------------------
def to_voxel_grid(
    events: np.ndarray,
    sensor_size: Sequence[int],
    n_bins: int,
    *,
    start_time_us: int | None = None,
    end_time_us: int | None = None,
) -> np.ndarray:
    """Voxel grid with bilinear interpolation in time (E2VID, EV-FlowNet): ``[n_bins, H, W]``.

    Times are normalised to ``tn = (n_bins - 1) (t - t0) / (t1 - t0)``; an event of polarity
    ``+1`` (ON) or ``-1`` (OFF) adds ``pol * max(0, 1 - |b - tn|)`` to bin ``b``. So each event's
    weights sum to 1 and the grid sums to ``#ON - #OFF``.

    Args:
        events: sorted event array.
        sensor_size: ``(W, H)``.
        n_bins: number of temporal bins.
        start_time_us, end_time_us: ``t0``, ``t1`` (inclusive); default the first and last event
            times. Events outside ``[t0, t1]`` are ignored.

    Returns:
        ``[n_bins, H, W]`` float32.
    """
    w, h = _prepare(events, sensor_size, need_sorted=True)
    n_bins = _positive_int("n_bins", n_bins)
    grid = np.zeros(n_bins * h * w, np.float64)
    if len(events) == 0:
        return grid.reshape(n_bins, h, w).astype(np.float32)
    t = events["t"]
    t0 = int(t[0]) if start_time_us is None else int(start_time_us)
    t1 = int(t[-1]) if end_time_us is None else int(end_time_us)
    if t1 < t0:
        raise ValueError(f"end_time_us: must not be before start_time_us={t0}, got {t1}")
    ev = events[np.searchsorted(t, t0, "left") : np.searchsorted(t, t1, "right")]
    span = max(t1 - t0, 1)  # all events at one time: everything lands in bin 0
    tn = (n_bins - 1) * (ev["t"] - t0).astype(np.float64) / span
    left = np.floor(tn).astype(np.int64)
    frac = tn - left
    pol = np.where(ev["p"] > 0, 1.0, -1.0)
    pix = ev["y"].astype(np.int64) * w + ev["x"].astype(np.int64)
    size = n_bins * h * w
    grid += np.bincount(left * h * w + pix, weights=pol * (1.0 - frac), minlength=size)
    right = left + 1
    ok = right < n_bins  # the last bin has no right neighbour (and frac is 0 there)
    grid += np.bincount(right[ok] * h * w + pix[ok], weights=(pol * frac)[ok], minlength=size)
    return grid.reshape(n_bins, h, w).astype(np.float32)


def to_time_surface(
    events: np.ndarray,
    sensor_size: Sequence[int],
    sample_times_us: Sequence[int] | np.ndarray,
    tau_us: float,
) -> np.ndarray:
    """Exponentially decaying time surfaces per polarity: ``[len(times), 2, H, W]`` float32.

    At sample time ``s`` a pixel and polarity whose latest event (``t <= s``) was at ``t_last``
    has value ``exp(-(s - t_last) / tau_us)``; pixels with no event yet are 0.

    Args:
        events: sorted event array.
        sensor_size: ``(W, H)``.
        sample_times_us: the times to sample at, in any order.
        tau_us: decay constant in µs (> 0).
    """
    w, h = _prepare(events, sensor_size, need_sorted=True)
    tau_us = _positive_real("tau_us", tau_us)
    try:
        times = np.asarray(sample_times_us, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"sample_times_us: expected integer times in µs, got {sample_times_us!r}") from None
    out = np.zeros((len(times), 2, h, w), np.float32)
    t = events["t"]
    flat = (_on(events) * h + events["y"].astype(np.int64)) * w + events["x"].astype(np.int64)
    last = np.full(2 * h * w, np.iinfo(np.int64).min, np.int64)
    done = 0
    for k in np.argsort(times, kind="stable"):  # a loop over sample times, not events
        upto = int(np.searchsorted(t, times[k], "right"))
        if upto > done:
            np.maximum.at(last, flat[done:upto], t[done:upto].astype(np.int64))
            done = upto
        seen = last > np.iinfo(np.int64).min
        surf = np.zeros(2 * h * w, np.float64)
        surf[seen] = np.exp(-(times[k] - last[seen]) / tau_us)
        out[k] = surf.reshape(2, h, w)
    return out
