"""AEDAT file headers (iniVation / jAER): the version line and the ``#`` comment lines.

Every AEDAT file starts with a version line ``#!AER-DAT<major>.<minor>\\r\\n``:

- 2.0 (jAER): further ``#`` comment lines, then big-endian (address, timestamp) int32 pairs.
  Newer jAER ends the header with ``#End Of ASCII Header``; older files (DVS128 era) just
  stop writing ``#`` lines, so there the first record must not begin with byte 0x23 -- the
  same ambiguity every AEDAT 2.0 reader, jAER included, lives with. Decoded by :mod:`.aedat2`.
- 3.0 / 3.1 (cAER, DVS128 Gesture): ``#`` lines up to ``#!END-HEADER\\r\\n``, then event
  packets. Decoded by :mod:`.aedat31`.
- 4.0 (DV): flatbuffer packets, decoded through the optional ``aedat`` package (:mod:`.aedat4`).
"""

from __future__ import annotations

from dataclasses import dataclass


from ._records import PathLike, as_path
from .errors import CorruptFileError
from .signature import require_format

__all__ = ["AedatHeader", "read_aedat_header"]

_MAX_LINE = 1 << 16          # a header line longer than this means we are reading binary data
_MAX_HEADER_LINES = 100_000  # jAER preference dumps run to a few thousand lines


@dataclass(frozen=True)
class AedatHeader:
    """The text header of an AEDAT file.

    Attributes:
        version: "2.0", "3.0", "3.1" or "4.0" as written in the file.
        data_offset: byte offset of the first binary byte after the text header (for 4.0: right
            after the version line).
        lines: header lines (without "#" and line ending), version line excluded.
    """

    version: str
    data_offset: int
    lines: tuple[str, ...]

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    def value(self, key: str) -> str | None:
        """The text after ``key`` on the first line starting with it (e.g. "AEChip:"), or None."""
        for line in self.lines:
            stripped = line.strip()
            if stripped.startswith(key):
                return stripped[len(key):].strip()
        return None


#: the version keys of :func:`.signature.sniff_format` each expected format accepts
_ACCEPT = {"aedat": ("aedat2", "aedat3", "aedat4", "aedat"), "aedat2": ("aedat2",),
           "aedat3": ("aedat3",), "aedat4": ("aedat4",)}


def read_aedat_header(path: PathLike, *, reader: str = "read_aedat_header",
                      expected: str = "aedat") -> AedatHeader:
    """Parse the version line and the text header of an AEDAT 2.x/3.x/4.0 file.

    Args:
        path: the file.
        reader: the public function asking, named in a wrong-format message.
        expected: ``"aedat"`` (any version) or ``"aedat2"`` / ``"aedat3"`` / ``"aedat4"``.

    Raises:
        WrongFormatError (a CorruptFileError): no ``#!AER-DAT`` version line (the message
            names the format the file is, when known) or another AEDAT version than expected.
        CorruptFileError (a ValueError): a header cut off by the end of the file, or (3.x) no
            ``#!END-HEADER`` line.
    """
    path = as_path(path)
    require_format(path, reader, expected, _ACCEPT[expected])
    with open(path, "rb") as f:
        first = f.readline(_MAX_LINE)
        if not first.endswith(b"\n"):
            raise CorruptFileError(path, len(first), "file ends inside the version line")
        version = first[len(b"#!AER-DAT"):].strip().decode("latin-1")
        if version not in ("2.0", "3.0", "3.1", "4.0"):
            raise CorruptFileError(path, 0, f"unsupported AEDAT version {version!r}")
        pos = len(first)
        lines: list[str] = []
        if version == "4.0":
            return AedatHeader(version, pos, ())
        ended = False
        while len(lines) < _MAX_HEADER_LINES:
            if version == "2.0":
                peek = f.read(1)  # 2.0: the header is every leading line that starts with '#'
                f.seek(pos)
                if peek != b"#":
                    ended = True
                    break
            line = f.readline(_MAX_LINE)
            if not line:
                break
            if not line.endswith(b"\n"):
                why = "header line too long" if len(line) >= _MAX_LINE else "file ends inside a header line"
                raise CorruptFileError(path, pos, why)
            if not line.startswith(b"#"):
                raise CorruptFileError(path, pos, "header line does not start with '#'")
            pos += len(line)
            text = line[1:].rstrip(b"\r\n").decode("latin-1")
            if version != "2.0" and text == "!END-HEADER":
                ended = True
                break
            if version == "2.0" and text.strip().lower() == "end of ascii header":
                # newer jAER files end the header with this line: data may then start with '#'
                ended = True
                break
            lines.append(text)
        if not ended and version != "2.0":
            raise CorruptFileError(path, pos, "file ends before '#!END-HEADER'")
        if not ended and len(lines) >= _MAX_HEADER_LINES:
            raise CorruptFileError(path, pos, "header has too many lines")
    return AedatHeader(version, pos, tuple(lines))
