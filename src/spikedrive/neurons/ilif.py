"""I-LIF: the integer-valued LIF of SpikeYOLO (ECCV 2024)."""

from __future__ import annotations

import torch

from ._checks import at_least, finite, integer_at_least
from .base import SpikingNeuron
from .dispatch import resolve_kernel
from .functional import expand_integer_spikes

__all__ = ["ILIF"]


class ILIF(SpikingNeuron):
    """Integer LIF over ``[T, B, ...]``.

    Training emits integers ``S = round(clamp(H, 0, D))`` with soft reset ``V = H - S`` and a
    straight-through gradient on ``[0, D]``. After :meth:`to_spike_driven` the same dynamics run,
    but each integer is expanded into ``D`` virtual time steps of binary spikes, so the output is
    ``[T * D, B, ...]``; a synaptic layer that sums the ``D`` maps of each step (see
    :class:`spikedrive.layers.Synapse` and :func:`spikedrive.to_spike_driven`) reproduces the
    integer model exactly.

    Args:
        D: the largest integer (number of virtual time steps), an ``int >= 1`` (not a bool).
        beta: membrane decay of the "decay" charge ``H = beta V + X`` (SpikeYOLO: 0.25).
        charge: ``"decay"`` (``H = beta V + X``) or ``"tau"`` (``H = V + (X - V)/tau``, the Gen1
            checkpoint's variant).
        tau: time constant of the ``"tau"`` charge, a finite number ``>= 1`` (time steps).
        detach_reset: no gradient through the spike in the reset (the released code detaches).
        backend: ``"auto" | "reference" | "cpu" | "triton"``.
    """

    kind = "ilif"

    def __init__(
        self,
        D: int = 4,
        beta: float = 0.25,
        charge: str = "decay",
        tau: float = 2.0,
        detach_reset: bool = True,
        backend: str = "auto",
    ) -> None:
        super().__init__(backend)
        who = type(self).__name__
        D = integer_at_least(D, who, "D", 1)
        beta_expected = "a finite number in [0, 1)"
        beta = finite(beta, who, "beta (membrane decay)", beta_expected)
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"{who}: beta (membrane decay) must be {beta_expected}, got {beta}")
        tau = at_least(tau, who, "tau", 1.0, unit="time steps")
        if charge not in ("decay", "tau"):
            raise ValueError(f"{who}: charge must be 'decay' or 'tau', got {charge!r}")
        self.D = D
        self.beta = beta
        self.charge = charge
        self.tau = tau
        self.detach_reset = detach_reset
        self.spike_driven = False

    @property
    def levels(self) -> int:
        return self.D

    @property
    def expanded(self) -> bool:
        return self.spike_driven

    def to_spike_driven(self, enabled: bool = True) -> "ILIF":
        """Emit ``[T * D, B, ...]`` binary spikes (``enabled=True``) or integers (``False``)."""
        self.spike_driven = enabled
        return self

    def _run(
        self, x: torch.Tensor, v_init: torch.Tensor | None, need_state: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        # Beyond 2^(mantissa bits + 1) not every integer is a value of the dtype: S would round.
        exact = int(2 / torch.finfo(x.dtype).eps) if x.is_floating_point() else None
        if exact is not None and self.D > exact:
            raise ValueError(f"{type(self).__name__}: integer spikes up to D={self.D} are not exact in {x.dtype} "
                             f"(integers above {exact} round); run the neuron in float32 (outside autocast) or "
                             "use a smaller D")
        params = dict(levels=self.D, beta=self.beta, charge=self.charge, tau=self.tau, detach_reset=self.detach_reset)
        kernel = resolve_kernel(self.kind, self.backend, x, params)
        s, v = kernel(x, v_init=v_init, need_state=need_state, **params)
        if self.spike_driven:
            s = expand_integer_spikes(s, self.D)
        return s, v

    def extra_repr(self) -> str:
        return (
            f"D={self.D}, beta={self.beta:g}, charge={self.charge!r}, detach_reset={self.detach_reset}, "
            f"spike_driven={self.spike_driven}, backend={self.backend!r}"
        )
