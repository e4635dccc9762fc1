"""Prophesee Metavision NPY event files (structured ``.npy`` with fields x, y, p, t)."""

from __future__ import annotations

import numpy as np

from ._npy import load_structured_npy
from ._records import PathLike
from .dtype import as_events
from .errors import CorruptFileError

__all__ = [
    "METAVISION_CD_DTYPE",
    "read_prophesee_npy",
    "write_prophesee_npy",
]

#: Metavision's EventCD layout as stored by ``EventNpyReader`` files.
METAVISION_CD_DTYPE = np.dtype(
    {"names": ["x", "y", "p", "t"], "formats": ["<u2", "<u2", "<i2", "<i8"],
     "offsets": [0, 2, 4, 8], "itemsize": 16}
)


def read_prophesee_npy(path: PathLike) -> np.ndarray:
    """Read a Metavision NPY event file into ``EVENT_DTYPE`` events ``[N]``.

    The time field may be called ``t`` or ``ts`` (older files). Polarity may be stored as
    0/1 or -1/1; both map to 0/1.

    Metavision NPY files store no sensor size (:func:`~.sensor_size.sensor_size_of` is None).

    Raises:
        WrongFormatError (a CorruptFileError): another format's file (DAT, AEDAT, HDF5, a Gen1
            box NPY file); the message names it.
        CorruptFileError (a ValueError): malformed/truncated file or values that do not fit.
    """
    raw = load_structured_npy(path, "read_prophesee_npy", "prophesee_npy")
    names = raw.dtype.names or ()
    t_name = "t" if "t" in names else "ts" if "ts" in names else None
    missing = [n for n in ("x", "y", "p") if n not in names] + ([] if t_name else ["t"])
    if missing:
        raise CorruptFileError(path, 0, f"missing event field(s) {missing} (has {list(names)})")
    p = raw["p"]
    view = np.empty(raw.shape, dtype=[("t", "<i8"), ("x", "<i8"), ("y", "<i8"), ("p", "i1")])
    view["t"], view["x"], view["y"] = raw[t_name], raw["x"], raw["y"]
    view["p"] = p > 0
    try:
        return as_events(view, str(path))
    except ValueError as err:
        raise CorruptFileError(path, 0, f"values do not fit events ({err})") from None


def write_prophesee_npy(path: PathLike, events: np.ndarray) -> None:
    """Write events ``[N]`` as a Metavision NPY file (``METAVISION_CD_DTYPE``)."""
    ev = as_events(events, "events")
    if ev.size and (ev["x"].min() < 0 or ev["y"].min() < 0):
        raise ValueError("write_prophesee_npy: events['x'] and events['y'] must be >= 0")
    out = np.empty(ev.shape, dtype=METAVISION_CD_DTYPE)
    for name in ("x", "y", "p", "t"):
        out[name] = ev[name]
    with open(path, "wb") as f:  # np.save(str) would append ".npy" to other names
        np.save(f, out, allow_pickle=False)

