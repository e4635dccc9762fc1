"""Gen1 ("ATIS Automotive Detection Dataset") bounding-box files, ``*_bbox.npy``.

Each file is a structured ``.npy`` array, one row per box, sorted by time::

    t (or ts)                    <u8   us, the label time (boxes at one t form one "frame")
    x, y, w, h                   <f4   top-left corner and size in pixels
    class_id                     u1    Gen1: 0 car, 1 pedestrian
    confidence (class_confidence) <f4  1.0 for ground truth
    track_id                     <u4

Older releases name the time field ``ts``; Prophesee's toolbox (``box_loading.BBOX_DTYPE``)
and the 1 Mpx dataset call the confidence ``class_confidence`` and store ``class_id`` as u4.
The reader accepts every variant and returns ``BOX_DTYPE``.
"""

from __future__ import annotations

import numpy as np

from ._npy import load_structured_npy
from ._records import PathLike
from .errors import CorruptFileError

__all__ = [
    "BOX_DTYPE",
    "GEN1_BOX_FILE_DTYPE",
    "GEN1_CLASSES",
    "boxes_from_fields",
    "read_gen1_boxes",
    "write_gen1_boxes",
]

#: What :func:`read_gen1_boxes` returns: one box per row, time as int64 us like events.
BOX_DTYPE = np.dtype(
    [("t", "<i8"), ("x", "<f4"), ("y", "<f4"), ("w", "<f4"), ("h", "<f4"),
     ("class_id", "u1"), ("confidence", "<f4"), ("track_id", "<u4")]
)

#: What :func:`write_gen1_boxes` writes (the Gen1 release's dtype).
GEN1_BOX_FILE_DTYPE = np.dtype(
    [("t", "<u8"), ("x", "<f4"), ("y", "<f4"), ("w", "<f4"), ("h", "<f4"),
     ("class_id", "u1"), ("confidence", "<f4"), ("track_id", "<u4")]
)

GEN1_CLASSES = ("car", "pedestrian")

# canonical field -> accepted spellings on disk, first match wins
_ALIASES = {
    "t": ("t", "ts"),
    "x": ("x",), "y": ("y",), "w": ("w",), "h": ("h",),
    "class_id": ("class_id",),
    "confidence": ("confidence", "class_confidence"),
    "track_id": ("track_id",),
}
_OPTIONAL = {"confidence": 1.0, "track_id": 0}


def _integral_fits(v: np.ndarray, dtype: str) -> bool:
    if v.size == 0:
        return True
    info = np.iinfo(dtype)
    if np.issubdtype(v.dtype, np.floating) and not np.all(v == np.round(v)):
        return False
    return bool(v.min() >= info.min and v.max() <= info.max)


def boxes_from_fields(raw: np.ndarray, who: str = "boxes") -> np.ndarray:
    """Convert any box array using the accepted field spellings to ``BOX_DTYPE``.

    Raises ValueError (naming ``who``) for missing fields or values that do not fit.
    """
    names = raw.dtype.names or ()
    out = np.empty(raw.shape, dtype=BOX_DTYPE)
    for field, spellings in _ALIASES.items():
        src = next((s for s in spellings if s in names), None)
        if src is None:
            if field in _OPTIONAL:
                out[field] = _OPTIONAL[field]
                continue
            raise ValueError(f"{who}: missing box field {field!r} (has {list(names)})")
        v = raw[src]
        if field in ("t", "class_id", "track_id") and not _integral_fits(v, BOX_DTYPE[field].str):
            raise ValueError(f"{who}: field {src!r} does not fit {BOX_DTYPE[field]}")
        out[field] = v
    return out


def read_gen1_boxes(path: PathLike) -> np.ndarray:
    """Read a Gen1 ``*_bbox.npy`` file.

    Args:
        path: the ``.npy`` box file (any of the field spellings above).

    Returns:
        Boxes ``[K]`` of ``BOX_DTYPE``: ``t`` int64 us, ``x, y, w, h`` float32 pixels
        (top-left corner, size), ``class_id``, ``confidence``, ``track_id``.

    Raises:
        WrongFormatError (a CorruptFileError): another format's file (an event NPY, DAT,
            HDF5, ...); the message names it.
        CorruptFileError (a ValueError): truncated or malformed file, missing fields.
    """
    raw = load_structured_npy(path, "read_gen1_boxes", "gen1_boxes")
    try:
        return boxes_from_fields(raw, str(path))
    except ValueError as err:
        raise CorruptFileError(path, 0, f"not a box file ({err})") from None


def write_gen1_boxes(path: PathLike, boxes: np.ndarray, time_field: str = "t") -> None:
    """Write boxes ``[K]`` as a Gen1 ``*_bbox.npy`` file (``GEN1_BOX_FILE_DTYPE``).

    Args:
        path: destination (overwritten; no ".npy" is appended).
        boxes: any array with the fields above (``BOX_DTYPE`` or a Gen1/Prophesee variant);
            ``t >= 0``.
        time_field: ``"t"`` (current release) or ``"ts"`` (the older variant).
    """
    if time_field not in ("t", "ts"):
        raise ValueError(f"write_gen1_boxes: time_field={time_field!r}, expected 't' or 'ts'")
    if not isinstance(boxes, np.ndarray) or boxes.dtype.names is None or boxes.ndim != 1:
        raise ValueError("write_gen1_boxes: boxes must be a 1-D structured array")
    b = boxes_from_fields(boxes, "boxes")
    if b.size and b["t"].min() < 0:
        raise ValueError(f"write_gen1_boxes: boxes['t'] has negative values (min {b['t'].min()})")
    dtype = GEN1_BOX_FILE_DTYPE
    if time_field == "ts":
        dtype = np.dtype([("ts" if n == "t" else n, dtype[n]) for n in dtype.names])
    out = np.empty(b.shape, dtype=dtype)
    for name, src in zip(dtype.names, GEN1_BOX_FILE_DTYPE.names):
        out[name] = b[src]
    with open(path, "wb") as f:  # np.save(str) would append ".npy" to other names
        np.save(f, out, allow_pickle=False)
