"""Which modules with weights the conversion and the energy model know, and a mode guard.

Every parameter in a model must belong to a module whose work the library can account for:

* synaptic layers (:data:`~spikedrive.layers.SYNAPTIC_TYPES`: convolutions, transposed
  convolutions, linear layers), whose MACs the energy model counts and whose virtual steps the
  spike-driven conversion sums;
* normalisation layers (batch, instance, layer and group norm), folded into the preceding
  synaptic layer at inference and charged nothing;
* spiking neurons (a learnable time constant, a threshold);
* modules that declare themselves: ``nonsynaptic_weights = True`` (their parameters are scales,
  offsets or embeddings that add no synaptic operations) or spike-input modules that count their
  own operations (``count_sops``).

A module that holds parameters and is none of these would be skipped silently by both, so
:func:`unknown_weight_modules` lists them and callers refuse the model.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from ..neurons import SpikingNeuron
from .time_distributed import SYNAPTIC_TYPES

__all__ = ["NORM_TYPES", "unknown_weight_modules", "refuse_unknown_weights", "eval_mode", "evaluating"]

#: Normalisation layers: parameters folded into the preceding synaptic layer at inference.
NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm,
)


def _known(module: nn.Module) -> bool:
    if isinstance(module, SYNAPTIC_TYPES + NORM_TYPES) or isinstance(module, SpikingNeuron):
        return True
    if getattr(module, "nonsynaptic_weights", False):
        return True
    return bool(getattr(module, "spike_inputs", False)) and callable(getattr(module, "count_sops", None))


def unknown_weight_modules(model: nn.Module) -> list[tuple[str, str]]:
    """``(name, class name)`` of every module in ``model`` that owns parameters directly and is
    neither a synaptic layer, a norm, a neuron nor a module that declares itself (module docs)."""
    return [(name or "(model)", type(m).__name__) for name, m in model.named_modules()
            if any(True for _ in m.parameters(recurse=False)) and not _known(m)]


def refuse_unknown_weights(model: nn.Module, who: str) -> None:
    """Raise ``TypeError`` naming every module :func:`unknown_weight_modules` finds."""
    unknown = unknown_weight_modules(model)
    if unknown:
        listed = ", ".join(f"{name} ({kind})" for name, kind in unknown)
        raise TypeError(
            f"{who}: modules with weights it does not know: {listed}. Build weight layers from "
            "spikedrive.layers (Synapse over conv / transposed conv / linear); a module whose own "
            "parameters do no synaptic work may declare `nonsynaptic_weights = True`"
        )


@contextmanager
def seeded(seed: int = 0) -> Iterator[None]:
    """Run with the CPU random generator seeded by ``seed``, restoring its state afterwards (so
    runs that must be compared draw the same stochastic coding)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run ``model`` in eval mode (batch norms on running statistics, no dropout), then restore
    every submodule's own mode: a frozen batch norm inside a training model stays frozen.
    Gradients stay on (attacks need them w.r.t. the input)."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Run ``model`` in eval mode without gradients, then restore every submodule's own mode."""
    with eval_mode(model), torch.no_grad():
        yield model
