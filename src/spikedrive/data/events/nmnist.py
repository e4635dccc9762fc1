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

The format has no magic number. The readers refuse a file that starts with another format's
signature (:mod:`.signature`), and with ``sensor_size=(34, 34)`` also one whose records fall
outside the sensor (the default, None, allows the whole 8-bit range that N-Caltech101 uses).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ._records import DECODE_CHUNK, DEFAULT_CHUNK, PathLike, as_path, count_records, iter_record_chunks
from ._validate import _check_ranges, sensor_wh
from .dtype import EVENT_DTYPE, as_events
from .errors import WrongFormatError
from .signature import looks_like_nmnist, require_format

__all__ = [
    "NMNIST_SENSOR_SIZE",
    "read_nmnist",
    "iter_nmnist",
    "write_nmnist",
    "encode_nmnist",
    "nmnist_sensor_size",
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


def _check_inside(raw: np.ndarray, first: int, wh: tuple[int, int] | None, path: PathLike,
                  reader: str) -> None:
    """Refuse records ``raw [k, 5]`` outside ``wh`` (overflow markers excepted)."""
    if wh is None:
        return
    x, y = raw[:, 0], raw[:, 1]
    bad = (x >= wh[0]) | ((y >= wh[1]) & (y != OVERFLOW_Y))
    if np.any(bad):
        i = int(np.argmax(bad))
        at = (first + i) * RECORD_BYTES
        raise WrongFormatError(
            path, reader, f"does not look like N-MNIST: record {first + i} at byte {at} has "
            f"x={x[i]}, y={y[i]} outside {wh[0]}x{wh[1]} (sensor_size={wh!r}; pass "
            "sensor_size=None to read any 8-bit coordinates, as N-Caltech101 needs)", at,
        )


def _open(path: PathLike, reader: str) -> tuple[PathLike, int]:
    """Check the signature and the size; return the path and the number of records."""
    path = as_path(path)
    require_format(path, reader, "nmnist", (None,))
    try:
        n = count_records(path, 0, RECORD_BYTES)
    except ValueError as err:
        # a cut N-MNIST file is "truncated"; other bytes are called what they are not
        if _plausible_prefix(path):
            raise
        raise WrongFormatError(
            path, reader, f"does not look like N-MNIST: its size is not a multiple of "
            f"{RECORD_BYTES}-byte records ({err.reason})", err.offset or 0,
        ) from None
    return path, n


def _plausible_prefix(path: PathLike) -> bool:
    """Whether the whole records of a file of odd size fit 34 x 34 (a cut N-MNIST file)."""
    with open(path, "rb") as f:
        head = f.read(RECORD_BYTES * 4096)
    raw = np.frombuffer(head[: len(head) - len(head) % RECORD_BYTES], np.uint8).reshape(-1, 5)
    x, y = raw[:, 0], raw[:, 1]
    return raw.shape[0] > 0 and bool(np.all((x < 34) & ((y < 34) | (y == OVERFLOW_Y))))


def _read_range(path: PathLike, n: int, chunk: int, wh: tuple[int, int] | None = None,
                reader: str = "read_nmnist") -> Iterator[np.ndarray]:
    """Decode all ``n`` records, yielding one array per ``chunk`` records (markers dropped)."""
    overflows = 0
    for start in range(0, n, chunk):
        count = min(chunk, n - start)
        out = np.empty(count, dtype=EVENT_DTYPE)
        k = 0
        steps = iter_record_chunks(path, 0, _RAW, start + count, DECODE_CHUNK, start)
        for first, raw in steps:
            _check_inside(raw, first, wh, path, reader)
            written, seen = _decode(raw.reshape(-1), overflows, out[k:])
            k += written
            overflows += seen
        yield out if k == count else out[:k].copy()


def _wh(sensor_size: tuple[int, int] | None) -> tuple[int, int] | None:
    return None if sensor_size is None else sensor_wh(sensor_size)


def read_nmnist(path: PathLike, sensor_size: tuple[int, int] | None = None) -> np.ndarray:
    """Read an N-MNIST / N-Caltech101 ``.bin`` file.

    Args:
        path: the ``.bin`` file.
        sensor_size: ``(W, H)`` every event must fit, e.g. :data:`NMNIST_SENSOR_SIZE`, to
            refuse a file whose bytes only happen to be whole 5-byte records; None (default)
            accepts the format's whole 8-bit range (N-Caltech101 samples vary in size).

    Returns:
        Events ``[N]`` of ``EVENT_DTYPE`` (t in us from the start of the recording), in file
        order (the files are time-sorted).

    Raises:
        WrongFormatError (a CorruptFileError): the file starts with another format's signature
            (AEDAT, Prophesee DAT, NPY, HDF5), is not whole records and does not look like
            N-MNIST, or has a record outside ``sensor_size``; the message names both formats.
        CorruptFileError (a ValueError): the size is not a multiple of 5 bytes; the message
            names the file and the byte offset of the partial record.
    """
    wh = _wh(sensor_size)
    path, n = _open(path, "read_nmnist")
    return next(_read_range(path, n, max(n, 1), wh, "read_nmnist"), np.empty(0, dtype=EVENT_DTYPE))


def iter_nmnist(path: PathLike, chunk_events: int = DEFAULT_CHUNK,
                sensor_size: tuple[int, int] | None = None) -> Iterator[np.ndarray]:
    """Stream an N-MNIST-format file in chunks of at most ``chunk_events`` records.

    Yields ``EVENT_DTYPE`` arrays whose concatenation equals :func:`read_nmnist`. The
    signature and size are checked before the first chunk, so a truncated file or one of
    another format fails before any data is yielded; a record outside ``sensor_size`` fails
    at the chunk holding it.
    """
    if chunk_events <= 0:
        raise ValueError(f"chunk_events must be positive, got {chunk_events}")
    wh = _wh(sensor_size)
    path, n = _open(path, "iter_nmnist")
    yield from _read_range(path, n, chunk_events, wh, "iter_nmnist")


def nmnist_sensor_size(path: PathLike) -> tuple[int, int] | None:
    """``(34, 34)``, the size the N-MNIST format fixes, if ``path`` reads as N-MNIST.

    The format has no header: the answer is :data:`NMNIST_SENSOR_SIZE` when the file is whole
    5-byte records inside 34 x 34 (the first 4096 are checked), None for the same record format
    on a larger sensor (N-Caltech101, whose size varies per sample). Raises
    :class:`~.errors.WrongFormatError` for a file with another format's signature.
    """
    path = as_path(path)
    require_format(path, "nmnist_sensor_size", "nmnist", (None,))
    return NMNIST_SENSOR_SIZE if looks_like_nmnist(path, NMNIST_SENSOR_SIZE) else None


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
