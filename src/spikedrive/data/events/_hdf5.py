"""Opening HDF5 files with a CorruptFileError instead of h5py's bare OSError (private)."""

from __future__ import annotations

import os

import h5py

from ._records import PathLike, as_path
from .errors import CorruptFileError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def open_hdf5(path: PathLike) -> h5py.File:
    """Open ``path`` read-only; a non-HDF5 or truncated file raises CorruptFileError.

    HDF5 keeps its superblock at byte 0 (or 512, 1024, ...), so a missing signature is
    reported at byte 0; h5py's own truncation check (stored end-of-file address beyond the
    real size) is reported at the real end of the file.
    """
    path = as_path(path)
    try:
        return h5py.File(path, "r")
    except OSError as err:
        with open(path, "rb") as f:
            head = f.read(8)
        if head != HDF5_SIGNATURE:
            raise CorruptFileError(path, 0, "not an HDF5 file (no signature)") from None
        size = os.path.getsize(path)
        raise CorruptFileError(path, size, f"truncated or corrupt HDF5 file (h5py: {err})") from None


def dataset(f: h5py.File, key: str, path: PathLike) -> h5py.Dataset:
    """``f[key]`` as a dataset, or CorruptFileError naming the missing key."""
    obj = f.get(key)
    if not isinstance(obj, h5py.Dataset):
        raise CorruptFileError(path, None, f"missing HDF5 dataset {key!r}")
    return obj


def read_dataset(ds: h5py.Dataset, path: PathLike, sel=slice(None)):
    """``ds[sel]``, turning h5py's read errors (damaged chunks) into CorruptFileError."""
    try:
        return ds[sel]
    except (OSError, RuntimeError, ValueError) as err:
        raise CorruptFileError(path, None, f"unreadable HDF5 dataset {ds.name!r} ({err})") from None
