"""Recognise an event file's format from its first bytes, so each reader can refuse the others.

Signatures (what a file starts with)::

    AEDAT 2.0 / 3.x / 4.0   "#!AER-DAT<version>\\r\\n"
    Prophesee DAT           "% " text lines (headerless DAT files have no signature)
    NumPy NPY               b"\\x93NUMPY"  (Metavision events or Gen1 boxes, told apart by fields)
    HDF5                    b"\\x89HDF\\r\\n\\x1a\\n"  (MVSEC or SHD, told apart by groups)
    N-MNIST                 none: 5-byte records; :func:`looks_like_nmnist` checks that they fit
                            34 x 34, which nothing else written as bytes is likely to do

Every reader calls :func:`require_format` (or, for a layout inside NPY/HDF5, :func:`wrong_format`)
before decoding, and raises :class:`~.errors.WrongFormatError` naming both formats.
"""

from __future__ import annotations

import os

import numpy as np

from ._records import PathLike
from .errors import WrongFormatError

__all__ = [
    "FORMAT_NAMES",
    "sniff_format",
    "looks_like_nmnist",
    "npy_kind",
    "hdf5_kind",
    "require_format",
    "wrong_format",
]

#: Format key -> (article, name) as the messages say it.
FORMAT_NAMES: dict[str, tuple[str, str]] = {
    "nmnist": ("an", "N-MNIST"),
    "prophesee_dat": ("a", "Prophesee DAT"),
    "aedat": ("an", "AEDAT"),
    "aedat2": ("an", "AEDAT 2.0"),
    "aedat3": ("an", "AEDAT 3.x"),
    "aedat4": ("an", "AEDAT 4.0"),
    "npy": ("a", "NumPy NPY"),
    "prophesee_npy": ("a", "Prophesee NPY event"),
    "gen1_boxes": ("a", "Gen1 box NPY"),
    "hdf5": ("an", "HDF5"),
    "mvsec": ("an", "MVSEC HDF5"),
    "shd": ("an", "SHD HDF5"),
}

# what a file of each expected format should have started with, for "it has no ..."
_OWN_SIGNATURE = {
    "prophesee_dat": "no '% ' text header",
    "aedat": "no '#!AER-DAT' version line", "aedat2": "no '#!AER-DAT' version line",
    "aedat3": "no '#!AER-DAT' version line", "aedat4": "no '#!AER-DAT' version line",
    "npy": "no NumPy signature", "prophesee_npy": "no NumPy signature",
    "gen1_boxes": "no NumPy signature",
    "hdf5": "no HDF5 signature", "mvsec": "no HDF5 signature", "shd": "no HDF5 signature",
}

_AEDAT = b"#!AER-DAT"
_NPY = b"\x93NUMPY"
_HDF5 = b"\x89HDF\r\n\x1a\n"
_HEAD = 1024
_AEDAT_KEYS = {"2.0": "aedat2", "3.0": "aedat3", "3.1": "aedat3", "4.0": "aedat4"}
_NMNIST_PROBE = 4096  # records looked at: enough to rule out other data, cheap on any file


def _head(path: PathLike, n: int = _HEAD) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def _aedat_version(head: bytes) -> str:
    return head[len(_AEDAT):].split(b"\n", 1)[0].strip().decode("latin-1")


def _is_text_line(head: bytes) -> bool:
    line = head.split(b"\n", 1)[0]
    return all(b >= 0x20 or b in (0x09, 0x0D) for b in line) and 0x7F not in line


def sniff_format(path: PathLike) -> str | None:
    """The format key that ``path``'s first bytes announce, or None when they announce none.

    Returns one of ``"aedat2"``, ``"aedat3"``, ``"aedat4"``, ``"aedat"`` (an AEDAT version
    line of an unknown version), ``"prophesee_dat"``, ``"npy"``, ``"hdf5"``; None for files
    with no signature: N-MNIST binaries, headerless DAT files, anything unknown.
    """
    head = _head(path)
    if head.startswith(_AEDAT):
        return _AEDAT_KEYS.get(_aedat_version(head), "aedat")
    if head.startswith(_HDF5):
        return "hdf5"
    if head.startswith(_NPY):
        return "npy"
    # "% " alone could begin binary data (an N-Caltech101 record x=37, y=32): a header line is text
    if head.startswith(b"% ") and _is_text_line(head):
        return "prophesee_dat"
    return None


def looks_like_nmnist(path: PathLike, size: tuple[int, int] = (34, 34)) -> bool:
    """Whether ``path`` reads as N-MNIST: whole 5-byte records, the first 4096 inside ``size``.

    Overflow markers (y == 240) are allowed. Meant for naming a file in an error message, not
    for accepting one: a tiny file of other bytes can pass by chance.
    """
    n_bytes = os.path.getsize(path)
    if n_bytes == 0 or n_bytes % 5:
        return False
    raw = np.frombuffer(_head(path, 5 * _NMNIST_PROBE), dtype=np.uint8).reshape(-1, 5)
    x, y = raw[:, 0], raw[:, 1]
    return bool(np.all((x < size[0]) & ((y < size[1]) | (y == 240))))


def npy_kind(names: tuple[str, ...] | None) -> str | None:
    """``"gen1_boxes"`` or ``"prophesee_npy"`` from a structured NPY array's field names."""
    fields = set(names or ())
    if {"w", "h", "class_id"} <= fields:
        return "gen1_boxes"
    if {"x", "y", "p"} <= fields and fields & {"t", "ts"}:
        return "prophesee_npy"
    return None


def hdf5_kind(f) -> str | None:
    """``"mvsec"`` or ``"shd"`` from an open ``h5py.File``'s top-level groups, else None.

    None also for a file whose links cannot be read: its reader reports the damage.
    """
    try:
        if "davis" in f:
            return "mvsec"
        if "spikes" in f and "labels" in f:
            return "shd"
    except (RuntimeError, OSError, KeyError, ValueError):  # h5py's errors for damaged links
        return None
    return None


def _npy_fields(path: PathLike) -> tuple[str, ...] | None:
    fmt = np.lib.format
    try:
        with open(path, "rb") as f:
            version = fmt.read_magic(f)
            read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            return read(f)[2].names
    except Exception:  # a damaged header: the file is still NPY, of unknown kind
        return None


def _hdf5_layout(path: PathLike) -> str | None:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return hdf5_kind(f)
    except Exception:  # a damaged file: still HDF5, of unknown kind
        return None


def _found(path: PathLike, key: str | None) -> str:
    """``"it starts with ..."`` / ``"it is ..."``: what ``path`` is, for a refusal message."""
    if key == "prophesee_dat":
        return "it starts with a Prophesee DAT '% ' text header"
    if key is not None and key.startswith("aedat"):
        version = _aedat_version(_head(path))
        return f"it starts with the AEDAT {version} version line '#!AER-DAT{version}'"
    if key == "npy":
        kind = npy_kind(_npy_fields(path))
        if kind is None:
            return "it starts with the NumPy NPY signature"
        return f"it is {' '.join(FORMAT_NAMES[kind])} file"
    if key == "hdf5":
        kind = _hdf5_layout(path)
        if kind is None:
            return "it starts with the HDF5 signature"
        return f"it is {' '.join(FORMAT_NAMES[kind])} file"
    if key in FORMAT_NAMES:  # a layout found inside a container
        return f"it is {' '.join(FORMAT_NAMES[key])} file"
    if looks_like_nmnist(path):
        return "it looks like an N-MNIST file (whole 5-byte records, x and y below 34)"
    return "it has no signature of a known event format"


def wrong_format(path: PathLike, reader: str, expected: str, found: str | None) -> WrongFormatError:
    """The error for ``reader`` given ``path`` (of format ``found``) instead of ``expected``.

    ``found`` is a key of :data:`FORMAT_NAMES` or :func:`sniff_format`'s answer (None: no
    signature; the message then says what the file is missing, and whether it looks like
    N-MNIST).
    """
    article, name = FORMAT_NAMES[expected]
    what = _found(path, found)
    if found is None and expected in _OWN_SIGNATURE:
        what = f"it has {_OWN_SIGNATURE[expected]}" + (
            f" and {what[3:]}" if what.startswith("it looks") else ""
        )
    return WrongFormatError(path, reader, f"is not {article} {name} file: {what}")


def require_format(path: PathLike, reader: str, expected: str,
                   accept: tuple[str | None, ...]) -> str | None:
    """Sniff ``path`` and return its key if ``accept`` holds it, else raise WrongFormatError.

    Args:
        path: an existing file.
        reader: the public function asking (leads the message).
        expected: the :data:`FORMAT_NAMES` key the reader reads.
        accept: sniffed keys the reader decodes itself (None: files without a signature).
    """
    found = sniff_format(path)
    if found in accept:
        return found
    raise wrong_format(path, reader, expected, found)
