"""Per-epoch metrics on disk: ``metrics.jsonl`` (one line appended per epoch, survives a crash
mid-run) and ``metrics.json`` (the whole list, rewritten atomically each epoch).

Both end, once training is over, with one final record without an ``epoch`` key: the test
evaluation (``test_*``) beside the validation metrics (``val_*``) of the selected epoch
(``selected_epoch``, ``selected``: ``"best.pt"`` or ``"last"``). Per-epoch readers skip records
without ``epoch``; a resumed run drops the old final record and writes a new one at its end."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from .io import append_line, atomic_write_text

__all__ = ["MetricsLog"]


def _jsonable(record: dict[str, Any]) -> dict[str, Any]:
    # JSON has no NaN / inf; null keeps files parseable by strict readers.
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}


class MetricsLog:
    """The metrics files of one run folder.

    Args:
        out_dir: the run folder.
        history: records already logged (a resumed run); the files are rewritten to hold exactly
            these, dropping lines a crashed run wrote after its last checkpoint.
    """

    def __init__(self, out_dir: str | os.PathLike, history: list[dict[str, Any]] | None = None) -> None:
        self.jsonl = Path(out_dir) / "metrics.jsonl"
        self.json = Path(out_dir) / "metrics.json"
        self.history: list[dict[str, Any]] = [dict(r) for r in history or []]
        atomic_write_text(self.jsonl, "".join(json.dumps(_jsonable(r)) + "\n" for r in self.history))
        self._write_json()

    def append(self, record: dict[str, Any]) -> None:
        """Log one epoch's record."""
        self.history.append(dict(record))
        append_line(self.jsonl, json.dumps(_jsonable(record)))
        self._write_json()

    def finish(self, record: dict[str, Any]) -> None:
        """Log the final (test) record after the per-epoch ones; it is not part of the history."""
        append_line(self.jsonl, json.dumps(_jsonable(record)))
        self._write_json([record])

    def _write_json(self, final: list[dict[str, Any]] | None = None) -> None:
        records = [*self.history, *(final or [])]
        atomic_write_text(self.json, json.dumps([_jsonable(r) for r in records], indent=1) + "\n")
