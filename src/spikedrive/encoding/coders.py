"""Input coders: static inputs ``[B, ...]`` in ``[0, 1]`` → sequences ``[T, B, ...]``.

Each coder is a pure function plus a thin ``nn.Module`` shell so it can sit at the front of a
model. The Poisson coder takes a ``torch.Generator`` for reproducibility and optionally passes a
straight-through gradient to its input (needed for honest attacks through stochastic coding: the
Bernoulli draw itself passes no gradient and would mask it).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["direct_encode", "poisson_encode", "latency_encode", "DirectEncoder", "PoissonEncoder", "LatencyEncoder"]


def _check_steps(T: int, who: str) -> None:
    if not isinstance(T, int) or T < 1:
        raise ValueError(f"{who}: T must be an integer >= 1, got {T!r}")


def _check_no_nan(x: torch.Tensor, who: str, meaning: str) -> None:
    # A comparison with NaN is false, so a NaN would silently code as "never spikes".
    nans = int(torch.isnan(x).sum()) if x.is_floating_point() else 0
    if nans:
        raise ValueError(f"{who}: x contains NaN ({nans} of {x.numel()} values); it must hold {meaning} in [0, 1]")


def direct_encode(x: torch.Tensor, T: int) -> torch.Tensor:
    """Repeat a real-valued input over time: ``[B, ...] -> [T, B, ...]`` (a view, no copy).

    The first synaptic layer then sees real values: it is the encoding layer.
    """
    _check_steps(T, "direct_encode")
    return x.unsqueeze(0).expand(T, *x.shape)


class _BernoulliStraightThrough(torch.autograd.Function):
    @staticmethod
    def forward(ctx, p: torch.Tensor, u: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return (u < p).to(p.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        # E[s] = p, so d E[s] / dp = 1: the gradient of the expected spike train.
        return grad_out, None


def poisson_encode(
    x: torch.Tensor, T: int, generator: torch.Generator | None = None, straight_through: bool = False
) -> torch.Tensor:
    """Bernoulli rate coding: ``s_t ~ Bernoulli(x)`` independently per step, ``[B, ...] -> [T, B, ...]``.

    Args:
        x: intensities in ``[0, 1]`` (values outside, and NaN, raise ``ValueError``).
        T: number of time steps.
        generator: random source (``torch.Generator`` on ``x``'s device) for reproducible codes.
        straight_through: pass ``d s / d x = 1`` backward (the gradient of ``E[s]``); otherwise
            the code is not differentiable.
    """
    _check_steps(T, "poisson_encode")
    _check_no_nan(x, "poisson_encode", "firing probabilities")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(
            f"poisson_encode: x must lie in [0, 1] (it is a firing probability), got range "
            f"[{float(x.min()):.3g}, {float(x.max()):.3g}]"
        )
    u = torch.rand((T, *x.shape), generator=generator, device=x.device, dtype=x.dtype)
    p = x.unsqueeze(0).expand_as(u)
    if straight_through and x.requires_grad:
        return _BernoulliStraightThrough.apply(p, u)
    return (u < p).to(x.dtype)


def latency_encode(x: torch.Tensor, T: int, threshold: float = 0.0) -> torch.Tensor:
    """Time-to-first-spike coding: one spike at step ``round((1 - x) (T - 1))``, none if
    ``x <= threshold``; brighter fires earlier. ``[B, ...] -> [T, B, ...]`` of 0/1.

    ``x`` holds intensities; values outside ``[0, 1]`` are clamped to it, NaN raises
    ``ValueError`` (it has no place in time)."""
    _check_steps(T, "latency_encode")
    _check_no_nan(x, "latency_encode", "intensities")
    x = x.clamp(0, 1)
    step = torch.round((1.0 - x) * (T - 1)).long()
    t = torch.arange(T, device=x.device).view(T, *([1] * x.dim()))
    return ((t == step.unsqueeze(0)) & (x > threshold).unsqueeze(0)).to(x.dtype)


class DirectEncoder(nn.Module):
    """Module form of :func:`direct_encode`."""

    def __init__(self, T: int) -> None:
        super().__init__()
        _check_steps(T, "DirectEncoder")
        self.T = T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, ...] -> [T, B, ...]``."""
        return direct_encode(x, self.T)


class PoissonEncoder(nn.Module):
    """Module form of :func:`poisson_encode`; ``generator`` is used on every call."""

    def __init__(self, T: int, generator: torch.Generator | None = None, straight_through: bool = False) -> None:
        super().__init__()
        _check_steps(T, "PoissonEncoder")
        self.T, self.generator, self.straight_through = T, generator, straight_through

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, ...] -> [T, B, ...]`` of 0/1."""
        return poisson_encode(x, self.T, self.generator, self.straight_through)


class LatencyEncoder(nn.Module):
    """Module form of :func:`latency_encode`."""

    def __init__(self, T: int, threshold: float = 0.0) -> None:
        super().__init__()
        _check_steps(T, "LatencyEncoder")
        self.T, self.threshold = T, threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, ...] -> [T, B, ...]`` of 0/1."""
        return latency_encode(x, self.T, self.threshold)
