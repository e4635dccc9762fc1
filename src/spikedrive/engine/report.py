"""The energy and firing-rate report written at the end of every run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..analysis import EnergyReport, SpikeMonitor, energy_report, evaluating, plot_firing_rates
from .io import atomic_write_text

__all__ = ["ENERGY_SAMPLES", "first_model_input", "measure_energy", "write_energy_report"]

#: Samples an energy report is measured on by default: enough that firing rates do not hang on
#: one batch, few enough for a CPU.
ENERGY_SAMPLES = 256


def first_model_input(loader: DataLoader, task: Any, device: Any) -> Any | None:
    """The model input of the loader's first batch on ``device``, as ``task.model_input(batch)``
    says; ``None`` when the task does not define that optional method (no report then)."""
    pick = getattr(task, "model_input", None)
    if pick is None:
        return None
    return pick(task.to_device(next(iter(loader)), device))


def measure_energy(model: nn.Module, loader: DataLoader, task: Any, device: Any = "cpu",
                   samples: int = ENERGY_SAMPLES, batch_dim: int = 0,
                   sparse_weights: bool = False) -> EnergyReport | None:
    """Energy per sample of ``model`` on the first ``samples`` samples of ``loader``.

    Batches are fed as ``task.model_input(task.to_device(batch, device))`` (e.g. ``[B, C, H, W]``
    or time-major ``[T, B, ...]`` with ``batch_dim=1``); the last one is cut along ``batch_dim``
    so exactly ``samples`` are seen (all of them when the loader holds fewer: the report's
    ``samples`` says how many). One :class:`~spikedrive.analysis.SpikeMonitor` sums over every
    batch, in eval mode without gradients. ``None`` when the task defines no ``model_input``.
    ``sparse_weights``: pruned (zero) weights cost nothing (see ``SpikeMonitor``).
    """
    if samples < 1:
        raise ValueError(f"measure_energy: samples must be >= 1, got {samples}")
    pick = getattr(task, "model_input", None)
    if pick is None:
        return None
    seen = 0
    with evaluating(model), SpikeMonitor(model, batch_dim=batch_dim, sparse_weights=sparse_weights) as monitor:
        for batch in loader:
            x = pick(task.to_device(batch, device))
            size = x.shape[batch_dim] if isinstance(x, torch.Tensor) else None
            if size is not None and seen + size > samples:
                x = x.narrow(batch_dim, 0, samples - seen)
            model(x)
            seen = monitor.samples
            if seen >= samples:
                break
    report = EnergyReport.from_monitor(monitor)
    if seen < samples:
        report.notes.append(f"measured on all {seen} samples the data holds ({samples} asked for)")
    return report


def write_energy_report(model: nn.Module, x: Any, out_dir: str | Path, batch_dim: int = 0,
                        title: str | None = None, *, task: Any = None, device: Any = "cpu",
                        samples: int = ENERGY_SAMPLES) -> EnergyReport | None:
    """Measure ``model`` and write ``energy.txt``, ``energy.json`` and ``firing_rates.png`` into
    ``out_dir``; the table ends with the number of samples measured.

    Args:
        model: the network.
        x: a ``DataLoader`` (measured on its first ``samples`` samples through ``task``, see
            :func:`measure_energy`), or one model input batch measured whole.
        out_dir: the run folder.
        batch_dim: 1 for time-major inputs ``[T, B, ...]``, else 0.
        title: title of the firing-rate chart.
        task: feeds the loader's batches to the model (needed with a loader).
        device: where the batches go.
        samples: how many samples to measure from a loader.

    Returns:
        The report, or ``None`` (nothing written) when ``task`` defines no ``model_input``.
    """
    if isinstance(x, DataLoader):
        if task is None:
            raise ValueError("write_energy_report: measuring a DataLoader needs task= (it says what the model takes)")
        report = measure_energy(model, x, task, device, samples=samples, batch_dim=batch_dim)
        if report is None:
            return None
    else:
        report = energy_report(model, x, batch_dim=batch_dim)
    out = Path(out_dir)
    atomic_write_text(out / "energy.txt", report.table() + "\n")
    atomic_write_text(out / "energy.json", json.dumps(report.to_dict(), indent=2) + "\n")
    plot_firing_rates(report, out / "firing_rates.png", title=title)
    return report
