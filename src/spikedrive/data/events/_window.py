"""The one way to cut "events with ``t_start <= t < t_end``" out of a time-sorted stream (private).

* :func:`time_window` / :func:`window_bounds` for arrays in memory (two ``np.searchsorted``);
* :func:`lazy_window_bounds` for sorted times that live on disk (a DAT memory map, an HDF5
  dataset): a bisection that reads about ``2 * log2(N)`` single timestamps, never the column.

Windows are half-open, as everywhere in the package (label windows ``[label - w, label)``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["window_bounds", "time_window", "bisect_time", "lazy_window_bounds"]


def window_bounds(t: np.ndarray, t_start: int, t_end: int) -> tuple[int, int]:
    """``(lo, hi)`` with ``t[lo:hi]`` the times in ``[t_start, t_end)`` of a sorted array.

    ``hi >= lo`` always (an empty or inverted window gives ``lo == hi``).
    """
    lo = int(np.searchsorted(t, t_start, "left"))
    hi = int(np.searchsorted(t, t_end, "left"))
    return lo, max(lo, hi)


def time_window(events: np.ndarray, t_start: int, t_end: int) -> np.ndarray:
    """The events with ``t_start <= t < t_end`` of a time-sorted stream (a view, not a copy)."""
    lo, hi = window_bounds(events["t"], t_start, t_end)
    return events[lo:hi]


def bisect_time(time_at: Callable[[int], int], n: int, t: int) -> int:
    """First index ``i`` in ``[0, n]`` with ``time_at(i) >= t``, for ``n`` sorted times.

    ``time_at`` reads one time (from a memory map, an HDF5 row, ...), so the search costs
    ``ceil(log2(n + 1))`` reads and no copy of the whole column.
    """
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if time_at(mid) < t:
            lo = mid + 1
        else:
            hi = mid
    return lo


def lazy_window_bounds(time_at: Callable[[int], int], n: int, t_start: int, t_end: int) -> tuple[int, int]:
    """:func:`window_bounds` for times read one at a time by ``time_at`` (see :func:`bisect_time`)."""
    lo = bisect_time(time_at, n, t_start)
    if t_end <= t_start:
        return lo, lo
    # the end lies at or after lo: search only there
    hi = lo + bisect_time(lambda i: time_at(lo + i), n - lo, t_end)
    return lo, hi
