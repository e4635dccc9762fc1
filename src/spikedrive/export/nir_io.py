"""NIR graphs on disk: the ``nir`` package's HDF5 files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ._deps import require

__all__ = ["save_nir", "load_nir"]


def save_nir(graph: Any, path: str | os.PathLike) -> Path:
    """Write ``graph`` (a ``nir.NIRGraph``) to ``path`` with ``nir.write`` (HDF5); returns the path.

    Raises ``TypeError`` if ``graph`` is not a NIR graph, ``ImportError`` without ``nir``."""
    nir = require("nir", "save_nir")
    if not isinstance(graph, nir.NIRGraph):
        raise TypeError(f"save_nir: graph must be a nir.NIRGraph, got {type(graph).__name__}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nir.write(str(path), graph)
    return path


def load_nir(path: str | os.PathLike) -> Any:
    """The ``nir.NIRGraph`` stored in ``path`` (``nir.read``).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a readable NIR HDF5 file (truncated, corrupt or other), naming it.
    """
    nir = require("nir", "load_nir")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_nir: no NIR file at {str(path)!r}")
    try:
        return nir.read(str(path))
    except Exception as exc:  # h5py and nir raise many types for damaged or foreign files
        raise ValueError(f"load_nir: {str(path)!r} is not a readable NIR file (truncated, corrupt or another "
                         f"format?): {type(exc).__name__}: {exc}") from exc
