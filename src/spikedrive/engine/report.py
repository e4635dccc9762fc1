"""The energy and firing-rate report written at the end of every run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn
from torch.utils.data import DataLoader

from ..analysis import EnergyReport, energy_report, plot_firing_rates
from .io import atomic_write_text

__all__ = ["write_energy_report", "first_model_input"]


def first_model_input(loader: DataLoader, task: Any, device: Any) -> Any | None:
    """The model input of the loader's first batch on ``device``, as ``task.model_input(batch)``
    says; ``None`` when the task does not define that optional method (no report then)."""
    pick = getattr(task, "model_input", None)
    if pick is None:
        return None
    return pick(task.to_device(next(iter(loader)), device))


def write_energy_report(model: nn.Module, x: Any, out_dir: str | Path, batch_dim: int = 0,
                        title: str | None = None) -> EnergyReport:
    """Measure ``model`` on the batch ``x`` and write ``energy.txt``, ``energy.json`` and
    ``firing_rates.png`` into ``out_dir``. ``batch_dim`` is 1 for time-major inputs ``[T, B, ...]``."""
    out = Path(out_dir)
    report = energy_report(model, x, batch_dim=batch_dim)
    atomic_write_text(out / "energy.txt", report.table() + "\n")
    atomic_write_text(out / "energy.json", json.dumps(report.to_dict(), indent=2) + "\n")
    plot_firing_rates(report, out / "firing_rates.png", title=title)
    return report
