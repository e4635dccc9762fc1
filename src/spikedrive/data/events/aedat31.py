"""AEDAT 3.0 / 3.1 (cAER) files, the format of DVS128 Gesture.

After the text header (ending ``#!END-HEADER\\r\\n``) the file is a sequence of packets, each a
28-byte little-endian header followed by ``eventCapacity * eventSize`` bytes::

    int16 eventType     (1 = polarity; others skipped)    int16 eventSource
    int32 eventSize     (8 for polarity)                   int32 eventTSOffset (4 for polarity)
    int32 eventTSOverflow                                  int32 eventCapacity
    int32 eventNumber   (valid + invalid events)           int32 eventValid

A polarity event is ``uint32 data, int32 timestamp``: data bit 0 valid mark, bit 1 polarity
(1 = ON), bits 2-16 y, bits 17-31 x; the full timestamp is ``eventTSOverflow << 31 | ts`` us.
Events whose valid bit is 0 were invalidated by a filter and are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

from ._records import DEFAULT_CHUNK, PathLike, as_path
from ._validate import _check_ranges
from .aedat_header import AedatHeader, read_aedat_header
from .dtype import EVENT_DTYPE, as_events, empty_events
from .errors import CorruptFileError
from .signature import wrong_format

__all__ = [
    "PACKET_HEADER",
    "POLARITY_EVENT_TYPE",
    "read_aedat31",
    "iter_aedat31",
    "write_aedat31",
]

PACKET_HEADER = np.dtype(
    [("type", "<i2"), ("source", "<i2"), ("size", "<i4"), ("ts_offset", "<i4"),
     ("ts_overflow", "<i4"), ("capacity", "<i4"), ("number", "<i4"), ("valid", "<i4")]
)
POLARITY_EVENT_TYPE = 1
_POLARITY = np.dtype([("data", "<u4"), ("ts", "<i4")])


def _packets(path: PathLike, header: AedatHeader) -> Iterator[tuple[int, np.void, np.ndarray | None]]:
    """Yield ``(offset, packet_header, polarity_records_or_None)`` for every packet.

    Each header is validated and its payload is checked to fit in the file before anything
    is yielded for it.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        pos = header.data_offset
        while pos < size:
            f.seek(pos)
            raw = f.read(PACKET_HEADER.itemsize)
            if len(raw) < PACKET_HEADER.itemsize:
                raise CorruptFileError(
                    path, pos, f"truncated packet header ({len(raw)} of 28 bytes present)"
                )
            h = np.frombuffer(raw, dtype=PACKET_HEADER)[0]
            ev_size, cap, num, valid = int(h["size"]), int(h["capacity"]), int(h["number"]), int(h["valid"])
            if ev_size <= 0 or cap < 0 or not 0 <= num <= cap or not 0 <= valid <= num \
                    or not 0 <= int(h["ts_offset"]) <= ev_size - 4 or h["ts_overflow"] < 0:
                raise CorruptFileError(
                    path, pos, f"invalid packet header (type {h['type']}, size {ev_size}, "
                    f"capacity {cap}, number {num}, valid {valid}, tsOffset {h['ts_offset']})"
                )
            payload = cap * ev_size
            if pos + PACKET_HEADER.itemsize + payload > size:
                have = size - pos - PACKET_HEADER.itemsize
                raise CorruptFileError(
                    path, pos, f"truncated packet ({have} of {payload} payload bytes present)"
                )
            records = None
            if h["type"] == POLARITY_EVENT_TYPE:
                if ev_size != 8 or h["ts_offset"] != 4:
                    raise CorruptFileError(
                        path, pos, f"polarity packet with eventSize {ev_size}, "
                        f"tsOffset {h['ts_offset']} (expected 8 and 4)"
                    )
                records = np.fromfile(f, dtype=_POLARITY, count=num)
            yield pos, h, records
            pos += PACKET_HEADER.itemsize + payload


def _decode(path: PathLike, pos: int, h: np.void, rec: np.ndarray) -> np.ndarray:
    ts = rec["ts"]
    if ts.size and ts.min() < 0:
        i = int(np.argmin(ts))
        raise CorruptFileError(path, pos + PACKET_HEADER.itemsize + 8 * i + 4,
                               f"negative timestamp {ts[i]}")
    data = rec["data"]
    keep = (data & 1) == 1
    if not np.all(keep):
        data, ts = data[keep], ts[keep]
    out = np.empty(data.shape[0], dtype=EVENT_DTYPE)
    out["t"] = (np.int64(h["ts_overflow"]) << 31) | ts.astype(np.int64)
    out["x"] = data >> 17
    out["y"] = (data >> 2) & 0x7FFF
    out["p"] = (data >> 1) & 1
    return out


def iter_aedat31(path: PathLike, chunk_events: int = DEFAULT_CHUNK,
                 header: AedatHeader | None = None) -> Iterator[np.ndarray]:
    """Stream the polarity events of an AEDAT 3.x file, about ``chunk_events`` at a time.

    Packets are never split, so a chunk may exceed ``chunk_events`` by one packet.
    """
    if chunk_events <= 0:
        raise ValueError(f"chunk_events must be positive, got {chunk_events}")
    path = as_path(path)
    if header is None:
        header = read_aedat_header(path, reader="iter_aedat31", expected="aedat3")
    if header.major != 3:
        raise wrong_format(path, "iter_aedat31", "aedat3", f"aedat{header.major}")
    parts: list[np.ndarray] = []
    held = 0
    for pos, h, rec in _packets(path, header):
        if rec is None:
            continue
        parts.append(_decode(path, pos, h, rec))
        held += parts[-1].shape[0]
        if held >= chunk_events:
            yield np.concatenate(parts)
            parts, held = [], 0
    if parts:
        yield np.concatenate(parts)


def read_aedat31(path: PathLike, header: AedatHeader | None = None) -> np.ndarray:
    """Read the polarity events of an AEDAT 3.0/3.1 file (e.g. DVS128 Gesture ``user*.aedat``).

    Returns:
        Events ``[N]`` of ``EVENT_DTYPE`` in file order: t in us (``overflow << 31 | ts``),
        x/y as stored (origin top left), ``p = 1`` for ON; invalidated events skipped.

    Raises:
        WrongFormatError (a CorruptFileError): not an AEDAT 3.x file (names what it is).
        CorruptFileError (a ValueError): bad header, a packet cut short, or an invalid packet
            header; the message names the file and the packet's byte offset.
    """
    if header is None:
        header = read_aedat_header(path, reader="read_aedat31", expected="aedat3")
    if header.major != 3:
        raise wrong_format(path, "read_aedat31", "aedat3", f"aedat{header.major}")
    parts = list(iter_aedat31(path, chunk_events=1 << 62, header=header))
    return parts[0] if len(parts) == 1 else (np.concatenate(parts) if parts else empty_events())


def write_aedat31(path: PathLike, events: np.ndarray, packet_events: int = 4096,
                  source: str = "DVS128") -> None:
    """Write events ``[N]`` as an AEDAT 3.1 file of polarity packets (all events valid).

    Args:
        path: destination (overwritten).
        events: events with ``0 <= x, y < 32768`` and ``t >= 0`` us.
        packet_events: events per packet (packets also break where ``t >> 31`` changes, since
            one packet holds one timestamp-overflow count).
        source: the camera named on the "#Source 1:" header line.
    """
    if packet_events <= 0:
        raise ValueError(f"write_aedat31: packet_events={packet_events}, expected > 0")
    ev = as_events(events, "events")
    _check_ranges(ev, {"x": (0, 0x7FFF), "y": (0, 0x7FFF), "t": (0, ((2**31 - 1) << 31) | 0x7FFFFFFF)},
                  "write_aedat31")
    overflow = ev["t"] >> 31
    rec = np.empty(ev.shape[0], dtype=_POLARITY)
    rec["data"] = (
        (ev["x"].astype(np.uint32) << 17) | (ev["y"].astype(np.uint32) << 2)
        | (ev["p"].astype(np.uint32) << 1) | 1
    )
    rec["ts"] = ev["t"] & 0x7FFFFFFF
    # packet boundaries: every packet_events events and wherever the overflow count changes
    cuts = set(range(0, ev.shape[0], packet_events))
    cuts.update((np.flatnonzero(np.diff(overflow)) + 1).tolist())
    bounds = sorted(cuts) + [ev.shape[0]]
    text = (
        "#!AER-DAT3.1\r\n#Format: RAW\r\n"
        f"#Source 1: {source}\r\n#!END-HEADER\r\n"
    ).encode("ascii")
    with open(path, "wb") as f:
        f.write(text)
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            n = hi - lo
            h = np.zeros(1, dtype=PACKET_HEADER)
            h["type"], h["source"], h["size"], h["ts_offset"] = POLARITY_EVENT_TYPE, 1, 8, 4
            h["ts_overflow"] = overflow[lo]
            h["capacity"] = h["number"] = h["valid"] = n
            f.write(h.tobytes())
            f.write(rec[lo:hi].tobytes())
