"""The attention papers' spike analysis: spike counts per layer and per time step, NASFR, the
distribution of per-neuron firing rates and of the neurons' input (membrane increment) — as
numbers and as one PNG. Totals come from :class:`~spikedrive.analysis.SpikeMonitor`; per-step
counts and distributions from extra forward hooks on the same neurons.

NASFR (ASA-SNN's metric) = total spikes / total neuron-time-steps over every neuron layer.
The "membrane" histogram is of each neuron's input current ``X`` (the value after conv -> BN ->
attention that the neuron integrates): the membrane itself lives inside the neuron's kernel and
no hook sees it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import torch
from torch import nn

from .monitor import SpikeMonitor
from .plots import save_figure
from ..layers import evaluating
from ..neurons import SpikingNeuron

__all__ = ["SpikeStatistics", "spike_statistics", "plot_spike_statistics"]


@dataclass
class SpikeStatistics:
    """What :func:`spike_statistics` measured (totals over every input seen).

    Attributes:
        spikes: layer name -> total spikes; slots: layer -> neurons x time steps x samples.
        spikes_per_step: layer -> total spikes at each time step (``[T]``; shorter sequences,
            e.g. after frame dropping, add to their first entries).
        rates: layer -> per-neuron firing rate of every sample (flattened, spikes / step).
        currents: layer -> a sample of at most ``keep`` neuron input values.
        samples: samples seen.
    """

    spikes: dict[str, float] = field(default_factory=dict)
    slots: dict[str, int] = field(default_factory=dict)
    spikes_per_step: dict[str, torch.Tensor] = field(default_factory=dict)
    rates: dict[str, torch.Tensor] = field(default_factory=dict)
    currents: dict[str, torch.Tensor] = field(default_factory=dict)
    samples: int = 0

    @property
    def total_spikes(self) -> float:
        """Spikes of all layers together."""
        return float(sum(self.spikes.values()))

    @property
    def nasfr(self) -> float:
        """Total spikes / total neuron-time-steps (ASA-SNN's NASFR), in ``[0, 1]``."""
        slots = sum(self.slots.values())
        return self.total_spikes / slots if slots else 0.0

    def spikes_per_sample(self) -> float:
        """Total spikes per sample."""
        return self.total_spikes / self.samples if self.samples else 0.0


def spike_statistics(model: nn.Module, inputs: Iterable[torch.Tensor], batch_dim: int = 1,
                     keep: int = 20000) -> SpikeStatistics:
    """Run ``model`` (eval mode, no grad) on each batch of ``inputs`` and gather
    :class:`SpikeStatistics`. ``batch_dim`` is where the batch lies in each input (1 for
    time-major ``[T, B, ...]``, 0 for images); ``keep`` bounds the stored currents per layer."""
    stats = SpikeStatistics()
    per_step: dict[str, torch.Tensor] = {}
    rates: dict[str, list[torch.Tensor]] = {}
    currents: dict[str, list[torch.Tensor]] = {}
    handles = []

    def hook(name: str):
        def fn(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
            s = out.detach().float()
            steps = s.flatten(1).sum(1).double()  # [T]
            acc = per_step.get(name)
            if acc is None or acc.numel() < steps.numel():
                grown = torch.zeros(steps.numel(), dtype=torch.float64)
                if acc is not None:
                    grown[:acc.numel()] += acc
                acc = grown
            acc[:steps.numel()] += steps
            per_step[name] = acc
            rates.setdefault(name, []).append(s.mean(0).flatten())
            seen = sum(c.numel() for c in currents.get(name, []))
            if seen < keep:
                currents.setdefault(name, []).append(args[0].detach().float().flatten()[: keep - seen])
        return fn

    for name, m in model.named_modules():
        if isinstance(m, SpikingNeuron):
            handles.append(m.register_forward_hook(hook(name)))
    try:
        with SpikeMonitor(model, batch_dim=batch_dim) as mon, evaluating(model):
            for x in inputs:
                model(x)
    finally:
        for h in handles:
            h.remove()
    for name, st in mon.neurons.items():
        stats.spikes[name], stats.slots[name] = st.spikes, st.slots
    stats.samples = mon.samples
    stats.spikes_per_step = per_step
    stats.rates = {n: torch.cat(v) for n, v in rates.items()}
    stats.currents = {n: torch.cat(v) for n, v in currents.items()}
    return stats


def plot_spike_statistics(stats: SpikeStatistics | dict[str, SpikeStatistics], path: str | Path,
                          title: str | None = None) -> Path:
    """Write a PNG of spikes per layer, spikes per time step, the firing-rate distribution and the
    neuron-input distribution; a dict ``label -> stats`` overlays several models. Returns ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = stats if isinstance(stats, dict) else {"model": stats}
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    width = 0.8 / max(1, len(runs))
    for k, (label, st) in enumerate(runs.items()):
        names = list(st.spikes)
        per_sample = [st.spikes[n] / max(1, st.samples) for n in names]
        axes[0, 0].bar([i + k * width for i in range(len(names))], per_sample, width, label=label)
        steps = max((v.numel() for v in st.spikes_per_step.values()), default=0)
        total = torch.zeros(steps, dtype=torch.float64)
        for v in st.spikes_per_step.values():
            total[:v.numel()] += v
        axes[0, 1].plot(range(steps), (total / max(1, st.samples)).tolist(), marker="o", label=label)
        all_rates = torch.cat(list(st.rates.values())) if st.rates else torch.zeros(1)
        axes[1, 0].hist(all_rates.numpy(), bins=30, range=(0, 1), histtype="step", label=f"{label} (NASFR {st.nasfr:.3f})")
        all_cur = torch.cat(list(st.currents.values())) if st.currents else torch.zeros(1)
        axes[1, 1].hist(all_cur.clamp(-3, 3).numpy(), bins=60, histtype="step", label=label)
    axes[0, 0].set_title("spikes per sample, per neuron layer")
    axes[0, 0].set_xlabel("layer (order of the network)")
    axes[0, 1].set_title("spikes per sample, per time step (all layers)")
    axes[0, 1].set_xlabel("time step")
    axes[1, 0].set_title("per-neuron firing rate (spikes / step)")
    axes[1, 0].set_yscale("log")
    axes[1, 1].set_title("neuron input current X (clipped to [-3, 3])")
    axes[1, 1].set_yscale("log")
    for ax in axes.flat:
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path, dpi=90)
