"""The 45 nm energy model of spiking networks, per layer and per sample.

``E = E_MAC * MACs(encoding layer) + E_AC * sum over the other synaptic layers of SOPs``, with
``SOPs = input firing rate x MACs x T`` (x D for I-LIF's virtual steps) and, by default,
``E_MAC = 4.6 pJ``, ``E_AC = 0.9 pJ`` (Horowitz, ISSCC 2014, 32-bit float at 45 nm).

The MACs here are those *executed on the actual input* (items x MACs per item, see
:mod:`.monitor`), so the ``T`` and ``D`` factors come with the input's leading dims: a
spike-driven I-LIF layer sees ``[T*D, B, ...]`` binary maps and a mean of ``rate / D``; the same
layer before :func:`spikedrive.to_spike_driven` sees ``[T, B, ...]`` integers with mean ``rate``
— both give the same SOPs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..layers import evaluating, refuse_unknown_weights
from .monitor import SpikeMonitor

__all__ = ["align_table", "LayerEnergy", "NeuronRate", "EnergyReport", "energy_report", "format_energy", "E_MAC_PJ", "E_AC_PJ"]

#: Energy of one 32-bit multiply-accumulate at 45 nm, picojoules.
E_MAC_PJ = 4.6
#: Energy of one 32-bit accumulate at 45 nm, picojoules.
E_AC_PJ = 0.9


def format_energy(pj: float) -> str:
    """``pj`` picojoules in the fitting unit: ``"12.3 nJ"``, ``"4.56 µJ"``, ``"1.2 mJ"``."""
    for unit, scale in (("J", 1e12), ("mJ", 1e9), ("µJ", 1e6), ("nJ", 1e3)):
        if abs(pj) >= scale:
            return f"{pj / scale:.4g} {unit}"
    return f"{pj:.4g} pJ"


def _si(n: float) -> str:
    """Compact count: ``36.86 k``, ``1.2 M``."""
    for suffix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.4g} {suffix}"
    return f"{n:.4g}"


@dataclass(frozen=True)
class LayerEnergy:
    """One synaptic layer (or spike-input module), per sample.

    Attributes:
        name: module path in the model.
        kind: weight layer class (``Conv2d``, ``Linear``) or the spike-input module's class.
        encoding: whether this is the encoding layer (charged ``E_MAC`` per MAC).
        macs: MACs executed per sample; for the encoding layer only on time steps whose input
            differs from the previous step's (a repeated direct-encoded frame is computed once).
        ann_macs: MACs of one time step per sample (the same layer in an ANN).
        input_rate: mean of the input (firing rate for spikes; mean integer for I-LIF integers).
        binary: whether every input value was exactly 0 or 1.
        steps: leading steps of the input per sample (``T``, or ``T * D`` for virtual steps).
        sops: synaptic operations per sample, ``input_rate x macs`` (0 for the encoding layer).
        energy_pj: this layer's energy per sample, picojoules.
        counted: False for a spike-input module without ``count_sops`` (its energy is unknown).
    """

    name: str
    kind: str
    encoding: bool
    macs: float
    ann_macs: float
    input_rate: float
    binary: bool
    steps: float
    sops: float
    energy_pj: float
    counted: bool = True


@dataclass(frozen=True)
class NeuronRate:
    """Output firing of one neuron layer: ``rate`` spikes per neuron per time step (mean integer
    for I-LIF), ``rate_per_virtual_step = rate / levels`` (``levels`` = I-LIF's D, else 1)."""

    name: str
    kind: str
    levels: int
    rate: float
    rate_per_virtual_step: float
    binary: bool


@dataclass
class EnergyReport:
    """Per-layer energy and firing of a network, per sample; see :func:`energy_report`."""

    layers: list[LayerEnergy]
    neurons: list[NeuronRate]
    samples: int
    e_mac_pj: float = E_MAC_PJ
    e_ac_pj: float = E_AC_PJ
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_monitor(cls, monitor: SpikeMonitor, e_mac_pj: float = E_MAC_PJ, e_ac_pj: float = E_AC_PJ) -> "EnergyReport":
        """Turn what ``monitor`` observed (any number of batches) into per-sample energy."""
        stats = list(monitor.synapses.values())
        samples = monitor.samples or next((s.samples for s in stats if s.encoding), 0) or 1
        layers, notes = [], []
        for s in stats:
            if s.encoding:
                macs = s.computed_macs / samples
                sops, energy = 0.0, e_mac_pj * macs
            else:
                macs = s.macs / samples
                sops = s.sops / samples
                energy = e_ac_pj * sops
            if not s.counted:
                notes.append(f"{s.name}: spike-input module without count_sops(); its energy is not counted")
            if s.spike_input_module and not s.ann_counted:
                notes.append(f"{s.name}: spike-input module without count_macs(); the ANN side omits it")
            layers.append(LayerEnergy(
                s.name, s.kind, s.encoding, macs, s.ann_macs / samples, s.input_rate, s.binary, s.steps,
                sops, energy, s.counted,
            ))
        if stats and not any(s.encoding for s in stats):
            notes.append("no encoding layer ran (none marked, and the first synaptic layer received binary "
                         "spikes): every synaptic layer is charged E_AC per SOP")
        neurons = [NeuronRate(n.name, n.kind, n.levels, n.rate, n.rate_per_virtual_step, n.binary)
                   for n in monitor.neurons.values()]
        return cls(layers, neurons, samples, e_mac_pj, e_ac_pj, notes)

    # -- totals (per sample) ---------------------------------------------------------------
    @property
    def encoding_macs(self) -> float:
        """MACs of the encoding layer(s) per sample, distinct time steps only."""
        return sum(l.macs for l in self.layers if l.encoding)

    @property
    def total_sops(self) -> float:
        """Synaptic operations per sample over all non-encoding layers."""
        return sum(l.sops for l in self.layers if not l.encoding)

    @property
    def snn_energy_pj(self) -> float:
        """``E_MAC * encoding MACs + E_AC * SOPs`` per sample, picojoules."""
        return sum(l.energy_pj for l in self.layers)

    @property
    def ann_macs(self) -> float:
        """MACs per sample of the same network as an ANN (one step, no virtual steps)."""
        return sum(l.ann_macs for l in self.layers)

    @property
    def ann_energy_pj(self) -> float:
        """``E_MAC * ann_macs`` per sample, picojoules."""
        return self.e_mac_pj * self.ann_macs

    @property
    def snn_energy_uj(self) -> float:
        """SNN energy per sample, microjoules."""
        return self.snn_energy_pj * 1e-6

    @property
    def snn_energy_mj(self) -> float:
        """SNN energy per sample, millijoules."""
        return self.snn_energy_pj * 1e-9

    @property
    def ratio(self) -> float:
        """SNN energy / ANN energy (``inf`` if the ANN costs nothing)."""
        return self.snn_energy_pj / self.ann_energy_pj if self.ann_energy_pj else float("inf")

    # -- output ----------------------------------------------------------------------------
    def table(self) -> str:
        """Aligned text tables: synaptic layers, neuron firing rates, totals. Counts are per sample;
        a non-encoding layer with non-binary input shows ``NO`` (it is not spike-driven)."""
        head = ("layer", "kind", "enc", "steps", "in rate", "binary", "MACs", "ANN MACs", "SOPs", "energy")
        rows = [head] + [(
            l.name, l.kind, "yes" if l.encoding else "", f"{l.steps:g}", f"{l.input_rate:.4f}",
            "yes" if l.binary else ("no" if l.encoding else "NO"), _si(l.macs), _si(l.ann_macs), "-" if l.encoding else _si(l.sops),
            format_energy(l.energy_pj) if l.counted else "?",
        ) for l in self.layers]
        lines = align_table(rows, right_from=3)
        if self.neurons:
            nhead = ("neuron layer", "kind", "D", "rate/step", "rate/virtual step", "binary")
            nrows = [nhead] + [(
                n.name, n.kind, str(n.levels), f"{n.rate:.4f}", f"{n.rate_per_virtual_step:.4f}",
                "yes" if n.binary else "no",
            ) for n in self.neurons]
            lines += [""] + align_table(nrows, right_from=2)
        lines += [
            "",
            f"SNN energy per sample: {format_energy(self.snn_energy_pj)}  "
            f"(E_MAC {self.e_mac_pj:g} pJ x {_si(self.encoding_macs)} encoding MACs + "
            f"E_AC {self.e_ac_pj:g} pJ x {_si(self.total_sops)} SOPs)",
            f"ANN energy per sample: {format_energy(self.ann_energy_pj)}  "
            f"(E_MAC {self.e_mac_pj:g} pJ x {_si(self.ann_macs)} MACs)",
            f"SNN / ANN: {self.ratio:.4f}   ({self.samples} samples)",
        ]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict: per-layer rows, neuron rates and totals (energies in pJ)."""
        return {
            "samples": self.samples,
            "e_mac_pj": self.e_mac_pj,
            "e_ac_pj": self.e_ac_pj,
            "layers": [asdict(l) for l in self.layers],
            "neurons": [asdict(n) for n in self.neurons],
            "encoding_macs": self.encoding_macs,
            "total_sops": self.total_sops,
            "snn_energy_pj": self.snn_energy_pj,
            "ann_macs": self.ann_macs,
            "ann_energy_pj": self.ann_energy_pj,
            "snn_over_ann": self.ratio,
            "snn_energy": format_energy(self.snn_energy_pj),
            "ann_energy": format_energy(self.ann_energy_pj),
            "notes": list(self.notes),
        }

    def to_json(self, path: str | Path | None = None, indent: int = 2) -> str:
        """:meth:`to_dict` as JSON text; also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    def __str__(self) -> str:
        return self.table()


def align_table(rows: list[tuple[str, ...]], right_from: int) -> list[str]:
    """Text table lines: ``rows[0]`` is the header, a rule under it; columns from ``right_from``
    on are right-aligned (numbers), the others left-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [c.ljust(w) if i < right_from else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))]
        out.append("  ".join(cells).rstrip())
    out.insert(1, "-" * len(out[0]))
    return out


def energy_report(
    model: nn.Module,
    x: torch.Tensor,
    e_mac_pj: float = E_MAC_PJ,
    e_ac_pj: float = E_AC_PJ,
    batch_dim: int = 0,
    sparse_weights: bool = False,
) -> EnergyReport:
    """Energy per sample of ``model`` on the batch ``x``, layer by layer.

    Runs ``model(x)`` once in eval mode under ``torch.no_grad()`` (each submodule's mode is
    restored afterwards) with a :class:`SpikeMonitor` attached.

    The **encoding layer** is every ``Synapse`` with ``encoding=True``; in a model without one,
    the first synaptic layer that runs (``Synapse`` or bare), unless the input it receives is
    already binary spikes (event frames), in which case no layer encodes. It is charged ``E_MAC`` per MAC, counted only for the time
    steps whose input differs from the same sample's previous step: a direct-encoded image
    repeated ``T`` times is computed once (hardware keeps the result), while ``T`` distinct frames
    cost ``T`` times as much. Every other synaptic layer is charged ``E_AC`` per SOP,
    ``SOPs = input firing rate x MACs executed`` (which include ``T`` and I-LIF's ``D``).
    The ANN comparison charges ``E_MAC`` for every layer's MACs of one time step.

    Args:
        model: any ``nn.Module`` (built from :mod:`spikedrive.layers` or not).
        x: one batch, as the model takes it (e.g. ``[B, C, H, W]`` or ``[T, B, C, H, W]``).
        e_mac_pj: energy of a multiply-accumulate, picojoules (45 nm: 4.6).
        e_ac_pj: energy of an accumulate, picojoules (45 nm: 0.9).
        batch_dim: where the batch lies in ``x`` (1 for time-major input); energies are per sample.
        sparse_weights: count exactly-zero (pruned) weights as costing nothing (see
            :class:`SpikeMonitor`).

    Returns:
        An :class:`EnergyReport` (per-layer rows, neuron firing rates, totals, SNN / ANN ratio).

    Raises:
        TypeError: the model holds a module with weights the energy model does not know (see
            :func:`spikedrive.layers.unknown_weight_modules`): its work would vanish unnoticed.
    """
    refuse_unknown_weights(model, "energy_report")
    with evaluating(model), SpikeMonitor(model, batch_dim=batch_dim, sparse_weights=sparse_weights) as monitor:
        model(x)
    return EnergyReport.from_monitor(monitor, e_mac_pj, e_ac_pj)
