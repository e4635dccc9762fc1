"""Data: event-camera formats, representations, the DVS simulator, datasets and generators.

:class:`TimeMajorDataset` wraps any dataset of ``(sequence [T, ...], label)`` samples so the
engine's loaders batch it time-major, ``[T, B, ...]``.
"""

from .sequence import TimeMajorDataset, time_major_collate

__all__ = ["TimeMajorDataset", "time_major_collate"]
