"""What counts as a synaptic layer, and how many multiply-accumulates one executes.

Pure functions over modules and tensors, shared by the monitor, the energy model and the
spike-driven check.

Two kinds of modules receive spikes:

* **synaptic layers**: :class:`~spikedrive.layers.Synapse`, and bare ``nn.Conv1d/2d/3d``,
  ``nn.ConvTranspose1d/2d/3d`` / ``nn.Linear`` for models not built from :mod:`spikedrive.layers`;
* **spike-input modules** (the hook for attention products such as SDSA's ``Q ⊙ K``): any module
  with the attribute ``spike_inputs = True`` (class or instance), or a subclass of the marker
  :class:`SpikeInputs`. Every tensor it receives positionally must be binary in a spike-driven
  model. Their operation count cannot be derived from a weight shape, so such a module may define
  ``count_sops(*inputs) -> float``, the accumulates it executes on those inputs, and
  ``count_macs(*inputs) -> float``, the multiply-accumulates of one time step of the same
  operation on real values (the ANN side of the comparison); without them the energy model
  counts zero on that side and says so in a note.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..layers import SYNAPTIC_TYPES, Synapse

__all__ = [
    "SpikeInputs", "takes_spikes", "is_synaptic", "weight_layer", "fan_in", "fan_out", "macs_per_item",
    "is_binary", "non_binary_values", "nonzero_pairs",
]


class SpikeInputs:
    """Marker mix-in: ``class SpikeProduct(SpikeInputs, nn.Module)`` declares that every tensor
    passed positionally to ``forward`` must be binary spikes (checked by
    :func:`~spikedrive.analysis.assert_spike_driven`). Equivalent to ``spike_inputs = True``."""

    spike_inputs: bool = True


def takes_spikes(module: nn.Module) -> bool:
    """Whether ``module`` declares spike inputs (``spike_inputs = True`` or :class:`SpikeInputs`)."""
    return bool(getattr(module, "spike_inputs", False))


def is_synaptic(module: nn.Module) -> bool:
    """Whether ``module`` multiplies weights by its input: a ``Synapse`` or a bare conv / linear."""
    return isinstance(module, Synapse) or isinstance(module, SYNAPTIC_TYPES)


def weight_layer(module: nn.Module) -> nn.Module:
    """The ``nn.Conv*d`` / ``nn.Linear`` doing the work (unwraps a ``Synapse``)."""
    return module.module if isinstance(module, Synapse) else module


def _is_transposed(m: nn.Module) -> bool:
    return isinstance(m, nn.modules.conv._ConvTransposeNd)


def fan_in(module: nn.Module) -> int:
    """Multiply-accumulates per output element: ``in_features`` for a linear layer,
    ``in_channels / groups * prod(kernel_size)`` for a convolution (bias additions not counted).
    A transposed convolution has no fixed fan-in (border outputs receive fewer terms): count its
    work with :func:`fan_out`."""
    m = weight_layer(module)
    if isinstance(m, nn.Linear):
        return m.in_features
    if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return m.in_channels // m.groups * math.prod(m.kernel_size)
    raise TypeError(f"fan_in: module must be a Synapse, nn.Conv1d/2d/3d or nn.Linear, got {type(m).__name__}")


def fan_out(module: nn.Module) -> int:
    """Multiply-accumulates per *input* element of a transposed convolution: each input value is
    scattered through ``out_channels / groups * prod(kernel_size)`` weights."""
    m = weight_layer(module)
    if not _is_transposed(m):
        raise TypeError(f"fan_out: module must be a transposed convolution, got {type(m).__name__}")
    return m.out_channels // m.groups * math.prod(m.kernel_size)


def macs_per_item(module: nn.Module, x: torch.Tensor, output: torch.Tensor, items: int,
                  input_items: int | None = None) -> int:
    """MACs one leading item of the input (one time step, or one virtual step, of one sample)
    costs. Convolutions and linear layers: output elements per item times :func:`fan_in`;
    transposed convolutions: input elements per item times :func:`fan_out`, so a spike-driven
    layer's SOPs (input rate x MACs) count exactly the weights its non-zero inputs touch.

    Args:
        module: the synaptic layer.
        x, output: its input and output.
        items: leading items of ``output`` (real time steps x samples).
        input_items: leading items of ``x`` (``items x D`` with virtual steps; default ``items``).
    """
    if items <= 0:
        raise ValueError(f"macs_per_item: items must be > 0, got {items}")
    if _is_transposed(weight_layer(module)):
        return x.numel() // (input_items or items) * fan_out(module)
    return output.numel() // items * fan_in(module)


def nonzero_pairs(module: nn.Module, x: torch.Tensor) -> float:
    """Products of a non-zero input with a non-zero weight that ``module`` executes on ``x``: the
    accumulates of a layer that skips both silent inputs and pruned (exactly zero) weights.

    Convolutions and linear layers: ``sum(op(x != 0, weight != 0))`` with the layer's own stride,
    padding, dilation and groups (padding taps are not inputs, so they cost nothing). Transposed
    convolutions, in :func:`fan_out`'s convention: each non-zero input of channel ``c`` costs the
    non-zero weights it scatters through (``count_nonzero(weight[c])``). Bias additions are not
    counted. ``x`` is the layer's input as it receives it (a ``Synapse``'s ``[S, B, ...]``, with
    ``S`` real or virtual steps, or a bare layer's).
    """
    m = weight_layer(module)
    xi = (x.detach() != 0).to(torch.float64)
    wi = (m.weight.detach() != 0).to(torch.float64)
    if isinstance(module, Synapse):
        xi = xi.flatten(0, 1)
    if isinstance(m, nn.Linear):
        return float(torch.nn.functional.linear(xi, wi).sum())
    spatial = len(m.kernel_size)  # type: ignore[arg-type]
    if xi.dim() == spatial + 1:
        xi = xi.unsqueeze(0)
    if _is_transposed(m):
        per_channel = wi.flatten(1).sum(1)  # [in]: non-zero weights each input channel scatters through
        return float((xi.transpose(0, 1).flatten(1).sum(1) * per_channel).sum())
    return float(m._conv_forward(xi, wi, None).sum())  # type: ignore[union-attr]


def is_binary(x: torch.Tensor) -> bool:
    """Exactly 0.0 or 1.0 everywhere (NaN and ``1 + 1e-7`` are not binary)."""
    return bool(((x == 0) | (x == 1)).all())


def non_binary_values(x: torch.Tensor, limit: int = 5) -> list[float]:
    """Up to ``limit`` distinct values of ``x`` outside {0, 1}, as Python floats (NaN included)."""
    bad = x[~((x == 0) | (x == 1))].detach().flatten()
    if bad.numel() == 0:
        return []
    # unique() sorts and would drop all but one NaN anyway; the first few distinct values suffice.
    return [float(v) for v in torch.unique(bad[:10_000].float().cpu())[:limit]]
