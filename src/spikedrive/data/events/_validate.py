"""Argument checks shared by the event representations and the event-wise operations."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_FIELDS = ("t", "x", "y", "p")


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
    w, h = int(sensor_size[0]), int(sensor_size[1])
    if w <= 0 or h <= 0 or w != sensor_size[0] or h != sensor_size[1]:
        raise ValueError(f"sensor_size: width and height must be positive integers, got {sensor_size!r}")
    if n == 3 and int(sensor_size[2]) != 2:
        raise ValueError(f"sensor_size: the third entry (polarities) must be 2, got {sensor_size!r}")
    return w, h


def _check_events(events: np.ndarray, *, need_sorted: bool = False) -> None:
    names = getattr(getattr(events, "dtype", None), "names", None)
    if not isinstance(events, np.ndarray) or names is None or not set(_FIELDS) <= set(names):
        raise ValueError(
            f"events: expected a structured array with fields {_FIELDS}, "
            f"got {type(events).__name__} with fields {names}"
        )
    if events.ndim != 1:
        raise ValueError(f"events: expected a 1-D array, got shape {events.shape}")
    if need_sorted and len(events) > 1 and np.any(np.diff(events["t"]) < 0):
        raise ValueError("events: timestamps 't' must be sorted in ascending order")


def _check_bounds(events: np.ndarray, w: int, h: int) -> None:
    if len(events) == 0:
        return
    x, y = events["x"], events["y"]
    if x.min() < 0 or x.max() >= w or y.min() < 0 or y.max() >= h:
        raise ValueError(
            f"events: coordinates outside sensor_size (width={w}, height={h}): "
            f"x in [{x.min()}, {x.max()}], y in [{y.min()}, {y.max()}]"
        )


def _positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or int(value) != value or value <= 0:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def _prepare(events: np.ndarray, sensor_size: Sequence[int], need_sorted: bool) -> tuple[int, int]:
    w, h = sensor_wh(sensor_size)
    _check_events(events, need_sorted=need_sorted)
    _check_bounds(events, w, h)
    return w, h


def _on(events: np.ndarray) -> np.ndarray:
    """Polarity channel index: 1 for ON, 0 for OFF (also accepts -1/+1 polarities)."""
    return (events["p"] > 0).astype(np.int64)
