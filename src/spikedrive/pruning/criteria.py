"""Importance scores of the criteria, and the statistics the spiking criterion measures.

Spiking criterion (Yao et al. 2023, arXiv 2305.12148; METHODS.md "Lottery tickets in SNNs"):
for a weight ``w_ij`` from input channel ``i`` to output channel ``j`` of a synaptic layer that
feeds (through an optional batch norm) a spiking neuron layer,

``P_ij = r_i * |w_ij| * |gamma_j| / sqrt(sigma_j^2 + eps) * N(0 | mu_j - V_th, var_j)``

* ``r_i``: firing rate of input channel ``i`` (mean of the layer's input over time, batch and
  space), so ``r_i |w_ij|`` approximates ``E_act[|w_ij|]``;
* ``gamma_j``, ``sigma_j^2``, ``eps``: the following batch norm's scale, running variance and
  epsilon (1, 1, 0 when the layer has no batch norm);
* ``N(0 | mu_j - V_th, var_j) = exp(-(mu_j - V_th)^2 / (2 var_j)) / sqrt(2 pi var_j)``: the
  Gaussian density at the threshold of output channel ``j``'s membrane potential.

**What is measured as the membrane.** Neurons keep the membrane inside their forward, so a
forward pre-hook takes the neuron layer's input current ``X [T, B, C, ...]`` and replays the
neuron's charge equation on it (:func:`spikedrive.neurons.lif_charges`): ``H_t`` is the charge
*before* the spike decision at step ``t`` (``H = V + (X - (V - V_reset)) / tau`` with
``decay_input``, else ``H = V - (V - V_reset) / tau + X``; spike ``H >= V_th``; hard or soft
reset). ``mu_j`` and ``var_j`` are the mean and (population) variance of ``H`` over all steps,
samples and positions of channel ``j``, pooled over the batches given. In a residual block the
neuron's input is the sum of the block's branch and its shortcut: that sum is the membrane that
crosses the threshold, so both convolutions feeding it share its ``mu_j, var_j``.

**Which neuron follows a layer** is read from one traced forward: the batch norm whose input is
the layer's output tensor, then the first spiking neuron called after it (after the layer itself
when no batch norm takes its output).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

import torch
from torch import nn

from ..layers import TimeDistributed, evaluating
from ..neurons import LIF, SpikingNeuron, lif_charges
from .methods import PrunableLayer, prunable_layers

__all__ = ["CRITERIA", "LayerStats", "measure_spiking_stats", "spiking_scores", "magnitude_scores"]

CRITERIA = ("magnitude", "random", "spiking")


@dataclass
class LayerStats:
    """What the spiking criterion measured for one prunable layer.

    Attributes:
        input_rate: mean input per input channel/feature ``[C_in]`` (a firing rate for spikes).
        bn_scale: ``|gamma_j| / sqrt(running_var_j + eps)`` per output channel ``[C_out]``.
        mu, var: mean and variance of the following neuron layer's charge ``H`` per channel
            ``[C_out]``, in units of the membrane (threshold ``v_threshold``).
        v_threshold: that neuron layer's threshold.
        neuron: its module name; ``bn``: the batch norm's module name (``None`` without one).
    """

    input_rate: torch.Tensor
    bn_scale: torch.Tensor
    mu: torch.Tensor
    var: torch.Tensor
    v_threshold: float
    neuron: str
    bn: str | None = None

    @property
    def density(self) -> torch.Tensor:
        """``N(0 | mu - V_th, var)`` per output channel ``[C_out]``."""
        var = self.var.clamp_min(1e-12)
        return torch.exp(-(self.mu - self.v_threshold) ** 2 / (2 * var)) / torch.sqrt(2 * math.pi * var)


class _Moments:
    """Per-channel running sums (channel dim 2 of ``[T, B, C, ...]``, in float64)."""

    def __init__(self) -> None:
        self.n = 0
        self.s: torch.Tensor | None = None
        self.s2: torch.Tensor | None = None

    def add(self, x: torch.Tensor) -> None:
        flat = x.detach().double().transpose(0, 2).reshape(x.shape[2], -1)  # [C, rest]
        s, s2 = flat.sum(1).cpu(), (flat * flat).sum(1).cpu()
        self.s = s if self.s is None else self.s + s
        self.s2 = s2 if self.s2 is None else self.s2 + s2
        self.n += flat.shape[1]

    def mean(self) -> torch.Tensor:
        assert self.s is not None
        return self.s / self.n

    def var(self) -> torch.Tensor:
        assert self.s2 is not None
        return (self.s2 / self.n - self.mean() ** 2).clamp_min(0.0)


def _charge(neuron: LIF, x: torch.Tensor) -> torch.Tensor:
    """Per-step pre-spike membrane ``H [T, ...]`` of ``neuron`` driven by current ``x [T, ...]``."""
    return lif_charges(x, inv_tau=neuron._inv_tau(), v_threshold=neuron.v_threshold, v_reset=neuron.v_reset,
                       decay_input=neuron.decay_input)


def _is_norm(m: nn.Module) -> bool:
    inner = m.module if isinstance(m, TimeDistributed) else m
    return isinstance(inner, nn.modules.batchnorm._BatchNorm)


def _as_time_major(x: torch.Tensor) -> torch.Tensor:
    """A synaptic layer's input as ``[T, B, C, ...]`` (a linear layer's ``[T, B, F]`` already is)."""
    if x.dim() < 3:
        raise ValueError(f"spiking criterion: expected a time-major input [T, B, C, ...], got shape {tuple(x.shape)}")
    return x


def measure_spiking_stats(model: nn.Module, batches: Iterable[Any], layers: list[PrunableLayer] | None = None,
                          ) -> dict[str, LayerStats]:
    """Run ``model`` (eval mode, no gradients) on ``batches`` and measure :class:`LayerStats` of
    every prunable layer that feeds a spiking neuron layer.

    Args:
        model: a model built from :mod:`spikedrive.layers` (``Synapse`` layers, time-major).
        batches: model inputs (tensors as ``model`` takes them), or ``(x, y)`` pairs whose ``x``
            is used. At least one.
        layers: the prunable layers (default :func:`prunable_layers`).

    Returns:
        ``layer name -> LayerStats`` for layers followed by a LIF-type neuron (through an
        optional batch norm); layers followed by none (the classifier) are absent.

    Raises:
        ValueError: no batch, or a following neuron whose channel count differs from the layer's.
        TypeError: the following neuron is not a LIF-type neuron (its charge equation is unknown).
    """
    layers = layers if layers is not None else prunable_layers(model)
    by_owner = {id(layer.owner): layer for layer in layers}
    names = {id(m): n for n, m in model.named_modules()}
    rates: dict[str, _Moments] = {layer.name: _Moments() for layer in layers}
    charges: dict[int, _Moments] = {}
    order: list[tuple[str, Any]] = []  # (kind, payload) in call order, first batch only
    outputs: dict[int, str] = {}  # id of a synaptic output tensor -> layer name
    alive: list[torch.Tensor] = []  # keeps those tensors alive so their ids are not reused
    first = [True]

    def on_synapse(module: nn.Module, args: tuple[Any, ...], out: torch.Tensor) -> None:
        layer = by_owner[id(module)]
        rates[layer.name].add(_as_time_major(args[0]))
        if first[0]:
            order.append(("synapse", layer.name))
            outputs[id(out)] = layer.name
            alive.append(out)

    def on_norm(module: nn.Module, args: tuple[Any, ...], out: torch.Tensor) -> None:
        if first[0]:
            order.append(("norm", (module, outputs.get(id(args[0])))))

    def on_neuron(module: nn.Module, args: tuple[Any, ...]) -> None:
        if isinstance(module, LIF):
            charges.setdefault(id(module), _Moments()).add(_charge(module, args[0].detach()))
        if first[0]:
            order.append(("neuron", module))

    handles = []
    wrapped = {id(w.module) for w in model.modules() if isinstance(w, TimeDistributed)}
    for m in model.modules():
        if id(m) in by_owner:
            handles.append(m.register_forward_hook(on_synapse))
        elif _is_norm(m) and not (isinstance(m, nn.modules.batchnorm._BatchNorm) and id(m) in wrapped):
            handles.append(m.register_forward_hook(on_norm))
        elif isinstance(m, SpikingNeuron):
            handles.append(m.register_forward_pre_hook(on_neuron))
    seen = 0
    try:
        with evaluating(model):
            for batch in batches:
                x = batch[0] if isinstance(batch, (tuple, list)) else batch
                model(x.to(_device(model)))
                first[0] = False
                outputs.clear()
                alive.clear()
                seen += 1
    finally:
        for h in handles:
            h.remove()
    if not seen:
        raise ValueError("measure_spiking_stats: batches is empty; the spiking criterion needs training batches")
    return _link(order, layers, rates, charges, names)


def _device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _link(order: list[tuple[str, Any]], layers: list[PrunableLayer], rates: dict[str, _Moments],
          charges: dict[int, _Moments], names: dict[int, str]) -> dict[str, LayerStats]:
    """Pair each layer with its batch norm and the next neuron called after it (module doc)."""
    by_name = {layer.name: layer for layer in layers}
    result: dict[str, LayerStats] = {}
    for pos, (kind, payload) in enumerate(order):
        if kind != "synapse" or payload in result:
            continue
        layer = by_name[payload]
        bn, start = None, pos + 1
        for p2 in range(pos + 1, len(order)):
            k2, pl2 = order[p2]
            if k2 == "norm" and pl2[1] == layer.name:
                bn, start = pl2[0], p2 + 1
                break
        neuron = next((pl for k, pl in order[start:] if k == "neuron"), None)
        if neuron is None:
            continue
        if not isinstance(neuron, LIF):
            raise TypeError(f"spiking criterion: layer {layer.name!r} feeds {names[id(neuron)]!r} "
                            f"({type(neuron).__name__}); only LIF-type neurons (LIF, IF, ParametricLIF) have "
                            "the charge equation it replays")
        mom = charges[id(neuron)]
        out_channels = layer.module.weight.shape[1 if _transposed(layer.module) else 0]
        if mom.s is None or mom.s.numel() != out_channels:
            got = None if mom.s is None else mom.s.numel()
            raise ValueError(f"spiking criterion: layer {layer.name!r} has {out_channels} output channels but "
                             f"the neuron layer after it, {names[id(neuron)]!r}, has {got} channels (dim 2)")
        result[layer.name] = LayerStats(
            input_rate=rates[layer.name].mean().float(), bn_scale=_bn_scale(bn, out_channels),
            mu=mom.mean().float(), var=mom.var().float(), v_threshold=float(neuron.v_threshold),
            neuron=names[id(neuron)], bn=names.get(id(bn)) if bn is not None else None)
    return result


def _transposed(m: nn.Module) -> bool:
    return isinstance(m, nn.modules.conv._ConvTransposeNd)


def _bn_scale(bn: nn.Module | None, channels: int) -> torch.Tensor:
    if bn is None:
        return torch.ones(channels)
    inner = bn.module if isinstance(bn, TimeDistributed) else bn
    gamma = inner.weight.detach().abs().cpu() if inner.weight is not None else torch.ones(channels)
    var = inner.running_var.detach().cpu() if inner.running_var is not None else torch.ones(channels)
    return (gamma / torch.sqrt(var + inner.eps)).float()


def magnitude_scores(layer: PrunableLayer) -> torch.Tensor:
    """``|w|`` of the effective weight (same shape as the weight)."""
    return layer.weight.detach().abs()


def spiking_scores(layer: PrunableLayer, stats: LayerStats) -> torch.Tensor:
    """``P`` (module doc) for every weight of ``layer`` (same shape as the weight)."""
    w = layer.weight.detach()
    m = layer.module
    groups = getattr(m, "groups", 1)
    if _transposed(m):
        raise TypeError(f"spiking criterion: transposed convolution {layer.name!r} is not supported")
    c_out, c_in_g = w.shape[0], w.shape[1]
    rate = stats.input_rate.to(w.device)
    if rate.numel() != c_in_g * groups:
        raise ValueError(f"spiking criterion: layer {layer.name!r} takes {c_in_g * groups} input channels but its "
                         f"input had {rate.numel()} (dim 2)")
    # Input channel of weight [j, i'] is i' of the group that output j belongs to.
    group = torch.arange(c_out, device=w.device) // (c_out // groups)
    r = rate.view(groups, c_in_g)[group]  # [C_out, C_in / groups]
    per_out = (stats.bn_scale * stats.density).to(w.device)  # [C_out]
    extra = (1,) * (w.dim() - 2)
    return r.view(c_out, c_in_g, *extra) * w.abs() * per_out.view(c_out, 1, *extra)
