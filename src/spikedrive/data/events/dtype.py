"""The one event-stream layout used across spikedrive (the Tonic convention).

An event stream is a 1-D NumPy structured array of ``EVENT_DTYPE``::

    t  int64  microseconds
    x  int16  pixel column, 0 at the left
    y  int16  pixel row, 0 at the top
    p  int8   polarity: 1 = ON (brighter), 0 = OFF

sorted by ``t``. Tonic arrays (fields ``x, y, t, p`` in any order, ``p`` as bool) convert with
:func:`as_events`; readers in this package always return ``EVENT_DTYPE`` exactly.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "EVENT_DTYPE",
    "EVENT_FIELDS",
    "make_events",
    "empty_events",
    "check_events",
    "as_events",
    "is_sorted",
]

EVENT_DTYPE = np.dtype([("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "i1")])

#: The four fields every event array has (any order, extra fields allowed where not ``exact``).
EVENT_FIELDS = ("t", "x", "y", "p")


def empty_events(n: int = 0) -> np.ndarray:
    """Return ``n`` zeroed events, shape ``[n]``, dtype ``EVENT_DTYPE``."""
    return np.zeros(n, dtype=EVENT_DTYPE)


def _fits(values: np.ndarray, dtype: np.dtype, name: str, who: str) -> None:
    """Raise ValueError if ``values`` would not survive a cast to ``dtype`` unchanged."""
    if values.size == 0:
        return
    if not (np.issubdtype(values.dtype, np.integer) or values.dtype == np.bool_):
        if not np.issubdtype(values.dtype, np.floating):
            raise ValueError(f"{who}: field {name!r} has dtype {values.dtype}, expected integers")
        if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            raise ValueError(f"{who}: field {name!r} holds non-integer values, expected integers")
    info = np.iinfo(dtype)
    lo, hi = values.min(), values.max()
    if lo < info.min or hi > info.max:
        raise ValueError(
            f"{who}: field {name!r} spans [{lo}, {hi}], which does not fit {dtype} "
            f"([{info.min}, {info.max}])"
        )


def make_events(t: ArrayLike, x: ArrayLike, y: ArrayLike, p: ArrayLike) -> np.ndarray:
    """Build an ``EVENT_DTYPE`` array from four equal-length columns.

    Args:
        t: timestamps in microseconds, shape ``[N]``.
        x: columns, shape ``[N]``.
        y: rows, shape ``[N]``.
        p: polarities in {0, 1} (bool accepted), shape ``[N]``.

    Returns:
        Events, shape ``[N]``, dtype ``EVENT_DTYPE``. Values are checked to fit; nothing is
        silently wrapped. Order is kept as given (sort with ``np.argsort(t, kind="stable")``).
    """
    cols = {name: np.asarray(v) for name, v in zip(EVENT_FIELDS, (t, x, y, p))}
    n = cols["t"].shape
    for name, v in cols.items():
        if v.ndim != 1:
            raise ValueError(f"make_events: {name!r} must be 1-D, got shape {v.shape}")
        if v.shape != n:
            raise ValueError(f"make_events: {name!r} has shape {v.shape}, expected {n} like 't'")
        _fits(v, EVENT_DTYPE[name], name, "make_events")
    if cols["p"].size and not np.all((cols["p"] == 0) | (cols["p"] == 1)):
        raise ValueError("make_events: 'p' must be 0 or 1")
    out = np.empty(n, dtype=EVENT_DTYPE)
    for name, v in cols.items():
        out[name] = v
    return out


def check_events(
    events: object, who: str = "events", *, exact: bool = True, need_sorted: bool = False
) -> None:
    """Raise ValueError (naming ``who``) unless ``events`` is a 1-D event array.

    The one event validator of the package:

    * ``exact=True`` (default): the dtype must be ``EVENT_DTYPE`` exactly (what readers return
      and writers take after :func:`as_events`).
    * ``exact=False``: any structured array with the fields ``t, x, y, p`` (any order, extra
      fields and bool or -1/+1 polarities allowed, as Tonic's); what the representations and
      event-wise operations accept.
    * ``need_sorted``: also require non-decreasing ``t`` (the only check that scans values, O(N)).

    Otherwise only type, shape and dtype are checked, so it costs nothing on large streams.
    Use :func:`as_events` to convert a compatible array instead of rejecting it.
    """
    names = getattr(getattr(events, "dtype", None), "names", None)
    if not isinstance(events, np.ndarray) or (not exact and names is None):
        got = type(events).__name__ if not isinstance(events, np.ndarray) else f"dtype {events.dtype}"
        raise ValueError(f"{who}: expected a NumPy structured array with fields {EVENT_FIELDS}, got {got}")
    if exact and events.dtype != EVENT_DTYPE:
        raise ValueError(f"{who}: expected dtype {EVENT_DTYPE}, got {events.dtype}")
    if not exact and not set(EVENT_FIELDS) <= set(names):
        raise ValueError(f"{who}: expected a structured array with fields {EVENT_FIELDS}, got fields {names}")
    if events.ndim != 1:
        raise ValueError(f"{who}: expected a 1-D array of events, got shape {events.shape}")
    if need_sorted and not is_sorted(events):
        raise ValueError(f"{who}: timestamps 't' must be sorted in ascending order")


def as_events(events: object, who: str = "events") -> np.ndarray:
    """Return ``events`` as ``EVENT_DTYPE``, converting compatible structured arrays.

    Accepts any 1-D structured array with integer (or bool for ``p``) fields named
    ``t, x, y, p`` in any order, e.g. Tonic's. Values must fit without wrapping and ``p`` must
    be 0/1; otherwise ValueError names ``who``. An array that already is ``EVENT_DTYPE`` is
    returned as is (no copy).
    """
    if isinstance(events, np.ndarray) and events.dtype == EVENT_DTYPE:
        check_events(events, who)
        return events
    check_events(events, who, exact=False)
    for name in EVENT_FIELDS:
        _fits(events[name], EVENT_DTYPE[name], name, who)
    p = events["p"]
    if p.size and not np.all((p == 0) | (p == 1)):
        raise ValueError(f"{who}: field 'p' must be 0 or 1")
    out = np.empty(events.shape, dtype=EVENT_DTYPE)
    for name in EVENT_FIELDS:
        out[name] = events[name]
    return out


def is_sorted(events: np.ndarray) -> bool:
    """True when ``events['t']`` is non-decreasing (O(N), no copy of the stream)."""
    t = events["t"]
    return bool(t.size < 2 or np.all(t[1:] >= t[:-1]))
