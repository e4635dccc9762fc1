"""LIF, IF and parametric LIF neurons (binary spikes)."""

from __future__ import annotations

import math
from typing import NoReturn

import torch
from torch import nn

from ._checks import at_least, finite, surrogate_instance
from .base import SpikingNeuron
from .dispatch import resolve_kernel
from .surrogate import Sigmoid, Surrogate

__all__ = ["LIF", "IF", "ParametricLIF"]


class LIF(SpikingNeuron):
    """Leaky integrate-and-fire neuron over ``[T, B, ...]``.

    ``H = V + (X - (V - V_reset)) / tau`` (``decay_input=True``, SpikingJelly's form) or
    ``H = V - (V - V_reset) / tau + X``; spike ``S = H >= V_th``; hard reset to ``v_reset`` or,
    with ``v_reset=None``, soft reset ``V = H - V_th S``. See :mod:`spikedrive.neurons.functional`.

    Args:
        tau: membrane time constant in time steps, a finite number ``>= 1`` (> 1 for a leak;
            ``tau=1`` forgets everything).
        v_threshold: firing threshold, a finite number.
        v_reset: reset potential (a finite number), or ``None`` for soft reset.
        decay_input: scale the input by ``1/tau``.
        detach_reset: no gradient through the spike in the reset.
        surrogate: surrogate gradient, a :class:`Surrogate` instance such as ``Atan()`` (never a
            name); ``None`` means ``Sigmoid(alpha=4.0)``.
        backend: ``"auto" | "reference" | "cpu" | "triton"``.
    """

    kind = "lif"

    def __init__(
        self,
        tau: float = 2.0,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        decay_input: bool = True,
        detach_reset: bool = False,
        surrogate: Surrogate | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__(backend)
        who = type(self).__name__
        self.tau = at_least(tau, who, "tau", 1.0, unit="time steps")
        self.v_threshold = finite(v_threshold, who, "v_threshold")
        self.v_reset = None if v_reset is None else finite(
            v_reset, who, "v_reset", "a finite number or None (soft reset)")
        self.decay_input = decay_input
        self.detach_reset = detach_reset
        self.surrogate = Sigmoid(4.0) if surrogate is None else surrogate_instance(surrogate, who)

    @classmethod
    def with_decay(cls, decay: float, v_threshold: float, **kwargs) -> "LIF":
        """The "decay" form ``H = decay * V + X`` (MA-SNN, TA-SNN, ASA-SNN, SpikeYOLO's papers).

        Equivalent to ``decay_input=False`` with ``tau = 1 / (1 - decay)`` and reset to 0.
        ``decay`` is in ``[0, 1)``; ``kwargs`` are the other constructor arguments.
        """
        decay = finite(decay, "LIF.with_decay", "decay", "a finite number in [0, 1)")
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"LIF.with_decay: decay must be a finite number in [0, 1), got {decay}")
        kwargs.setdefault("v_reset", 0.0)
        return cls(tau=1.0 / (1.0 - decay), v_threshold=v_threshold, decay_input=False, **kwargs)

    def _inv_tau(self) -> float | torch.Tensor:
        return 1.0 / self.tau

    def _run(
        self, x: torch.Tensor, v_init: torch.Tensor | None, need_state: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        params = dict(
            inv_tau=self._inv_tau(),
            v_threshold=self.v_threshold,
            v_reset=self.v_reset,
            decay_input=self.decay_input,
            detach_reset=self.detach_reset,
            surrogate=self.surrogate,
        )
        kernel = resolve_kernel(self.kind, self.backend, x, params)
        return kernel(x, v_init=v_init, need_state=need_state, **params)

    def extra_repr(self) -> str:
        return (
            f"tau={self.tau:g}, v_threshold={self.v_threshold:g}, v_reset={self.v_reset}, "
            f"decay_input={self.decay_input}, detach_reset={self.detach_reset}, "
            f"surrogate={self.surrogate}, backend={self.backend!r}"
        )


class IF(LIF):
    """Integrate-and-fire (no leak): ``H = V + X``. Arguments as :class:`LIF` without ``tau``."""

    def __init__(
        self,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        detach_reset: bool = False,
        surrogate: Surrogate | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__(1.0, v_threshold, v_reset, False, detach_reset, surrogate, backend)

    @classmethod
    def with_decay(cls, decay: float, v_threshold: float, **kwargs) -> NoReturn:
        """Not applicable: IF has no leak, so there is no decay to set. Always ``TypeError``."""
        raise TypeError(
            f"{cls.__name__}.with_decay: IF has no leak (H = V + X), so a decay does not apply; "
            f"use LIF.with_decay(decay, v_threshold) for H = decay * V + X, or {cls.__name__}(v_threshold=...)"
        )

    def _inv_tau(self) -> float:
        return 0.0

    def extra_repr(self) -> str:
        return f"v_threshold={self.v_threshold:g}, v_reset={self.v_reset}, detach_reset={self.detach_reset}, surrogate={self.surrogate}"


class ParametricLIF(LIF):
    """LIF with a learnable time constant (PLIF): ``1/tau = sigmoid(w)``, ``w`` one scalar per
    layer, initialised so that ``tau = init_tau`` (a finite number ``> 1``: ``tau = 1`` would
    need ``w = +inf``). Other arguments as :class:`LIF`; ``tau`` keeps the initial value, the
    learned one is :attr:`current_tau`."""

    def __init__(self, init_tau: float = 2.0, **kwargs) -> None:
        init_tau = at_least(init_tau, type(self).__name__, "init_tau", 1.0, strict=True, unit="time steps")
        super().__init__(tau=init_tau, **kwargs)
        self.init_tau = init_tau
        self.w = nn.Parameter(torch.tensor(-math.log(init_tau - 1.0)))

    @classmethod
    def with_decay(cls, decay: float, v_threshold: float, **kwargs) -> "ParametricLIF":
        """The "decay" form ``H = decay * V + X`` with a learnable decay, starting at ``decay``.

        As :meth:`LIF.with_decay`: ``decay_input=False``, reset to 0 unless ``v_reset`` is given,
        and ``init_tau = 1 / (1 - decay)``; training then moves ``decay = 1 - sigmoid(w)``.
        ``decay`` must lie strictly inside ``(0, 1)``: ``decay = 0`` is ``tau = 1``, which the
        sigmoid reaches only at ``w = +inf``.
        """
        who = f"{cls.__name__}.with_decay"
        decay = finite(decay, who, "decay", "a finite number in (0, 1) (the initial learnable decay)")
        if not 0.0 < decay < 1.0:
            raise ValueError(f"{who}: decay must be a finite number in (0, 1) (the initial learnable decay), "
                             f"got {decay}")
        kwargs.setdefault("v_reset", 0.0)
        return cls(init_tau=1.0 / (1.0 - decay), v_threshold=v_threshold, decay_input=False, **kwargs)

    @property
    def current_tau(self) -> float:
        """The time constant the neuron has learned so far."""
        return float(1.0 / torch.sigmoid(self.w.detach()))

    def _inv_tau(self) -> torch.Tensor:
        return torch.sigmoid(self.w)

    def extra_repr(self) -> str:
        return (
            f"current_tau={self.current_tau:.4g}, init_tau={self.init_tau:g}, v_threshold={self.v_threshold:g}, "
            f"v_reset={self.v_reset}, decay_input={self.decay_input}, detach_reset={self.detach_reset}, "
            f"surrogate={self.surrogate}, backend={self.backend!r}"
        )
