"""Spiking neurons: multi-step modules over ``[T, B, ...]``, their reference dynamics, surrogate
gradients and the backend dispatch table."""

from .base import SpikingNeuron, set_neuron_backend
from .dispatch import BACKENDS, available_backends, register_kernel, resolve_kernel
from . import kernels  # noqa: F401  (registers the fused backends)
from .functional import expand_integer_spikes, ilif_reference, lif_charges, lif_reference, quantize_integer
from .ilif import ILIF
from .lif import IF, LIF, ParametricLIF
from .surrogate import Atan, Rectangle, Sigmoid, StraightThrough, Surrogate, heaviside

__all__ = [
    "SpikingNeuron", "set_neuron_backend", "LIF", "IF", "ParametricLIF", "ILIF",
    "Surrogate", "Sigmoid", "Atan", "Rectangle", "StraightThrough", "heaviside",
    "lif_reference", "lif_charges", "ilif_reference", "quantize_integer", "expand_integer_spikes",
    "register_kernel", "resolve_kernel", "available_backends", "BACKENDS",
]
