"""Prophesee DAT (EVT 2.0 "Event2D" / "EventCD") and Metavision NPY event files.

DAT is the container of Gen1 (``*_td.dat``), N-CARS and Prophesee's older recordings::

    "% key value\\n" text lines          (e.g. "% Version 2", "% Width 304", "% Height 240")
    1 byte event type, 1 byte event size (0x00 Event2D or 0x0C EventCD; size 8)
    N x (uint32 t [us], uint32 data) little-endian, data = x | y << 14 | p << 28

x and y take 14 bits each and p the top 4 bits (0 or 1 for these event types). Files with no
text header start directly with the records (Prophesee's loader assumes type 0, size 8).
Timestamps are unsigned 32-bit, so a DAT file spans at most 2**32 us (71.6 min).
The sensor size is in "% Width" / "% Height" lines or, in newer Metavision files, one
"% geometry WxH" line; N-CARS samples carry neither (:func:`prophesee_dat_sensor_size` is None).

A file with another format's signature (AEDAT, NPY, HDF5), or a headerless one that reads as
N-MNIST, is refused with a :class:`~.errors.WrongFormatError` naming it.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ._records import DECODE_CHUNK, DEFAULT_CHUNK, PathLike, as_path, count_records, iter_record_chunks
from ._validate import _check_ranges, _int_arg
from ._window import lazy_window_bounds
from .dtype import EVENT_DTYPE, as_events
from .errors import CorruptFileError
from .signature import looks_like_nmnist, require_format, wrong_format

__all__ = [
    "GEN1_SENSOR_SIZE",
    "EVENT2D_TYPE",
    "EVENTCD_TYPE",
    "DatHeader",
    "read_prophesee_dat_header",
    "read_prophesee_dat",
    "iter_prophesee_dat",
    "read_prophesee_dat_window",
    "write_prophesee_dat",
    "encode_prophesee_dat",
    "prophesee_dat_sensor_size",
]

#: Gen1 ATIS sensor (width, height); N-CARS samples are 120 x 100 crops of it.
GEN1_SENSOR_SIZE = (304, 240)

EVENT2D_TYPE = 0x00
EVENTCD_TYPE = 0x0C
_DAT_RECORD = np.dtype([("t", "<u4"), ("d", "<u4")])
_COORD_MASK = (1 << 14) - 1
_MAX_HEADER_BYTES = 1 << 20  # a header larger than this is not a header


@dataclass(frozen=True)
class DatHeader:
    """What the DAT text header says and where the records start.

    Attributes:
        data_offset: byte offset of the first record.
        event_type: 0 (Event2D) or 12 (EventCD).
        event_size: bytes per record (8).
        width, height: sensor size from "% Width" / "% Height" lines, or None.
        lines: the header lines without the leading "% ".
    """

    data_offset: int
    event_type: int
    event_size: int
    width: int | None
    height: int | None
    lines: tuple[str, ...]


def _geometry(text: str) -> tuple[int, int] | None:
    """``(W, H)`` from a "geometry 1280x720" header line, else None."""
    words = text.split()
    if len(words) == 2 and words[0].lower() == "geometry":
        w, sep, h = words[1].partition("x")
        if sep and w.isdigit() and h.isdigit():
            return int(w), int(h)
    return None


def read_prophesee_dat_header(path: PathLike, *, reader: str = "read_prophesee_dat_header") -> DatHeader:
    """Parse the text header and the type/size bytes of a DAT file (reads only the header).

    ``reader`` names the public function in a :class:`~.errors.WrongFormatError` for a file
    of another format.
    """
    path = as_path(path)
    if require_format(path, reader, "prophesee_dat", ("prophesee_dat", None)) is None \
            and looks_like_nmnist(path):
        # headerless DAT is legal, but N-MNIST bytes would decode as garbage events
        raise wrong_format(path, reader, "prophesee_dat", None)
    lines: list[str] = []
    width = height = None
    with open(path, "rb") as f:
        pos = 0
        while True:
            line = f.readline(_MAX_HEADER_BYTES)
            if not line.startswith(b"% "):
                break
            if not line.endswith(b"\n"):
                raise CorruptFileError(path, pos + len(line), "unterminated header line")
            pos += len(line)
            if pos > _MAX_HEADER_BYTES:
                raise CorruptFileError(path, pos, "header longer than 1 MiB")
            text = line[2:].decode("latin-1").rstrip("\r\n")
            lines.append(text)
            words = text.split()
            if len(words) >= 2 and words[0] in ("Width", "Height"):
                try:
                    value = int(words[1])
                except ValueError:
                    raise CorruptFileError(path, pos - len(line), f"bad header line {text!r}") from None
                if words[0] == "Width":
                    width = value
                else:
                    height = value
            elif width is None and height is None and _geometry(text) is not None:
                width, height = _geometry(text)
        if not lines:  # headerless file: records start at byte 0
            return DatHeader(0, EVENT2D_TYPE, 8, None, None, ())
        f.seek(pos)
        ts = f.read(2)
    if len(ts) < 2:
        raise CorruptFileError(path, pos, f"truncated event type/size bytes ({len(ts)} of 2 present)")
    ev_type, ev_size = ts[0], ts[1]
    if ev_type not in (EVENT2D_TYPE, EVENTCD_TYPE) or ev_size != 8:
        raise CorruptFileError(
            path, pos, f"unsupported event type {ev_type} / size {ev_size} "
            "(expected type 0 Event2D or 12 EventCD, size 8)"
        )
    return DatHeader(pos + 2, ev_type, ev_size, width, height, tuple(lines))


def _decode(rec: np.ndarray, header: DatHeader, path: PathLike, first_index: int,
            out: np.ndarray) -> None:
    """Decode raw ``(t, data)`` records into ``out`` (same length), rejecting impossible values."""
    d = rec["d"]
    x = d & _COORD_MASK
    y = (d >> 14) & _COORD_MASK
    # polarity > 1 <=> d >= 2 << 28; one compare per event instead of shift + compare
    bad = d >= np.uint32(2 << 28)
    if header.width is not None:
        bad |= x >= header.width
    if header.height is not None:
        bad |= y >= header.height
    if np.any(bad):
        i = int(np.argmax(bad))
        at = header.data_offset + (first_index + i) * header.event_size
        raise CorruptFileError(
            path, at, f"invalid event (x={x[i]}, y={y[i]}, p={d[i] >> 28}; header size "
            f"{header.width}x{header.height}, p must be 0 or 1)"
        )
    out["t"] = rec["t"]
    out["x"] = x
    out["y"] = y
    out["p"] = d >> 28


def _read_range(path: PathLike, header: DatHeader, start: int, count: int) -> np.ndarray:
    out = np.empty(count, dtype=EVENT_DTYPE)
    chunks = iter_record_chunks(path, header.data_offset, _DAT_RECORD, start + count,
                                DECODE_CHUNK, start)
    for first, rec in chunks:
        _decode(rec, header, path, first, out[first - start: first - start + rec.shape[0]])
    return out


def read_prophesee_dat(
    path: PathLike, start: int = 0, count: int | None = None
) -> np.ndarray:
    """Read a Prophesee DAT file (Gen1 ``*_td.dat``, N-CARS).

    Args:
        path: the ``.dat`` file.
        start: index of the first event to read, ``0 <= start <= N`` (random access without
            reading the rest).
        count: number of events to read, ``0 <= count <= N - start``; None reads to the end.

    Returns:
        Events ``[N]`` of ``EVENT_DTYPE``, t in us as stored.

    Raises:
        CorruptFileError (a ValueError): bad header, a partial trailing record, or an event
            with polarity > 1 or outside the header's Width/Height; names file and byte offset.
        ValueError: ``start`` or ``count`` outside the file's events (never clamped silently).
    """
    path = as_path(path)
    header = read_prophesee_dat_header(path, reader="read_prophesee_dat")
    n = count_records(path, header.data_offset, header.event_size, "event")
    start = _int_arg("start", start)
    if not 0 <= start <= n:
        raise ValueError(f"read_prophesee_dat: start={start}, expected 0..{n} ({path} holds {n} events)")
    if count is None:
        count = n - start
    count = _int_arg("count", count)
    if not 0 <= count <= n - start:
        raise ValueError(
            f"read_prophesee_dat: count={count}, expected 0..{n - start} from start={start} "
            f"({path} holds {n} events)"
        )
    return _read_range(path, header, start, count)


def iter_prophesee_dat(path: PathLike, chunk_events: int = DEFAULT_CHUNK) -> Iterator[np.ndarray]:
    """Stream a DAT file in ``EVENT_DTYPE`` chunks of at most ``chunk_events`` events.

    The size is checked before the first chunk; value errors surface at the chunk holding them.
    """
    if chunk_events <= 0:
        raise ValueError(f"chunk_events must be positive, got {chunk_events}")
    path = as_path(path)
    header = read_prophesee_dat_header(path, reader="iter_prophesee_dat")
    n = count_records(path, header.data_offset, header.event_size, "event")
    for start in range(0, n, chunk_events):
        yield _read_range(path, header, start, min(chunk_events, n - start))


def read_prophesee_dat_window(path: PathLike, t_start: int, t_end: int) -> np.ndarray:
    """Events with ``t_start <= t < t_end`` (us) from a time-sorted DAT file.

    Bisects a memory map of the records, reading about ``2 * log2(N)`` timestamps (not the
    whole column), so only the window is copied and decoded: the way to cut 50 ms slices out of a
    60 s Gen1 recording, once per sample.
    """
    path = as_path(path)
    header = read_prophesee_dat_header(path, reader="read_prophesee_dat_window")
    n = count_records(path, header.data_offset, header.event_size, "event")
    if n == 0:
        return np.empty(0, dtype=EVENT_DTYPE)
    mm = np.memmap(path, dtype=_DAT_RECORD, mode="r", offset=header.data_offset, shape=(n,))
    t = mm["t"]  # a strided view of the map: indexing one element reads one timestamp
    lo, hi = lazy_window_bounds(lambda i: int(t[i]), n, int(t_start), int(t_end))
    rec = np.array(mm[lo:hi])  # a copy: the map closes when the function returns
    out = np.empty(rec.shape[0], dtype=EVENT_DTYPE)
    _decode(rec, header, path, lo, out)
    return out


def prophesee_dat_sensor_size(path: PathLike) -> tuple[int, int] | None:
    """``(W, H)`` from a DAT file's "% Width"/"% Height" (or "% geometry WxH") header lines.

    None when the header does not give both (N-CARS samples, headerless files); reads only the
    header.
    """
    header = read_prophesee_dat_header(path, reader="prophesee_dat_sensor_size")
    if header.width is None or header.height is None:
        return None
    return header.width, header.height


def encode_prophesee_dat(
    events: np.ndarray, width: int = GEN1_SENSOR_SIZE[0], height: int = GEN1_SENSOR_SIZE[1],
    date: str | None = None, event_type: int = EVENT2D_TYPE,
) -> bytes:
    """Encode events into the bytes of a DAT file; see :func:`write_prophesee_dat`."""
    ev = as_events(events, "events")
    for name, v in (("width", width), ("height", height)):
        if not 0 < v <= _COORD_MASK + 1:
            raise ValueError(f"write_prophesee_dat: {name}={v}, expected 1..{_COORD_MASK + 1}")
    if event_type not in (EVENT2D_TYPE, EVENTCD_TYPE):
        raise ValueError(f"write_prophesee_dat: event_type={event_type}, expected 0 or 12")
    _check_ranges(ev, {"x": (0, width - 1), "y": (0, height - 1), "t": (0, 2**32 - 1)},
                  "write_prophesee_dat")
    if date is None:
        date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    kind = "Event2D" if event_type == EVENT2D_TYPE else "EventCD"
    text = (
        f"% Data file containing {kind} events.\n% Version 2\n% Date {date}\n"
        f"% Height {height}\n% Width {width}\n"
    ).encode("ascii")
    rec = np.empty(ev.shape[0], dtype=_DAT_RECORD)
    rec["t"] = ev["t"]
    rec["d"] = (
        ev["x"].astype(np.uint32)
        | (ev["y"].astype(np.uint32) << 14)
        | (ev["p"].astype(np.uint32) << 28)
    )
    return text + bytes([event_type, 8]) + rec.tobytes()


def write_prophesee_dat(
    path: PathLike, events: np.ndarray, width: int = GEN1_SENSOR_SIZE[0],
    height: int = GEN1_SENSOR_SIZE[1], date: str | None = None, event_type: int = EVENT2D_TYPE,
) -> None:
    """Write events ``[N]`` as a Prophesee DAT file with a "% Width/% Height" header.

    Args:
        path: destination (overwritten).
        events: events with ``0 <= x < width``, ``0 <= y < height``, ``0 <= t < 2**32`` us.
        width, height: sensor size written to the header (Gen1: 304 x 240).
        date: "YYYY-MM-DD HH:MM:SS" for the header; None writes the current UTC time.
        event_type: 0 (Event2D, as Gen1/N-CARS) or 12 (EventCD).
    """
    data = encode_prophesee_dat(events, width, height, date, event_type)
    with open(path, "wb") as f:
        f.write(data)
