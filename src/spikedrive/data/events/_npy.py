"""Checked loading of structured ``.npy`` files (private helper for box and event NPY files)."""

from __future__ import annotations

import os

import numpy as np

from ._records import PathLike, as_path
from .errors import CorruptFileError
from .signature import npy_kind, require_format, wrong_format


def load_structured_npy(path: PathLike, reader: str = "load_structured_npy",
                        expected: str = "npy") -> np.ndarray:
    """Load a 1-D structured ``.npy`` array, refusing truncated or malformed files.

    ``np.load`` alone reports a truncated file as a bare reshape error with no offset and
    would unpickle object arrays; this reads the header itself, checks the payload length,
    and never unpickles. A file of another format, or an NPY file of the other kind
    (``expected`` "prophesee_npy" given Gen1 boxes or the reverse), raises WrongFormatError
    naming ``reader`` and both formats.
    """
    path = as_path(path)
    require_format(path, reader, expected, ("npy",))
    fmt = np.lib.format
    with open(path, "rb") as f:
        try:
            version = fmt.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(f)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = fmt.read_array_header_2_0(f)
            else:
                raise ValueError(f"unsupported .npy version {version}")
        except Exception as err:  # numpy's header parser raises assorted types on garbage
            raise CorruptFileError(path, f.tell(), f"bad .npy header ({err})") from None
        offset = f.tell()
        if dtype.hasobject:
            raise CorruptFileError(path, offset, "object arrays are not event data (refusing to unpickle)")
        if dtype.names is None or len(shape) != 1 or fortran:
            raise CorruptFileError(
                path, offset, f"expected a 1-D structured array, got shape {shape} dtype {dtype}"
            )
        kind = npy_kind(dtype.names)
        if expected != "npy" and kind is not None and kind != expected:
            raise wrong_format(path, reader, expected, kind)
        n = shape[0]
        need = offset + n * dtype.itemsize
        size = os.path.getsize(path)
        if size < need:
            got = (size - offset) // dtype.itemsize if dtype.itemsize else 0
            raise CorruptFileError(
                path, offset + got * dtype.itemsize,
                f"truncated record ({got} of {n} records present)",
            )
        return np.fromfile(f, dtype=dtype, count=n)
