"""Observe any ``nn.Module`` through hooks: firing rates, synaptic operations, the 45 nm energy
model, the spike-driven check, plots, and the activation memory a step saves for backward.
Nothing here knows which model it watches."""

from .energy import E_AC_PJ, E_MAC_PJ, EnergyReport, LayerEnergy, NeuronRate, energy_report, format_energy
from ..layers import evaluating
from .memory import saved_bytes_for_backward
from .monitor import NeuronStats, SpikeMonitor, SynapseStats
from .ops import SpikeInputs, fan_in, fan_out, is_binary, is_synaptic, takes_spikes
from .plots import plot_firing_rates
from .spike_driven import NotSpikeDrivenError, SpikeDrivenSummary, assert_spike_driven
from .spike_stats import SpikeStatistics, plot_spike_statistics, spike_statistics

__all__ = [
    "SpikeMonitor", "NeuronStats", "SynapseStats", "evaluating",
    "energy_report", "EnergyReport", "LayerEnergy", "NeuronRate", "format_energy", "E_MAC_PJ", "E_AC_PJ",
    "assert_spike_driven", "NotSpikeDrivenError", "SpikeDrivenSummary",
    "SpikeInputs", "takes_spikes", "is_synaptic", "fan_in", "fan_out", "is_binary",
    "plot_firing_rates", "SpikeStatistics", "spike_statistics", "plot_spike_statistics",
    "saved_bytes_for_backward",
]
