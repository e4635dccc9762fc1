"""Opening HDF5 files with a CorruptFileError instead of h5py's bare OSError (private)."""

from __future__ import annotations

import os
import struct

import h5py

from ._records import PathLike, as_path
from .errors import CorruptFileError
from .signature import hdf5_kind, looks_like_nmnist, require_format, wrong_format

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def open_hdf5(path: PathLike, reader: str = "open_hdf5", expected: str = "hdf5") -> h5py.File:
    """Open ``path`` read-only; a non-HDF5 or truncated file raises CorruptFileError.

    HDF5 keeps its superblock at byte 0 (or 512, 1024, ...), so a missing signature is
    reported at byte 0; h5py's own truncation check (stored end-of-file address beyond the
    real size) is reported at the real end of the file. A file with another format's
    signature, or an HDF5 file of the other layout (``expected`` "mvsec" given an SHD file or
    the reverse), raises WrongFormatError naming ``reader`` and both formats.
    """
    path = as_path(path)
    # no signature at byte 0 may still be HDF5 behind a user block: let h5py decide then
    require_format(path, reader, expected, ("hdf5", None))
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        with open(path, "rb") as fh:
            head = fh.read(8)
        if head != HDF5_SIGNATURE:
            if looks_like_nmnist(path):
                raise wrong_format(path, reader, expected, None) from None
            raise CorruptFileError(path, 0, "not an HDF5 file (no signature)") from None
        size = os.path.getsize(path)
        raise CorruptFileError(path, size, f"truncated or corrupt HDF5 file (h5py: {err})") from None
    kind = hdf5_kind(f)
    if expected != "hdf5" and kind is not None and kind != expected:
        f.close()  # an open handle would be reused by libhdf5 for a rewritten file of this name
        raise wrong_format(path, reader, expected, kind)
    return f


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


def check_vlen_dataset(ds: h5py.Dataset, path: PathLike, index: int | None = None) -> None:
    """Refuse a variable-length dataset that would crash or hang libhdf5 when read.

    libhdf5 trusts some bytes of a file it should not (HDFGroup/hdf5#1707; h5py leaves such
    bugs to libhdf5), so a corrupt SHD file could kill or freeze the process instead of raising.
    Two such spots, both found by fuzzing ``write_shd`` files, are checked here first:

    * the datatype's variable-length kind (sequence or string): an invalid kind segfaults the
      type conversion;
    * the global heap collections holding the arrays: libhdf5 walks a collection object by
      object, and a corrupt object size can send the walk where it stops advancing (reading
      then loops forever). The same walk is done here, bounded, for the collections element
      ``index`` (or every element) points into; it must end exactly at the collection's end and
      find every referenced object.

    Only contiguous datasets with 8-byte addresses can have their heaps checked (their element
    descriptors sit at one known offset); others are left to libhdf5. Raises CorruptFileError.
    """
    enc = ds.id.get_type().encode()  # H5Tencode: 2 bytes of framing, then the datatype message
    if len(enc) < 4 or enc[2] & 0x0F != 9 or enc[3] & 0x0F != 0:
        raise CorruptFileError(
            path, None, f"dataset {ds.name!r} is not a variable-length sequence (datatype {enc[2:6].hex()})"
        )
    offset = ds.id.get_offset()
    if offset is None or ds.ndim != 1 or ds.shape[0] == 0:
        return
    size_addr, size_len = ds.file.id.get_create_plist().get_sizes()
    if size_addr != 8 or size_len != 8:  # only the usual 8-byte sizes are decoded here
        return
    desc = struct.Struct("<IQI")  # sequence length, collection address, object index
    first, count = (0, ds.shape[0]) if index is None else (index % ds.shape[0], 1)
    file_size = os.path.getsize(path)
    with open(path, "rb") as f:
        f.seek(offset + first * desc.size)
        raw = f.read(count * desc.size)
        if len(raw) != count * desc.size:
            raise CorruptFileError(path, offset, f"truncated variable-length dataset {ds.name!r}")
        wanted: dict[int, set[int]] = {}
        for length, addr, obj in desc.iter_unpack(raw):
            if length:
                wanted.setdefault(addr, set()).add(obj)
        for addr, objs in wanted.items():
            found = _walk_collection(f, addr, file_size, path)
            missing = objs - found
            if missing:
                raise CorruptFileError(
                    path, addr, f"global heap collection lacks object {min(missing)} of {ds.name!r}"
                )


_GCOL = struct.Struct("<4sB3xQ")  # signature, version, reserved, collection size
_GOBJ = struct.Struct("<HH4xQ")  # object index, reference count, reserved, object size


def _walk_collection(f, addr: int, file_size: int, path: PathLike) -> set[int]:
    """Indices of the objects of the collection at ``addr``, walking it as libhdf5 does."""
    if addr + _GCOL.size > file_size:
        raise CorruptFileError(path, addr, "global heap collection outside the file")
    f.seek(addr)
    sig, version, size = _GCOL.unpack(f.read(_GCOL.size))
    if sig != b"GCOL" or version != 1 or size < _GCOL.size or addr + size > file_size:
        raise CorruptFileError(path, addr, f"bad global heap collection (size {size})")
    f.seek(addr)
    chunk = f.read(size)
    pos, found = _GCOL.size, set()
    while pos < size:
        if pos + _GOBJ.size > size:  # too small for an object header: trailing free space
            break
        obj, _, obj_size = _GOBJ.unpack_from(chunk, pos)
        # a real object takes its header plus its data rounded up to 8 bytes; the free-space
        # object (index 0) gives its whole extent, header included
        need = _GOBJ.size + (obj_size + 7) // 8 * 8 if obj else obj_size
        if need < _GOBJ.size or pos + need > size:
            raise CorruptFileError(
                path, addr + pos, f"corrupt global heap object (index {obj}, size {obj_size})"
            )
        if obj:
            found.add(obj)
        pos += need
    return found
