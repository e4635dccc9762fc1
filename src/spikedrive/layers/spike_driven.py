"""Switching an I-LIF model between integer training and spike-driven inference."""

from __future__ import annotations

from torch import nn

from ..neurons import ILIF, SpikingNeuron
from .time_distributed import SYNAPTIC_TYPES, Synapse

__all__ = ["to_spike_driven", "to_integer"]


def _check_synapses_wrapped(model: nn.Module, who: str) -> list[Synapse]:
    synapses = [m for m in model.modules() if isinstance(m, Synapse)]
    wrapped = {id(s.module) for s in synapses}
    bare = [name for name, m in model.named_modules() if isinstance(m, SYNAPTIC_TYPES) and id(m) not in wrapped]
    if bare:
        raise TypeError(
            f"{who}: weight layers {bare} are not wrapped in spikedrive.layers.Synapse, so they "
            "could not sum I-LIF's virtual time steps; build the model from spikedrive.layers"
        )
    return synapses


def _set_mode(model: nn.Module, enabled: bool) -> nn.Module:
    who = "to_spike_driven" if enabled else "to_integer"
    neurons = [m for m in model.modules() if isinstance(m, ILIF)]
    if not neurons:
        raise ValueError(f"{who}: the model has no ILIF neurons; it is already binary")
    # Every non-encoding synapse will sum D virtual steps, so every one must be fed by I-LIF: a
    # binary neuron in the model would have its real time steps summed in groups of D.
    others = sorted({type(m).__name__ for m in model.modules() if isinstance(m, SpikingNeuron) and not isinstance(m, ILIF)})
    if others:
        raise ValueError(f"{who}: the model mixes ILIF with {others} neurons; spike-driven conversion needs "
                         "every spiking neuron to be an ILIF")
    levels = {n.D for n in neurons}
    if len(levels) != 1:
        raise ValueError(f"{who}: all ILIF neurons must share D, found D in {sorted(levels)}")
    (D,) = levels
    synapses = _check_synapses_wrapped(model, who)
    for n in neurons:
        n.to_spike_driven(enabled)
    for s in synapses:
        if not s.encoding:
            s.virtual_steps = D if enabled else 1
    return model


def to_spike_driven(model: nn.Module) -> nn.Module:
    """Make an I-LIF model spike-driven, in place, and return it.

    Every ILIF emits ``D`` binary virtual steps per time step, and every non-encoding
    :class:`~spikedrive.layers.Synapse` sums them back, so outputs equal the integer model's (to
    float tolerance) while every weight layer but the encoding one only accumulates binary
    spikes. Assumes, as in SpikeYOLO, that each non-encoding weight layer is fed by I-LIF neurons
    (possibly through pooling), and refuses models that hold any other kind of spiking neuron;
    :func:`spikedrive.analysis.assert_spike_driven` verifies the result on data.
    """
    return _set_mode(model, True)


def to_integer(model: nn.Module) -> nn.Module:
    """Undo :func:`to_spike_driven`: I-LIF emits integers again (for training)."""
    return _set_mode(model, False)
