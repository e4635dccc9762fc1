"""AEDAT 4.0 (iniVation DV) files through the optional ``aedat`` package.

Layout: ``#!AER-DAT4.0\\r\\n``, an int32 length and a flatbuffer IOHeader (compression,
``dataTablePosition``, XML stream description), then packets of ``int32 stream_id,
int32 size, size bytes`` (LZ4/ZSTD-compressed flatbuffers) up to the data table. Decoding
the flatbuffers is left to ``aedat`` (pip name ``aedat``, extra ``spikedrive[aedat4]``); this
module walks the packet framing itself first so that a truncated file is refused with the
byte offset of the cut, which the decoder does not report.

No writer: producing valid DV flatbuffers needs DV's schema compiler, and every dataset we
read in this format ships as files to read, not to write. Convert to AEDAT 3.1 with
:func:`~.aedat31.write_aedat31` when a file must be written.
"""

from __future__ import annotations

import os
import struct
import xml.etree.ElementTree as ET

import numpy as np

from ._records import PathLike, as_path
from .aedat_header import read_aedat_header
from .dtype import EVENT_DTYPE, empty_events
from .errors import CorruptFileError
from .signature import wrong_format

__all__ = [
    "read_aedat4",
    "packet_offsets",
    "aedat4_sensor_size",
]

_INSTALL_HINT = "reading AEDAT4 files needs the 'aedat' package: pip install 'spikedrive[aedat4]'"


def _import_aedat():
    try:
        import aedat
    except ImportError as err:  # the optional extra is missing
        raise ImportError(_INSTALL_HINT) from err
    return aedat


def _field_offset(hdr: bytes, index: int) -> tuple[int, int]:
    """``(table_start, field_offset)`` of IOHeader field ``index`` (offset 0: absent)."""
    root = struct.unpack_from("<I", hdr, 0)[0]
    vtable = root - struct.unpack_from("<i", hdr, root)[0]
    vt_size = struct.unpack_from("<H", hdr, vtable)[0]
    if vt_size < 4 + 2 * (index + 1):  # the vtable has no slot for this field
        return root, 0
    return root, struct.unpack_from("<H", hdr, vtable + 4 + 2 * index)[0]


def _data_table_position(path: PathLike, hdr: bytes, at: int) -> int:
    """``dataTablePosition`` (field 1, int64) of the IOHeader flatbuffer, or -1 if absent."""
    try:
        root, field = _field_offset(hdr, 1)
        return -1 if field == 0 else struct.unpack_from("<q", hdr, root + field)[0]
    except struct.error:
        raise CorruptFileError(path, at, "malformed IOHeader flatbuffer") from None


def _info_node(path: PathLike, hdr: bytes, at: int) -> str:
    """``infoNode`` (field 2, string): the XML description of the streams, or ""."""
    try:
        root, field = _field_offset(hdr, 2)
        if field == 0:
            return ""
        start = root + field + struct.unpack_from("<I", hdr, root + field)[0]
        (length,) = struct.unpack_from("<I", hdr, start)
        text = hdr[start + 4: start + 4 + length]
        if len(text) != length:
            raise struct.error("string runs past the IOHeader")
        return text.decode("utf-8")
    except (struct.error, UnicodeDecodeError):
        raise CorruptFileError(path, at, "malformed IOHeader flatbuffer (infoNode)") from None


def _io_header(path: PathLike, reader: str) -> tuple[int, bytes, int]:
    """``(offset_of_IOHeader_length, IOHeader bytes, file size)``, checked against the file."""
    path = as_path(path)
    header = read_aedat_header(path, reader=reader, expected="aedat4")
    if header.major != 4:
        raise wrong_format(path, reader, "aedat4", f"aedat{header.major}")
    size = os.path.getsize(path)
    pos = header.data_offset
    with open(path, "rb") as f:
        f.seek(pos)
        raw = f.read(4)
        if len(raw) < 4:
            raise CorruptFileError(path, pos, "file ends before the IOHeader")
        (hdr_len,) = struct.unpack("<i", raw)
        if hdr_len <= 0 or pos + 4 + hdr_len > size:
            raise CorruptFileError(path, pos, f"IOHeader of {hdr_len} bytes does not fit the file")
        return pos, f.read(hdr_len), size


def aedat4_sensor_size(path: PathLike, stream_id: int | None = None) -> tuple[int, int] | None:
    """``(W, H)`` of an event stream from the ``sizeX`` / ``sizeY`` of the file's XML header.

    Args:
        path: the ``.aedat4`` file.
        stream_id: the event stream (as :func:`read_aedat4`); None takes the lowest id.

    Returns:
        The size, or None when the header describes no event stream with a size.
    """
    pos, hdr, _ = _io_header(path, "aedat4_sensor_size")
    xml = _info_node(path, hdr, pos + 4)
    if not xml:
        return None
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        raise CorruptFileError(path, pos + 4, "malformed XML stream description") from None
    sizes: dict[int, tuple[int, int]] = {}
    for node in root.iter("node"):
        attrs = {a.get("key"): a.text for a in node.findall("attr")}
        name = node.get("name", "")
        if attrs.get("typeIdentifier") != "EVTS" or not name.isdigit():
            continue
        info = node.find("node[@name='info']")
        if info is None:
            continue
        dims = {a.get("key"): a.text for a in info.findall("attr")}
        try:
            sizes[int(name)] = (int(dims["sizeX"]), int(dims["sizeY"]))
        except (KeyError, TypeError, ValueError):
            continue
    if not sizes:
        return None
    return sizes[min(sizes)] if stream_id is None else sizes.get(stream_id)


def packet_offsets(path: PathLike, *, reader: str = "packet_offsets") -> list[int]:
    """Byte offsets of every packet of an AEDAT 4.0 file, checking that each one fits.

    Raises CorruptFileError at the offset of a packet cut short by the end of the file, and
    WrongFormatError (naming ``reader``) for a file that is not AEDAT 4.0.
    """
    path = as_path(path)
    pos, hdr, size = _io_header(path, reader)
    table = _data_table_position(path, hdr, pos + 4)
    with open(path, "rb") as f:
        pos += 4 + len(hdr)
        end = size if table < 0 else min(table, size)
        if end < pos:
            raise CorruptFileError(path, pos, f"data table position {table} lies inside the header")
        offsets = []
        while pos < end:
            f.seek(pos)
            raw = f.read(8)
            if len(raw) < 8:
                raise CorruptFileError(path, pos, f"truncated packet header ({len(raw)} of 8 bytes present)")
            _, length = struct.unpack("<ii", raw)
            if length < 0 or pos + 8 + length > end:
                raise CorruptFileError(
                    path, pos, f"truncated packet ({max(end - pos - 8, 0)} of {length} bytes present)"
                )
            offsets.append(pos)
            pos += 8 + length
    if table > size:
        raise CorruptFileError(path, size, f"file ends before its data table (expected at byte {table})")
    return offsets


def read_aedat4(path: PathLike, stream_id: int | None = None) -> np.ndarray:
    """Read the polarity events of an AEDAT 4.0 file.

    Args:
        path: the ``.aedat4`` file.
        stream_id: which event stream (a stereo file has two); None takes the lowest id.

    Returns:
        Events ``[N]`` of ``EVENT_DTYPE``: t in us as recorded (absolute Unix time for DV
        recordings), origin at the top left, ``p = 1`` for ON.

    Raises:
        ImportError: the ``aedat`` package is missing (``pip install 'spikedrive[aedat4]'``).
        CorruptFileError (a ValueError): truncated or undecodable file, with the byte offset
            of the failing packet.
    """
    path = as_path(path)
    offsets = packet_offsets(path, reader="read_aedat4")  # before the import: name a wrong file
    aedat = _import_aedat()
    try:
        decoder = aedat.Decoder(str(path))
    except (RuntimeError, OSError) as err:
        raise CorruptFileError(path, None, f"undecodable AEDAT4 header (aedat: {err})") from None
    decoded = 0
    try:
        streams = {k: v for k, v in decoder.id_to_stream().items() if v.get("type") == "events"}
        if stream_id is None:
            if not streams:
                return empty_events()
            stream_id = min(streams)
        elif stream_id not in streams:
            raise ValueError(f"read_aedat4: stream_id={stream_id}, event streams are {sorted(streams)}")
        parts = []
        for packet in decoder:
            decoded += 1
            if packet.get("stream_id") == stream_id and "events" in packet:
                parts.append(packet["events"])
    except (RuntimeError, OSError) as err:  # what the decoder raises for bad data
        at = offsets[decoded] if decoded < len(offsets) else None
        raise CorruptFileError(path, at, f"undecodable AEDAT4 packet (aedat: {err})") from None
    if not parts:
        return empty_events()
    raw = np.concatenate(parts)
    out = np.empty(raw.shape[0], dtype=EVENT_DTYPE)
    out["t"] = raw["t"]
    out["x"] = raw["x"]
    out["y"] = raw["y"]
    out["p"] = raw["on"]
    return out
