"""Modules for NIR primitives that spikedrive's layers do not already provide."""

from __future__ import annotations

import torch
from torch import nn

from ..neurons.base import check_sequence

__all__ = ["LeakyIntegrator", "Threshold"]


class LeakyIntegrator(nn.Module):
    """NIR's leaky integrator ``LI``: a membrane without spikes, ``[T, B, ...] -> [T, B, ...]``.

    ``V[t] = V[t-1] + inv_tau * (v_leak - V[t-1] + r X[t])`` (Euler step of
    ``tau dv/dt = (v_leak - v) + r I`` with ``inv_tau = dt / tau``); the output is ``V[t]``.
    Starts at ``v_leak``.

    Args:
        inv_tau: ``dt / tau``, in ``(0, 1]``.
        r: input resistance.
        v_leak: rest potential.
    """

    def __init__(self, inv_tau: float, r: float = 1.0, v_leak: float = 0.0) -> None:
        super().__init__()
        if not 0.0 < inv_tau <= 1.0:
            raise ValueError(f"LeakyIntegrator: inv_tau (dt / tau) must be in (0, 1], got {inv_tau}")
        self.inv_tau, self.r, self.v_leak = float(inv_tau), float(r), float(v_leak)

    def forward_with_state(self, x: torch.Tensor, v_init: torch.Tensor | None = None
                           ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(membrane [T, B, ...], membrane after the last step [B, ...])`` from ``v_init``."""
        check_sequence(x, "LeakyIntegrator")
        v = torch.full_like(x[0], self.v_leak) if v_init is None else v_init.to(x.dtype)
        out = []
        for t in range(x.shape[0]):
            v = v + self.inv_tau * (self.v_leak - v + self.r * x[t])
            out.append(v)
        return torch.stack(out), v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Membrane ``[T, B, ...]`` for input ``[T, B, ...]``."""
        return self.forward_with_state(x)[0]

    def extra_repr(self) -> str:
        return f"inv_tau={self.inv_tau:g}, r={self.r:g}, v_leak={self.v_leak:g}"


class Threshold(nn.Module):
    """NIR's ``Threshold``: ``1`` where ``x > threshold`` (strict, as NIR states it), else ``0``;
    stateless, any shape. ``threshold`` is a tensor broadcastable to one time step's shape."""

    def __init__(self, threshold: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("threshold", torch.as_tensor(threshold, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[T, B, ...] -> [T, B, ...]`` of 0/1 in ``x``'s dtype."""
        return (x > self.threshold.to(x.dtype)).to(x.dtype)
