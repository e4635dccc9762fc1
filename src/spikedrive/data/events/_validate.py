"""Argument checks shared across the events package (private).

Every check raises ``ValueError`` naming the argument, its value and what was expected. The
event-array check itself is :func:`spikedrive.data.events.dtype.check_events` (one validator);
the helpers here add the sensor size, coordinate bounds, scalar arguments and the value ranges
that the writers' formats can hold.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence

import numpy as np

from .dtype import check_events


def sensor_wh(sensor_size: Sequence[int]) -> tuple[int, int]:
    """``(width, height)`` from ``(W, H)`` or ``(W, H, 2)``; raises ``ValueError`` otherwise."""
    try:
        n = len(sensor_size)
    except TypeError:
        n = -1
    if n not in (2, 3):
        raise ValueError(
            f"sensor_size: expected (width, height) or (width, height, 2), got {sensor_size!r}"
        )
    try:
        w, h = int(sensor_size[0]), int(sensor_size[1])
    except (TypeError, ValueError):
        raise ValueError(f"sensor_size: width and height must be positive integers, got {sensor_size!r}") from None
    if w <= 0 or h <= 0 or w != sensor_size[0] or h != sensor_size[1]:
        raise ValueError(f"sensor_size: width and height must be positive integers, got {sensor_size!r}")
    if n == 3 and int(sensor_size[2]) != 2:
        raise ValueError(f"sensor_size: the third entry (polarities) must be 2, got {sensor_size!r}")
    return w, h


def _check_bounds(events: np.ndarray, w: int, h: int) -> None:
    if len(events) == 0:
        return
    x, y = events["x"], events["y"]
    if x.min() < 0 or x.max() >= w or y.min() < 0 or y.max() >= h:
        raise ValueError(
            f"events: coordinates outside sensor_size (width={w}, height={h}): "
            f"x in [{x.min()}, {x.max()}], y in [{y.min()}, {y.max()}]"
        )


def _int_arg(name: str, value: object) -> int:
    """``value`` as an int; ValueError naming ``name`` for None, bools, strings, non-integers."""
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) \
            and np.isfinite(value) and int(value) == value:
        return int(value)
    raise ValueError(f"{name}: expected an integer, got {value!r}")


def _positive_int(name: str, value: object) -> int:
    try:
        v = _int_arg(name, value)
    except ValueError:
        v = 0
    if v <= 0:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return v


def _positive_real(name: str, value: object) -> float:
    """``value`` as a finite float > 0; ValueError naming ``name`` otherwise (strings, None, NaN)."""
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) \
            and np.isfinite(value) and value > 0:
        return float(value)
    raise ValueError(f"{name}: expected a positive number, got {value!r}")


def _prepare(events: np.ndarray, sensor_size: Sequence[int], need_sorted: bool) -> tuple[int, int]:
    w, h = sensor_wh(sensor_size)
    check_events(events, "events", exact=False, need_sorted=need_sorted)
    _check_bounds(events, w, h)
    return w, h


def _on(events: np.ndarray) -> np.ndarray:
    """Polarity channel index: 1 for ON, 0 for OFF (also accepts -1/+1 polarities)."""
    return (events["p"] > 0).astype(np.int64)


def _check_ranges(
    events: np.ndarray,
    ranges: Mapping[str, tuple[int, int]],
    who: str,
    notes: Mapping[str, str] | None = None,
) -> None:
    """Raise ValueError unless every ``events[field]`` lies in its inclusive ``(lo, hi)``.

    The writers' one range check: the message names ``who``, the field, the values' span and
    the range the format holds, plus ``notes[field]`` when given. Empty arrays pass.
    """
    if events.size == 0:
        return
    for name, (lo, hi) in ranges.items():
        v = events[name]
        vmin, vmax = int(v.min()), int(v.max())
        if vmin < lo or vmax > hi:
            note = (notes or {}).get(name, "")
            raise ValueError(
                f"{who}: events[{name!r}] spans [{vmin}, {vmax}], the format holds "
                f"[{lo}, {hi}]{note}"
            )
