"""Per-layer sparsity of a pruned model, and its energy with zeros costing nothing."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from ..analysis import EnergyReport, energy_report
from ..analysis.energy import align_table
from .methods import prunable_layers

__all__ = ["LayerSparsity", "SparsityReport", "sparsity_report", "sparse_energy_report"]


@dataclass(frozen=True)
class LayerSparsity:
    """One prunable layer: ``zeros`` exactly-zero weights of ``total``; ``sparsity = zeros / total``."""

    name: str
    shape: tuple[int, ...]
    zeros: int
    total: int

    @property
    def sparsity(self) -> float:
        """Fraction of the layer's weights that are exactly zero, in ``[0, 1]``."""
        return self.zeros / self.total if self.total else 0.0


@dataclass
class SparsityReport:
    """Sparsity of every prunable layer and of all of them together (biases and norms excluded)."""

    layers: list[LayerSparsity]

    @property
    def zeros(self) -> int:
        """Exactly-zero weights over all prunable layers."""
        return sum(l.zeros for l in self.layers)

    @property
    def total(self) -> int:
        """Weights over all prunable layers."""
        return sum(l.total for l in self.layers)

    @property
    def sparsity(self) -> float:
        """Global fraction of zero weights, in ``[0, 1]``."""
        return self.zeros / self.total if self.total else 0.0

    def table(self) -> str:
        """Aligned text: one row per layer (shape, zeros, total, sparsity %) and the global total."""
        rows = [("layer", "shape", "zeros", "total", "sparsity")]
        rows += [(l.name, "x".join(map(str, l.shape)), str(l.zeros), str(l.total), f"{100 * l.sparsity:.2f}%")
                 for l in self.layers]
        rows.append(("all", "", str(self.zeros), str(self.total), f"{100 * self.sparsity:.2f}%"))
        return "\n".join(align_table(rows, right_from=2))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: per-layer rows with their sparsity, and the totals."""
        return {"layers": [{**asdict(l), "shape": list(l.shape), "sparsity": l.sparsity} for l in self.layers],
                "zeros": self.zeros, "total": self.total, "sparsity": self.sparsity}

    def __str__(self) -> str:
        return self.table()


def sparsity_report(model: nn.Module) -> SparsityReport:
    """Exactly-zero weights of every prunable layer of ``model`` (pruned by a mask or permanently,
    or zero for any other reason)."""
    rows = []
    for layer in prunable_layers(model):
        w = layer.weight.detach()
        rows.append(LayerSparsity(layer.name, tuple(w.shape), int((w == 0).sum()), w.numel()))
    return SparsityReport(rows)


def sparse_energy_report(model: nn.Module, x: torch.Tensor, batch_dim: int = 0, **energy: float) -> EnergyReport:
    """:func:`spikedrive.analysis.energy_report` with pruned weights costing nothing: each
    synaptic layer's SOPs are the (non-zero input, non-zero weight) products it executes, and MACs
    (encoding layer, ANN side) count only non-zero weights (``SpikeMonitor(sparse_weights=True)``).

    Args:
        model: the (pruned) model; run once in eval mode without gradients.
        x: one batch as the model takes it.
        batch_dim: where the batch lies in ``x``.
        energy: ``e_mac_pj`` / ``e_ac_pj`` overrides.
    """
    return energy_report(model, x, batch_dim=batch_dim, sparse_weights=True, **energy)
