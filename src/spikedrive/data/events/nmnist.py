"""N-MNIST / N-Caltech101 binary files (Orchard et al. 2015, ATIS saccades).

Each event is one 40-bit big-endian record of five bytes::

    byte 0: x (8 bits)       byte 1: y (8 bits)
    byte 2: bit 7 polarity (1 = ON), bits 6..0 timestamp bits 22..16
    byte 3: timestamp bits 15..8   byte 4: timestamp bits 7..0       (microseconds)

A record with ``y == 240`` is not an event but a timestamp-overflow marker: the reference
decoder (Orchard's ``Read_Ndataset.m``, copied by Tonic) adds ``2**13`` us to every later
timestamp per marker; this reader does the same. N-MNIST / N-Caltech101 recordings last about
0.3 s (three saccades), far below ``2**23`` us = 8.4 s, so markers are not expected there, and
:func:`write_nmnist` never writes one: it rejects timestamps that do not fit 23 bits.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ._records import DECODE_CHUNK, DEFAULT_CHUNK, PathLike, as_path, count_records, iter_record_chunks
from ._validate import _check_ranges
from .dtype import EVENT_DTYPE, as_events

__all__ = [
    "NMNIST_SENSOR_SIZE",
    "read_nmnist",
    "iter_nmnist",
    "write_nmnist",
    "encode_nmnist",
]

#: N-MNIST frames are 34 x 34 pixels (width, height); N-Caltech101 up to about 240 x 180.
NMNIST_SENSOR_SIZE = (34, 34)

RECORD_BYTES = 5
OVERFLOW_Y = 240
OVERFLOW_STEP_US = 1 << 13
MAX_T_US = (1 << 23) - 1

_RAW = np.dtype((np.uint8, RECORD_BYTES))


def _decode(flat: np.ndarray, overflows_before: int, out: np.ndarray) -> tuple[int, int]:
    """Decode ``5 * N`` raw bytes into ``out[:k]``; return ``k`` and the overflow markers seen."""
    n = flat.shape[0] // RECORD_BYTES
    if n == 0:
        return 0, 0
    # bytes 1..4 of every record read as one big-endian uint32: y | p | 23-bit t, in one pass
    word = np.ndarray((n,), dtype=">u4", buffer=flat, offset=1, strides=(RECORD_BYTES,))
    word = word.astype(np.uint32)
    y = word >> 24
    marker = y == OVERFLOW_Y
    n_markers = int(np.count_nonzero(marker))
    x = flat[0::RECORD_BYTES]
    if n_markers or overflows_before:
        # a marker at index i shifts itself and all later records; markers are dropped below
        t = (word & MAX_T_US).astype(np.int64)
        t += OVERFLOW_STEP_US * (overflows_before + np.cumsum(marker, dtype=np.int64))
        keep = ~marker
        word, x, y, t = word[keep], x[keep], y[keep], t[keep]
    else:
        t = word & MAX_T_US
    k = word.shape[0]
    dst = out[:k]
    dst["t"] = t
    dst["x"] = x
    dst["y"] = y
    dst["p"] = (word >> 23) & 1
    return k, n_markers


def _read_range(path: PathLike, n: int, chunk: int) -> Iterator[np.ndarray]:
    """Decode all ``n`` records, yielding one array per ``chunk`` records (markers dropped)."""
    overflows = 0
    for start in range(0, n, chunk):
        count = min(chunk, n - start)
        out = np.empty(count, dtype=EVENT_DTYPE)
        k = 0
        steps = iter_record_chunks(path, 0, _RAW, start + count, DECODE_CHUNK, start)
        for _, raw in steps:
            written, seen = _decode(raw.reshape(-1), overflows, out[k:])
            k += written
            overflows += seen
        yield out if k == count else out[:k].copy()


def read_nmnist(path: PathLike) -> np.ndarray:
    """Read an N-MNIST / N-Caltech101 ``.bin`` file.

    Args:
        path: the ``.bin`` file.

    Returns:
        Events ``[N]`` of ``EVENT_DTYPE`` (t in us from the start of the recording), in file
        order (the files are time-sorted).

    Raises:
        CorruptFileError (a ValueError): the size is not a multiple of 5 bytes; the message
        names the file and the byte offset of the partial record.
    """
    path = as_path(path)
    n = count_records(path, 0, RECORD_BYTES)
    return next(_read_range(path, n, max(n, 1)), np.empty(0, dtype=EVENT_DTYPE))


def iter_nmnist(path: PathLike, chunk_events: int = DEFAULT_CHUNK) -> Iterator[np.ndarray]:
    """Stream an N-MNIST-format file in chunks of at most ``chunk_events`` records.

    Yields ``EVENT_DTYPE`` arrays whose concatenation equals :func:`read_nmnist`. The size is
    checked before the first chunk, so a truncated file fails before any data is yielded.
    """
    if chunk_events <= 0:
        raise ValueError(f"chunk_events must be positive, got {chunk_events}")
    path = as_path(path)
    n = count_records(path, 0, RECORD_BYTES)
    yield from _read_range(path, n, chunk_events)


def encode_nmnist(events: np.ndarray) -> bytes:
    """Encode events ``[N]`` into N-MNIST records (``5 * N`` bytes); see :func:`write_nmnist`."""
    ev = as_events(events, "events")
    _check_ranges(ev, {"x": (0, 255), "y": (0, 255), "t": (0, MAX_T_US)}, "write_nmnist",
                  notes={"t": " (23-bit timestamps; longer recordings need another format)"})
    if np.any(ev["y"] == OVERFLOW_Y):
        raise ValueError(
            f"write_nmnist: events['y'] == {OVERFLOW_Y} would be read back as a "
            "timestamp-overflow marker"
        )
    t = ev["t"].astype(np.uint32)
    raw = np.empty((ev.shape[0], RECORD_BYTES), dtype=np.uint8)
    raw[:, 0] = ev["x"]
    raw[:, 1] = ev["y"]
    raw[:, 2] = (ev["p"].astype(np.uint32) << 7) | (t >> 16)
    raw[:, 3] = (t >> 8) & 0xFF
    raw[:, 4] = t & 0xFF
    return raw.tobytes()


def write_nmnist(path: PathLike, events: np.ndarray) -> None:
    """Write events ``[N]`` as an N-MNIST ``.bin`` file.

    Args:
        path: destination file (overwritten).
        events: ``EVENT_DTYPE`` (or Tonic-style) events with ``0 <= x, y <= 255``,
            ``y != 240`` and ``0 <= t < 2**23`` us.

    Raises:
        ValueError: a value does not fit the 40-bit record (message names the field and range).
    """
    data = encode_nmnist(events)
    with open(path, "wb") as f:
        f.write(data)
