"""Spiking layers: time-distributed wrappers, synapses aware of virtual time steps, BN over time,
pooling, dropout and readouts, spike products, and the spike-driven conversion of I-LIF models."""

from .readout import AdaptiveAvgPool2d, AvgPool2d, Dropout, Flatten, MaxPool2d, MeanOverTime
from .spike_driven import to_integer, to_spike_driven
from .spike_products import SpikeLinearAttention, SpikeMatmul, SpikeProduct
from .time_distributed import (
    SYNAPTIC_TYPES, BatchNorm1d, BatchNorm2d, Conv2d, ConvTranspose2d, Linear, Synapse, TimeDistributed,
)
from .weights import NORM_TYPES, evaluating, refuse_unknown_weights, unknown_weight_modules

__all__ = [
    "TimeDistributed", "Synapse", "Conv2d", "ConvTranspose2d", "Linear", "BatchNorm2d", "BatchNorm1d",
    "SYNAPTIC_TYPES", "NORM_TYPES", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Flatten", "Dropout",
    "MeanOverTime", "SpikeProduct", "SpikeMatmul", "SpikeLinearAttention", "to_spike_driven", "to_integer",
    "unknown_weight_modules", "refuse_unknown_weights", "evaluating",
]
from .temporal_attention import TemporalAttention  # noqa: E402
from .md_attention import MultiDimensionalAttention  # noqa: E402
from .asa import AdvanceSpatialAttention  # noqa: E402

__all__ += ["TemporalAttention", "MultiDimensionalAttention", "AdvanceSpatialAttention"]
