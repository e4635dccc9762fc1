"""``read_aedat``: any AEDAT file (2.0, 3.x, 4.0), its decoder chosen from the version line.

The versions and their layouts are described in :mod:`.aedat_header`.
"""

from __future__ import annotations

import numpy as np

from ._records import PathLike
from .aedat2 import read_aedat2
from .aedat4 import read_aedat4
from .aedat31 import read_aedat31
from .aedat_header import AedatHeader, read_aedat_header

__all__ = ["AedatHeader", "read_aedat_header", "read_aedat"]


def read_aedat(path: PathLike, chip: str | None = None) -> np.ndarray:
    """Read polarity events from any AEDAT file, choosing the decoder from its version line.

    Args:
        path: an AEDAT 2.0, 3.x or 4.0 file.
        chip: AEDAT 2.0 only: the sensor layout ("dvs128", "davis240", "davis346"); None reads
            it from the "# AEChip:" header line (see :func:`.aedat2.read_aedat2`).

    Returns:
        Events ``[N]`` of ``EVENT_DTYPE`` in file order, x/y with the origin at the top left.

    Raises:
        CorruptFileError (a ValueError): truncated or malformed file (file name, byte offset).
        ImportError: an AEDAT 4.0 file without the optional ``aedat`` package.
    """
    header = read_aedat_header(path)
    if header.major == 2:
        return read_aedat2(path, chip=chip, header=header)
    if header.major == 3:
        return read_aedat31(path, header=header)
    return read_aedat4(path)
