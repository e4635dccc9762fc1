"""``read_aedat``: any AEDAT file (2.0, 3.x, 4.0), its decoder chosen from the version line.

The versions and their layouts are described in :mod:`.aedat_header`. :func:`aedat_sensor_size`
reads the sensor size each version's header gives: 2.0 the jAER chip class ("# AEChip:"),
3.x the camera on the "#Source" line (or ``sizeX``/``sizeY`` attributes), 4.0 the
``sizeX``/``sizeY`` of the event stream in the XML header.
"""

from __future__ import annotations

import re

import numpy as np

from ._records import PathLike
from .aedat2 import _AECHIP_HINTS, CHIPS, detect_chip, read_aedat2
from .aedat4 import aedat4_sensor_size, read_aedat4
from .aedat31 import read_aedat31
from .aedat_header import AedatHeader, read_aedat_header

__all__ = ["AedatHeader", "read_aedat_header", "read_aedat", "aedat_sensor_size"]

_SIZE_ATTR = re.compile(r'key="size([XY])"[^>]*>\s*(\d+)\s*<')


def read_aedat(path: PathLike, chip: str | None = None) -> np.ndarray:
    """Read polarity events from any AEDAT file, choosing the decoder from its version line.

    Args:
        path: an AEDAT 2.0, 3.x or 4.0 file.
        chip: AEDAT 2.0 only: the sensor layout ("dvs128", "davis240", "davis346"); None reads
            it from the "# AEChip:" header line (see :func:`.aedat2.read_aedat2`).

    Returns:
        Events ``[N]`` of ``EVENT_DTYPE`` in file order, x/y with the origin at the top left.

    Raises:
        WrongFormatError (a CorruptFileError): not an AEDAT file; names the format it is.
        CorruptFileError (a ValueError): truncated or malformed file (file name, byte offset).
        ImportError: an AEDAT 4.0 file without the optional ``aedat`` package.
    """
    header = read_aedat_header(path, reader="read_aedat")
    if header.major == 2:
        return read_aedat2(path, chip=chip, header=header)
    if header.major == 3:
        return read_aedat31(path, header=header)
    return read_aedat4(path)


def _named_sensor(name: str) -> tuple[int, int] | None:
    low = name.lower()
    for hint, key in _AECHIP_HINTS:
        if hint in low:
            return CHIPS[key].width, CHIPS[key].height
    return None


def aedat_sensor_size(path: PathLike) -> tuple[int, int] | None:
    """``(W, H)`` of an AEDAT 2.0 / 3.x / 4.0 file from its header, or None if it gives none.

    2.0: the chip :func:`.aedat2.read_aedat2` decodes with ("# AEChip:", DVS128 when absent;
    None for a chip without a known layout). 3.x: ``sizeX``/``sizeY`` attributes in the
    header, else a known camera on a "#Source" line (DVS128, DAVIS240, DAVIS346). 4.0: the
    lowest event stream's ``sizeX``/``sizeY``. Reads only the header.

    Raises:
        WrongFormatError (a CorruptFileError): not an AEDAT file.
    """
    header = read_aedat_header(path, reader="aedat_sensor_size")
    if header.major == 4:
        return aedat4_sensor_size(path)
    if header.major == 2:
        try:
            key = detect_chip(header)
        except ValueError:  # a chip we cannot decode has no size we could vouch for
            return None
        return CHIPS[key].width, CHIPS[key].height
    found = dict(m.groups() for line in header.lines for m in _SIZE_ATTR.finditer(line))
    if "X" in found and "Y" in found:
        return int(found["X"]), int(found["Y"])
    for line in header.lines:
        if line.startswith("Source"):
            size = _named_sensor(line.partition(":")[2])
            if size is not None:
                return size
    return None
