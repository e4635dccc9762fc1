"""Spiking layers: time-distributed wrappers, synapses aware of virtual time steps, BN over time,
and the spike-driven conversion of I-LIF models."""

from .spike_driven import to_integer, to_spike_driven
from .time_distributed import SYNAPTIC_TYPES, BatchNorm1d, BatchNorm2d, Conv2d, Linear, Synapse, TimeDistributed

__all__ = [
    "TimeDistributed", "Synapse", "Conv2d", "Linear", "BatchNorm2d", "BatchNorm1d", "SYNAPTIC_TYPES",
    "to_spike_driven", "to_integer",
]
