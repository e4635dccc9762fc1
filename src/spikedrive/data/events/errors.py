"""The errors every reader raises for a file it cannot trust (or that is of another format)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "CorruptFileError",
    "WrongFormatError",
]


class CorruptFileError(ValueError):
    """A truncated or malformed event file.

    A ``ValueError`` so callers that validate input catch it with the rest; it also carries
    ``path`` and the byte ``offset`` where decoding stopped (``None`` when a third-party
    decoder cannot say), and ``reason``.
    Message: ``"file.bin: truncated record at byte 12345 (4 of 5 bytes present)"``.
    """

    def __init__(self, path: str | os.PathLike[str], offset: int | None, reason: str) -> None:
        self.path = Path(path)
        self.offset = offset
        self.reason = reason
        where = f" at byte {offset}" if offset is not None else ""
        # the reason leads, so the message reads "file: truncated record at byte N (...)"
        head, sep, tail = reason.partition(" (")
        super().__init__(f"{self.path}: {head}{where}{' (' + tail if sep else ''}")


class WrongFormatError(CorruptFileError):
    """A file given to the reader of another format (an N-MNIST file to the DAT reader, ...).

    A :class:`CorruptFileError` (so a ``ValueError``) with ``offset`` 0 and ``reader``, the
    function that refused it. Message: ``"read_nmnist: 'x.dat' is not an N-MNIST file: it
    starts with a Prophesee DAT '% ' text header"`` -- the reader, the file, the format it
    expected and, when recognised, the format the file is.
    """

    def __init__(self, path: str | os.PathLike[str], reader: str, text: str, offset: int = 0) -> None:
        self.path = Path(path)
        self.offset = offset
        self.reader = reader
        self.reason = text
        # not CorruptFileError's "file: reason at byte N" form: the reader and file lead
        ValueError.__init__(self, f"{reader}: '{self.path}' {text}")
