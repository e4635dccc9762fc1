"""AEDAT 2.0 (jAER) files: DVS128 recordings, CIFAR10-DVS, DAVIS recordings from jAER.

After the ``#`` header, each record is a big-endian (uint32 address, uint32 timestamp in us)
pair. The address layout depends on the sensor, named by the ``# AEChip:`` header line; we
follow jAER's event extractors:

- DVS128: bit 0 raw polarity (0 = ON), bits 1-7 raw x, bits 8-14 raw y; bit 15 (sync) or
  bit 31 set marks a special event, which is skipped.
- DAVIS240 / DAVIS346: bit 11 polarity (1 = ON), bits 12-21 raw x, bits 22-30 raw y; a set
  bit 31 (APS frame / IMU sample) or bit 10 (external trigger) marks a non-DVS record, skipped.

jAER mirrors raw x (``x = width-1-raw_x``) and puts its origin at the bottom left; we also
count rows from the top like AEDAT 3.1/4.0 and Prophesee files, so ``y = height-1-raw_y``.
(Tonic's ``read_dvs_128`` swaps the DVS128 x and y bit fields and mirrors neither.)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ._records import DEFAULT_CHUNK, PathLike, count_records, iter_record_chunks, read_records
from .aedat_header import AedatHeader, read_aedat_header
from ._validate import _check_ranges
from .dtype import EVENT_DTYPE, as_events
from .errors import CorruptFileError
from .signature import wrong_format

__all__ = [
    "CHIPS",
    "ChipLayout",
    "detect_chip",
    "read_aedat2",
    "iter_aedat2",
    "write_aedat2",
]

_RECORD = np.dtype([("a", ">u4"), ("t", ">u4")])


@dataclass(frozen=True)
class ChipLayout:
    """Sensor size and address family of an AEDAT 2.0 chip."""

    width: int
    height: int
    family: str  # "dvs128" or "davis"


CHIPS: dict[str, ChipLayout] = {
    "dvs128": ChipLayout(128, 128, "dvs128"),
    "davis240": ChipLayout(240, 180, "davis"),
    "davis346": ChipLayout(346, 260, "davis"),
}

# substrings of jAER AEChip class names -> our chip keys (checked in this order)
_AECHIP_HINTS = (("davis346", "davis346"), ("davis240", "davis240"),
                 ("dvs128", "dvs128"), ("tmpdiff128", "dvs128"))


def detect_chip(header: AedatHeader) -> str:
    """Chip key from the "# AEChip:" line; files without one are taken to be DVS128.

    Raises ValueError for a chip whose address layout this reader does not know.
    """
    aechip = header.value("AEChip:")
    if aechip is None:
        return "dvs128"
    name = aechip.lower()
    for hint, key in _AECHIP_HINTS:
        if hint in name:
            return key
    raise ValueError(
        f"AEDAT 2.0 chip {aechip!r} has no known address layout; pass chip= one of {sorted(CHIPS)}"
    )


def _decode(rec: np.ndarray, layout: ChipLayout, path: PathLike, data_offset: int,
            first_index: int) -> np.ndarray:
    a = rec["a"]
    if layout.family == "dvs128":
        keep = (a & 0x80008000) == 0
        raw_x = (a >> 1) & 0x7F
        raw_y = (a >> 8) & 0x7F
        p = 1 - (a & 1)
    else:
        keep = ((a >> 31) == 0) & ((a & 0x400) == 0)
        raw_x = (a >> 12) & 0x3FF
        raw_y = (a >> 22) & 0x1FF
        p = (a >> 11) & 1
        bad = keep & ((raw_x >= layout.width) | (raw_y >= layout.height))
        if np.any(bad):
            i = int(np.argmax(bad))
            raise CorruptFileError(
                path, data_offset + (first_index + i) * _RECORD.itemsize,
                f"address outside the {layout.width}x{layout.height} sensor "
                f"(raw x={raw_x[i]}, y={raw_y[i]})",
            )
    all_kept = bool(np.all(keep))
    sel = slice(None) if all_kept else keep
    out = np.empty(rec.shape[0] if all_kept else int(np.count_nonzero(keep)), dtype=EVENT_DTYPE)
    out["t"] = rec["t"][sel]
    out["x"] = (layout.width - 1) - raw_x[sel].astype(np.int32)
    out["y"] = (layout.height - 1) - raw_y[sel].astype(np.int32)
    out["p"] = p[sel]
    return out


def _layout(path: PathLike, chip: str | None, header: AedatHeader) -> ChipLayout:
    key = detect_chip(header) if chip is None else chip.lower()
    if key not in CHIPS:
        raise ValueError(f"read_aedat2: chip={chip!r}, expected one of {sorted(CHIPS)}")
    return CHIPS[key]


def read_aedat2(path: PathLike, chip: str | None = None,
                header: AedatHeader | None = None) -> np.ndarray:
    """Read the polarity events of an AEDAT 2.0 file.

    Args:
        path: the ``.aedat`` file.
        chip: "dvs128", "davis240" or "davis346"; None reads the "# AEChip:" line
            (no such line: DVS128, as in CIFAR10-DVS and early DVS128 recordings).
        header: an already parsed header (saves a second parse).

    Returns:
        Events ``[N]`` of ``EVENT_DTYPE``: t in us as recorded, origin at the top left,
        ``p = 1`` for ON. Special/APS/IMU records are skipped (they are not polarity events).

    Raises:
        WrongFormatError (a CorruptFileError): not an AEDAT 2.0 file (names what it is).
        CorruptFileError (a ValueError): a partial trailing record or an address outside the
            sensor; the message names the file and the byte offset.
    """
    if header is None:
        header = read_aedat_header(path, reader="read_aedat2", expected="aedat2")
    if header.major != 2:
        raise wrong_format(path, "read_aedat2", "aedat2", f"aedat{header.major}")
    layout = _layout(path, chip, header)
    n = count_records(path, header.data_offset, _RECORD.itemsize)
    rec = read_records(path, header.data_offset, _RECORD, 0, n)
    return _decode(rec, layout, path, header.data_offset, 0)


def iter_aedat2(path: PathLike, chip: str | None = None,
                chunk_events: int = DEFAULT_CHUNK) -> Iterator[np.ndarray]:
    """Stream an AEDAT 2.0 file in chunks of at most ``chunk_events`` records."""
    header = read_aedat_header(path, reader="iter_aedat2", expected="aedat2")
    layout = _layout(path, chip, header)
    n = count_records(path, header.data_offset, _RECORD.itemsize)
    for first, rec in iter_record_chunks(path, header.data_offset, _RECORD, n, chunk_events):
        yield _decode(rec, layout, path, header.data_offset, first)


_AECHIP_CLASS = {
    "dvs128": "ch.unizh.ini.jaer.chip.retina.DVS128",
    "davis240": "eu.seebetter.ini.chips.davis.DAVIS240C",
    "davis346": "eu.seebetter.ini.chips.davis.Davis346B",
}


def write_aedat2(path: PathLike, events: np.ndarray, chip: str = "dvs128") -> None:
    """Write events ``[N]`` as an AEDAT 2.0 file that :func:`read_aedat2` and jAER read back.

    Args:
        path: destination (overwritten).
        events: events inside the chip's sensor, ``0 <= t < 2**31`` us (jAER's int32).
        chip: "dvs128" (default), "davis240" or "davis346"; written to "# AEChip:".
    """
    key = chip.lower()
    if key not in CHIPS:
        raise ValueError(f"write_aedat2: chip={chip!r}, expected one of {sorted(CHIPS)}")
    layout = CHIPS[key]
    ev = as_events(events, "events")
    _check_ranges(ev, {"x": (0, layout.width - 1), "y": (0, layout.height - 1), "t": (0, 2**31 - 1)},
                  "write_aedat2")
    raw_x = (layout.width - 1 - ev["x"].astype(np.int64)).astype(np.uint32)
    raw_y = (layout.height - 1 - ev["y"].astype(np.int64)).astype(np.uint32)
    p = ev["p"].astype(np.uint32)
    rec = np.empty(ev.shape[0], dtype=_RECORD)
    if layout.family == "dvs128":
        rec["a"] = (raw_y << 8) | (raw_x << 1) | (1 - p)
    else:
        rec["a"] = (raw_y << 22) | (raw_x << 12) | (p << 11)
    rec["t"] = ev["t"]
    text = (
        "#!AER-DAT2.0\r\n"
        "# This is a raw AE data file created by spikedrive\r\n"
        "# Data format is int32 address, int32 timestamp (8 bytes total), repeated for each event\r\n"
        "# Timestamps tick is 1 us\r\n"
        f"# AEChip: {_AECHIP_CLASS[key]}\r\n"
        "#End Of ASCII Header\r\n"  # so a first record starting with '#' is not read as header
    ).encode("ascii")
    with open(path, "wb") as f:
        f.write(text)
        f.write(rec.tobytes())
