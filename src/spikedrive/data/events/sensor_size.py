"""The sensor size an event file states, for every format: one function per format and one for any.

How sizes are found (the per-format functions read only headers)::

    AEDAT 2.0 / 3.x / 4.0   aedat_sensor_size          "# AEChip:" class / "#Source" camera or
                                                       sizeX, sizeY / DV's XML sizeX, sizeY
    Prophesee DAT           prophesee_dat_sensor_size  "% Width" + "% Height", or "% geometry WxH"
    N-MNIST                 nmnist_sensor_size         (34, 34), fixed by the format
    MVSEC HDF5              mvsec_sensor_size          (346, 260), the DAVIS 346 of every sequence
    SHD HDF5                shd_sensor_size            (700, 1): 700 channels as one row
    Prophesee NPY events    none                       the files store no size

The readers' return values are unchanged; a caller who needs the size asks for it apart, e.g.
``events, size = read_aedat(p), sensor_size_of(p)``.
"""

from __future__ import annotations

import os

from ._hdf5 import open_hdf5
from ._records import PathLike, as_path
from .aedat import aedat_sensor_size
from .mvsec import mvsec_sensor_size
from .nmnist import nmnist_sensor_size
from .prophesee import prophesee_dat_sensor_size
from .shd import shd_sensor_size
from .signature import hdf5_kind, sniff_format

__all__ = ["sensor_size_of"]


def sensor_size_of(path: PathLike) -> tuple[int, int] | None:
    """``(W, H)`` in pixels of the sensor that recorded ``path``, as its format states it.

    The format is recognised from the file's first bytes (:func:`.signature.sniff_format`);
    a file without a signature is N-MNIST when its records fit 34 x 34 and otherwise taken
    for a headerless DAT file.

    Returns:
        The size, or None when the file does not state one (N-CARS DAT samples, headerless
        DAT, Metavision NPY, HDF5 files of neither MVSEC nor SHD layout, N-Caltech101).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CorruptFileError (a ValueError): a damaged header.
    """
    path = as_path(path)
    kind = sniff_format(path)
    if kind is not None and kind.startswith("aedat"):
        return aedat_sensor_size(path)
    if kind == "prophesee_dat":
        return prophesee_dat_sensor_size(path)
    if kind == "hdf5":
        with open_hdf5(path, "sensor_size_of") as f:
            layout = hdf5_kind(f)
        if layout == "mvsec":
            return mvsec_sensor_size(path)
        if layout == "shd":
            return shd_sensor_size(path)
        return None
    if kind is None and os.path.getsize(path):
        size = nmnist_sensor_size(path)
        if size is not None:
            return size
        return prophesee_dat_sensor_size(path)
    return None
