"""The one error every reader raises for a file it cannot trust."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "CorruptFileError",
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
