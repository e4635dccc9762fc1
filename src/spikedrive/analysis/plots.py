"""Bar charts of per-layer firing rates (and energy), written to PNG without a display."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from .energy import EnergyReport
from .monitor import SpikeMonitor

__all__ = ["plot_firing_rates"]


def plot_firing_rates(
    report_or_rates: EnergyReport | SpikeMonitor | Mapping[str, float],
    path: str | Path,
    title: str | None = None,
) -> Path:
    """Write a PNG bar chart of each neuron layer's firing rate to ``path``.

    Args:
        report_or_rates: an :class:`EnergyReport` (adds a second panel with each synaptic layer's
            energy per sample, pJ, encoding layer in a different colour), a :class:`SpikeMonitor`,
            or a mapping ``layer name -> spikes per neuron per time step``.
        path: the PNG file to write (parent folders are created).
        title: figure title.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    import matplotlib

    matplotlib.use("Agg")  # never open a window, even where a display exists
    import matplotlib.pyplot as plt

    report = report_or_rates if isinstance(report_or_rates, EnergyReport) else None
    if report is not None:
        rates = {n.name: n.rate for n in report.neurons}
    elif isinstance(report_or_rates, SpikeMonitor):
        rates = report_or_rates.firing_rates()
    else:
        rates = dict(report_or_rates)
    if not rates and report is None:
        raise ValueError("plot_firing_rates: no firing rates to plot (no neuron layer ran)")

    panels = 2 if report is not None and report.layers else 1
    fig, axes = plt.subplots(panels, 1, figsize=(max(7.0, 0.6 * max(len(rates), 4)), 3.2 * panels), squeeze=False)
    ax = axes[0, 0]
    ax.bar(range(len(rates)), list(rates.values()), color="tab:blue")
    ax.set_xticks(range(len(rates)), list(rates.keys()), rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("spikes / neuron / step")
    ax.set_title(title or "Firing rate per neuron layer")
    if panels == 2:
        assert report is not None
        ax = axes[1, 0]
        names = [l.name for l in report.layers]
        colors = ["tab:orange" if l.encoding else "tab:green" for l in report.layers]
        ax.bar(range(len(names)), [l.energy_pj for l in report.layers], color=colors)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("energy / sample (pJ)")
        ax.set_title("Energy per synaptic layer (orange: encoding layer)")
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def save_figure(fig: Any, path: str | Path, dpi: int = 100) -> Path:
    """Write a matplotlib figure to ``path`` (folders created), close it, return the path."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
