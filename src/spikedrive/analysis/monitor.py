"""Firing rates and executed operations of any ``nn.Module``, gathered through forward hooks.

:class:`SpikeMonitor` hooks every :class:`~spikedrive.neurons.SpikingNeuron` (output spikes),
every synaptic layer (input statistics and MACs executed, see :mod:`.ops`) and every module that
declares spike inputs, sums over as many forward calls as it observes, and removes its hooks on
exit. It never needs to know which model it watches.

Layout of a synaptic layer's input (what one *item* is):

* ``Synapse``: ``[S, B, ...]`` with ``S = T`` steps, or ``T * D`` virtual steps in spike-driven
  mode; an item is one (step, sample) pair, so executed MACs carry the ``T`` and ``D`` factors.
* bare ``nn.Conv*d``: ``[N, C, ...]``; when ``N`` is a multiple of the model's batch size ``B``
  (read from the model's input at ``batch_dim``) it is taken as time folded into the batch,
  ``N = T * B`` time-major, otherwise as ``N`` samples of one step.
* bare ``nn.Linear``: ``[T, B, ..., F]`` (time-major, the house convention) when its second dim
  equals ``B``, otherwise ``[N, ..., F]`` read like a bare convolution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..layers import Synapse, evaluating
from ..neurons import SpikingNeuron
from .ops import is_binary, is_synaptic, macs_per_item, non_binary_values, nonzero_pairs, takes_spikes, weight_layer

__all__ = ["NeuronStats", "SynapseStats", "SpikeMonitor", "evaluating"]

#: How many offending values a synaptic layer keeps for error messages.
_KEEP_BAD_VALUES = 5


@dataclass
class NeuronStats:
    """Output spikes of one neuron layer, summed over the calls observed.

    ``spikes`` is the total spike count (integer spikes summed as integers, virtual steps summed);
    ``slots`` is neurons x real time steps x samples. ``levels`` is I-LIF's ``D`` (1 for binary
    neurons).
    """

    name: str
    kind: str
    levels: int = 1
    calls: int = 0
    spikes: float = 0.0
    slots: int = 0
    binary: bool = True

    @property
    def rate(self) -> float:
        """Mean spikes per neuron per time step (for I-LIF the mean integer, in ``[0, D]``)."""
        return self.spikes / self.slots if self.slots else 0.0

    @property
    def rate_per_virtual_step(self) -> float:
        """:attr:`rate` divided by ``D``: spikes per neuron per virtual step, in ``[0, 1]``."""
        return self.rate / self.levels


@dataclass
class SynapseStats:
    """Input and work of one synaptic layer (or spike-input module), summed over the calls observed.

    Counts are totals over all samples seen; divide by :attr:`SpikeMonitor.samples` for per-sample
    figures. ``macs`` are the MACs executed on the actual input (``items x MACs per item``);
    ``ann_macs`` the MACs of one time step per sample seen (an ANN of the same shape, no virtual
    steps); ``sops`` sums ``input rate x MACs`` call by call; ``computed_macs`` counts only items
    whose input differs from the same sample's previous step (meaningful for the encoding layer,
    where a repeated frame's result can be reused).
    """

    name: str
    kind: str
    encoding: bool = False
    spike_input_module: bool = False
    counted: bool = True
    ann_counted: bool = True
    virtual_steps: int = 1
    calls: int = 0
    items: int = 0
    samples: int = 0
    input_sum: float = 0.0
    input_numel: int = 0
    binary: bool = True
    bad_values: list[float] = field(default_factory=list)
    macs: int = 0
    ann_macs: float = 0
    computed_macs: int = 0
    sops: float = 0.0

    @property
    def input_rate(self) -> float:
        """Mean of the input over everything seen (a firing rate for binary input; the mean
        integer for I-LIF's integer spikes)."""
        return self.input_sum / self.input_numel if self.input_numel else 0.0

    @property
    def steps(self) -> float:
        """Leading items per sample: ``T``, or ``T * D`` for virtual steps."""
        return self.items / self.samples if self.samples else 0.0


def _first_tensor(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor | None:
    for a in (*args, *kwargs.values()):
        if isinstance(a, torch.Tensor):
            return a
    return None


def _layout(module: nn.Module, x: torch.Tensor, batch: int | None) -> tuple[int, int]:
    """``(items, samples)`` of a synaptic layer's input; see the module docstring."""
    if isinstance(module, Synapse):
        return x.shape[0] * x.shape[1], x.shape[1]
    m = weight_layer(module)
    if isinstance(m, nn.Linear) and x.dim() >= 3 and batch is not None and x.shape[1] == batch:
        return x.shape[0] * x.shape[1], batch
    unbatched_dim = 1 if isinstance(m, nn.Linear) else len(m.kernel_size) + 1  # type: ignore[arg-type]
    items = 1 if x.dim() <= unbatched_dim else x.shape[0]
    samples = batch if batch is not None and items % batch == 0 else items
    return items, samples


def _distinct_items(x: torch.Tensor, items: int, samples: int) -> int:
    """Items whose input differs from the same sample's previous step (the first step counts)."""
    steps = items // samples
    if steps <= 1:
        return items
    frames = x.detach().reshape(steps, samples, -1)
    changed = (frames[1:] != frames[:-1]).any(dim=-1)  # [steps - 1, samples]
    return samples + int(changed.sum())


class SpikeMonitor:
    """Hooks a model's neurons and synaptic layers; use as a context manager.

    >>> with SpikeMonitor(model) as mon:
    ...     for x, _ in loader:
    ...         model(x)
    >>> mon.firing_rates()        # {"features.2": 0.13, ...} spikes per neuron per time step

    Args:
        model: any ``nn.Module``.
        batch_dim: where the batch lies in the model's first tensor argument (0 for ``[B, ...]``,
            1 for time-major ``[T, B, ...]``); used for per-sample figures and to read bare layers'
            inputs.
        sparse_weights: count exactly-zero (pruned) weights as costing nothing: a synaptic layer's
            SOPs are then the products of a non-zero input with a non-zero weight it executes
            (:func:`~spikedrive.analysis.ops.nonzero_pairs`), not ``input rate x MACs``, and its
            MACs (encoding layer, ANN side) count only non-zero weights. With dense weights this
            differs from the default only by padding taps, which are not inputs and cost nothing.

    Attributes:
        neurons: ``name -> NeuronStats`` for every ``SpikingNeuron`` that ran.
        synapses: ``name -> SynapseStats`` for every synaptic layer or spike-input module that ran,
            in order of first call.
        samples: samples seen by the model's forward.
    """

    def __init__(self, model: nn.Module, batch_dim: int = 0, sparse_weights: bool = False) -> None:
        self.model = model
        self.batch_dim = batch_dim
        self.sparse_weights = bool(sparse_weights)
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        # Layers marked `encoding=True` decide; otherwise the first synaptic layer to run encodes
        # (when its input is not already binary spikes).
        self._marked = any(isinstance(m, Synapse) and m.encoding for m in model.modules())
        self.reset()

    # -- lifecycle -------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything observed so far (hooks stay)."""
        self.neurons: dict[str, NeuronStats] = {}
        self.synapses: dict[str, SynapseStats] = {}
        self.samples = 0
        self.forward_calls = 0
        self._batch: int | None = None
        self._first_synaptic: str | None = None
        self._first_encodes = False

    def attach(self) -> "SpikeMonitor":
        """Register the hooks (idempotent)."""
        if self._handles:
            return self
        wrapped = {id(m.module) for m in self.model.modules() if isinstance(m, Synapse)}
        self._handles.append(self.model.register_forward_pre_hook(self._on_model, with_kwargs=True))
        for name, m in self.model.named_modules():
            name = name or "(model)"
            if isinstance(m, SpikingNeuron):
                self._handles.append(m.register_forward_hook(self._neuron_hook(name)))
            elif is_synaptic(m):
                # A Synapse's inner layer is counted through the Synapse (which may skip calling it).
                if id(m) not in wrapped:
                    self._handles.append(m.register_forward_hook(self._synapse_hook(name), with_kwargs=True))
            elif takes_spikes(m):
                self._handles.append(m.register_forward_hook(self._spike_input_hook(name), with_kwargs=True))
        return self

    def remove(self) -> None:
        """Remove every hook this monitor registered."""
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def __enter__(self) -> "SpikeMonitor":
        return self.attach()

    def __exit__(self, *exc: object) -> None:
        self.remove()

    # -- hooks -----------------------------------------------------------------------------
    def _on_model(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        x = _first_tensor(args, kwargs)
        self.forward_calls += 1
        if x is not None and x.dim() > self.batch_dim:
            self._batch = int(x.shape[self.batch_dim])
            self.samples += self._batch

    def _neuron_hook(self, name: str):
        def hook(module: nn.Module, args: tuple[Any, ...], out: torch.Tensor) -> None:
            if not isinstance(out, torch.Tensor):
                return
            levels, expanded = module.levels, module.expanded
            st = self.neurons.get(name)
            if st is None:
                st = self.neurons[name] = NeuronStats(name, type(module).__name__, levels)
            st.calls += 1
            st.spikes += float(out.detach().sum(dtype=torch.float64))
            # Expanded I-LIF output holds D virtual steps per real step.
            st.slots += out.numel() // levels if expanded else out.numel()
            st.binary = st.binary and is_binary(out)
        return hook

    def _stats(self, name: str, module: nn.Module, encoding: bool, **kw: Any) -> SynapseStats:
        st = self.synapses.get(name)
        if st is None:
            st = self.synapses[name] = SynapseStats(name, type(weight_layer(module)).__name__, encoding, **kw)
        return st

    def _record_input(self, st: SynapseStats, xs: list[torch.Tensor]) -> float:
        """Accumulate input statistics; returns this call's input mean."""
        st.calls += 1
        total, numel = 0.0, 0
        for x in xs:
            x = x.detach()
            total += float(x.sum(dtype=torch.float64))
            numel += x.numel()
            if not is_binary(x):
                st.binary = False
                if len(st.bad_values) < _KEEP_BAD_VALUES:
                    st.bad_values.extend(non_binary_values(x, _KEEP_BAD_VALUES - len(st.bad_values)))
        st.input_sum += total
        st.input_numel += numel
        return total / numel if numel else 0.0

    def _synapse_hook(self, name: str):
        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], out: torch.Tensor) -> None:
            x = _first_tensor(args, kwargs)
            if x is None or not isinstance(out, torch.Tensor) or x.numel() == 0:
                return
            if self._first_synaptic is None:
                self._first_synaptic = name
                self._first_encodes = not is_binary(x)
            if self._marked:
                encoding = isinstance(module, Synapse) and module.encoding
            else:
                # One rule for Synapse and bare layers: with no layer marked, the first synaptic
                # layer to run encodes, unless its input is already spikes (event frames).
                encoding = name == self._first_synaptic and self._first_encodes
            st = self._stats(name, module, encoding)
            st.virtual_steps = d = getattr(module, "virtual_steps", 1)
            items, samples = _layout(module, x, self._batch)
            if isinstance(module, Synapse) and self._batch is not None and samples != self._batch:
                # A Synapse knows its batch ([T, B, ...]); per-sample figures would be off by T/B.
                raise ValueError(
                    f"batch_dim={self.batch_dim} reads a batch of {self._batch} from the model's input, but "
                    f"layer {name!r} sees a batch of {samples}; pass batch_dim=1 for time-major [T, B, ...] input")
            rate = self._record_input(st, [x])
            st.items += items
            st.samples += samples
            if self.sparse_weights:
                # Exact counts: zeros in the input or in the weight cost nothing. Every item has
                # the same shape, so the all-ones input gives items x (MACs per item).
                per_item = round(nonzero_pairs(module, torch.ones_like(x)) / items)
                st.sops += nonzero_pairs(module, x)
            else:
                # Output has one entry per real step: divide by real items, not virtual ones.
                per_item = macs_per_item(module, x, out, items // d, input_items=items)
                st.sops += rate * items * per_item
            st.macs += items * per_item
            st.ann_macs += samples * per_item
            if st.encoding:
                st.computed_macs += _distinct_items(x, items, samples) * per_item
        return hook

    def _spike_input_hook(self, name: str):
        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
            xs = [a for a in args if isinstance(a, torch.Tensor)]
            count = getattr(module, "count_sops", None)
            dense = getattr(module, "count_macs", None)
            st = self._stats(name, module, False, spike_input_module=True, counted=count is not None,
                             ann_counted=dense is not None)
            self._record_input(st, xs)
            if count is not None:
                st.sops += float(count(*xs))
            if dense is not None:
                # The ANN executes the same product densely, one time step per sample.
                st.ann_macs += float(dense(*xs))
        return hook

    # -- results ---------------------------------------------------------------------------
    def firing_rates(self) -> dict[str, float]:
        """``neuron layer name -> mean spikes per neuron per time step``."""
        return {n: s.rate for n, s in self.neurons.items()}
