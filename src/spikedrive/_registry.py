"""A named table of builders with helpful lookup errors (models, tasks, datasets)."""

from __future__ import annotations

import difflib
import fnmatch
from typing import Generic, Iterable, TypeVar

__all__ = ["Registry", "did_you_mean"]

T = TypeVar("T")


def did_you_mean(name: str, known: Iterable[str], n: int = 3) -> str | None:
    """``"did you mean 'a' or 'b'?"`` for the names in ``known`` close to ``name``, else ``None``."""
    close = difflib.get_close_matches(name, list(known), n=n)
    if not close:
        return None
    quoted = [repr(c) for c in close]
    return f"did you mean {', '.join(quoted[:-1]) + ' or ' if len(quoted) > 1 else ''}{quoted[-1]}?"


class Registry(Generic[T]):
    """Names → entries. ``what`` ("model", "task", ...) words the error messages."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> None:
        """Register ``entry`` under ``name``; a name is taken once."""
        if name in self._entries:
            raise ValueError(f"a {self.what} named {name!r} is already registered")
        self._entries[name] = entry

    def names(self, pattern: str = "*") -> list[str]:
        """Sorted names matching a shell-style ``pattern``."""
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def get(self, name: str, field: str | None = None) -> T:
        """The entry for ``name``; an unknown name raises ``ValueError`` with close matches,
        worded as ``"<field>=<name> is not registered"`` when ``field`` names a config field."""
        if name not in self._entries:
            hint = did_you_mean(name, self._entries) or f"known {self.what}s: {self.names()}"
            what = f"{field}={name!r} is not a registered {self.what}" if field else f"unknown {self.what} {name!r}"
            raise ValueError(f"{what}; {hint}")
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries
