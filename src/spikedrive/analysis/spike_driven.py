"""The spike-driven check: every synaptic layer but the encoding one receives only 0/1.

What is checked (see :mod:`.ops`):

* every synaptic layer — ``Synapse``, or bare ``nn.Conv1d/2d/3d`` / ``nn.Linear`` — except the
  encoding layer (``Synapse(encoding=True)``, or in a model without one the first synaptic layer
  that runs);
* every module declaring spike inputs — attribute ``spike_inputs = True`` or the marker class
  :class:`~spikedrive.analysis.SpikeInputs` — on all tensors passed to it positionally. This is
  where attention products (SDSA's ``Q ⊙ K``, spiking ``Q K^T``) plug in: wrap the product in such a
  module and the check covers it, with no change here.

"Binary" is exact: every value equals 0.0 or 1.0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..neurons import SpikingNeuron
from ..layers.weights import evaluating, seeded
from ..layers.spike_driven import conversion_mismatch, outputs_differ
from .monitor import SpikeMonitor, SynapseStats


__all__ = ["NotSpikeDrivenError", "SpikeDrivenSummary", "assert_spike_driven"]


class NotSpikeDrivenError(AssertionError):
    """A synaptic layer other than the encoding layer received a value outside {0, 1}.

    ``offenders`` maps each such layer's name to a few of the values it received.
    """

    def __init__(self, offenders: dict[str, list[float]], message: str) -> None:
        super().__init__(message)
        self.offenders = offenders


@dataclass(frozen=True)
class SpikeDrivenSummary:
    """What :func:`assert_spike_driven` checked: the layers whose inputs were all binary, and the
    encoding layer(s) exempted."""

    checked: tuple[str, ...]
    encoding: tuple[str, ...]

    def __str__(self) -> str:
        return f"spike-driven: {len(self.checked)} layers binary, encoding layer(s) {list(self.encoding)} exempt"


def _describe(s: SynapseStats) -> str:
    what = "spike-input module" if s.spike_input_module else f"{s.kind} layer"
    values = ", ".join(f"{v:g}" for v in s.bad_values)
    return f"  {s.name} ({what}): input mean {s.input_rate:.4g}, values outside {{0, 1}} such as [{values}]"


def assert_spike_driven(model: nn.Module, x: torch.Tensor, batch_dim: int = 0, reference: Any = None,
                        rtol: float = 1e-4, atol: float = 1e-4) -> SpikeDrivenSummary:
    """Run ``model(x)`` and check that it is spike-driven, and that it still computes what it did.

    Runs in eval mode under ``torch.no_grad()``, restoring each submodule's mode afterwards.
    Random draws inside the model (stochastic encoders) are seeded the same way for every run.

    Args:
        model: any ``nn.Module``.
        x: one input batch as the model takes it (e.g. ``[B, C, H, W]`` or ``[T, B, C, H, W]``).
        batch_dim: where the batch lies in ``x`` (only used to read bare layers' inputs).
        reference: the output the model must give on ``x`` (e.g. the integer model's, saved
            before :func:`spikedrive.to_spike_driven`). For a converted I-LIF model it defaults to
            the same model run in integer mode (both in float64), so a conversion that changed the output's shape
            (its number of time steps) or values fails here.
        rtol, atol: tolerances of that comparison.

    Returns:
        A :class:`SpikeDrivenSummary` naming the layers checked.

    Raises:
        NotSpikeDrivenError: listing every non-encoding synaptic layer (or spike-input module)
            that received a non-binary value, with a few of those values.
        NotSpikeDrivenError: also when the output differs from ``reference`` (shape or values).
        ValueError: if no synaptic layer ran at all (nothing was checked).

    Besides the values seen on ``x``, neurons that emit integers (``levels > 1``, e.g. I-LIF with
    ``D > 1``) and are not expanded fail the check even if this batch happened to make them emit
    only 0 and 1: their output is not binary by construction.
    """
    with evaluating(model), SpikeMonitor(model, batch_dim=batch_dim) as monitor, seeded():
        out = model(x)
    stats = list(monitor.synapses.values())
    if not stats:
        raise ValueError(
            f"assert_spike_driven: no synaptic layer (conv, linear, spike-input module) ran in "
            f"{type(model).__name__}; nothing to check"
        )
    bad = [s for s in stats if not s.encoding and not s.binary]
    if bad:
        lines = "\n".join(_describe(s) for s in bad)
        raise NotSpikeDrivenError(
            {s.name: list(s.bad_values) for s in bad},
            f"{type(model).__name__} is not spike-driven: {len(bad)} synaptic layer(s) other than the "
            f"encoding layer received non-binary input:\n{lines}",
        )
    # Structural check after the value check, so a batch that shows integers names the layers.
    integer = [name for name, m in model.named_modules()
               if isinstance(m, SpikingNeuron) and m.levels > 1 and not m.expanded]
    if integer:
        raise NotSpikeDrivenError(
            {name: [] for name in integer},
            f"{type(model).__name__} is not spike-driven: neurons {integer} emit integers; "
            "call spikedrive.to_spike_driven(model) first",
        )
    problem = None
    if reference is not None:
        problem = outputs_differ(reference, out, rtol, atol)
    elif any(isinstance(m, SpikingNeuron) and m.expanded for m in model.modules()):
        problem = conversion_mismatch(model, x, rtol, atol)  # in float64: see its docstring
    if problem is not None:
        raise NotSpikeDrivenError({}, f"{type(model).__name__} does not compute what it should: {problem}")
    return SpikeDrivenSummary(
        checked=tuple(s.name for s in stats if not s.encoding),
        encoding=tuple(s.name for s in stats if s.encoding),
    )
