"""Surrogate gradients as objects.

A surrogate turns the Heaviside step ``S = (x >= 0)`` into something trainable: the forward pass
stays the exact step, the backward pass uses :meth:`Surrogate.derivative`, a smooth stand-in for
the Dirac delta. ``x`` is always the distance to threshold, ``H - V_th``.

Each surrogate is a small frozen dataclass, so neurons can hold their own instance (never a
shared default), configs can name them, and fused kernels can read the formula's parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["Surrogate", "Sigmoid", "Atan", "Rectangle", "StraightThrough", "heaviside"]


class _SurrogateSpike(torch.autograd.Function):
    """Heaviside forward, the surrogate's derivative backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, surrogate: "Surrogate") -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad_out * ctx.surrogate.derivative(x), None


def heaviside(x: torch.Tensor) -> torch.Tensor:
    """Exact step ``(x >= 0)`` in ``x``'s dtype, no gradient."""
    return (x >= 0).to(x.dtype)


@dataclass(frozen=True)
class Surrogate:
    """Base class: ``surrogate(x)`` spikes where ``x >= 0`` and back-propagates ``derivative(x)``."""

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        """Pseudo-derivative of the step at ``x`` (same shape as ``x``)."""
        raise NotImplementedError

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Binary spikes ``(x >= 0)`` of any shape, differentiable through :meth:`derivative`."""
        if not torch.is_grad_enabled() or not x.requires_grad:
            return heaviside(x)
        return _SurrogateSpike.apply(x, self)


@dataclass(frozen=True)
class Sigmoid(Surrogate):
    """``d/dx sigmoid(alpha x) = alpha s (1 - s)``; SpikingJelly's default with ``alpha = 4``."""

    alpha: float = 4.0

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.sigmoid(self.alpha * x)
        return self.alpha * s * (1.0 - s)


@dataclass(frozen=True)
class Atan(Surrogate):
    """``d/dx [atan(pi/2 alpha x)/pi + 1/2] = alpha / (2 (1 + (pi/2 alpha x)^2))``."""

    alpha: float = 2.0

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return (self.alpha / 2.0) / (1.0 + (math.pi / 2.0 * self.alpha * x) ** 2)


@dataclass(frozen=True)
class Rectangle(Surrogate):
    """Box of area one: ``1/width`` where ``|x| < width/2``, zero elsewhere (TA-SNN, MA-SNN)."""

    width: float = 1.0

    def __post_init__(self) -> None:
        if self.width <= 0:
            raise ValueError(f"Rectangle: width must be > 0, got {self.width}")

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return (x.abs() < self.width / 2.0).to(x.dtype) / self.width


@dataclass(frozen=True)
class StraightThrough(Surrogate):
    """Gradient one on ``[lo, hi]`` and zero outside (a clamp's straight-through estimator).

    ``x`` is ``H - V_th``: gradient one within ``[lo, hi]`` of the threshold. (I-LIF's
    quantiser has its own straight-through window, ``[0, D]`` on the membrane, in
    :func:`spikedrive.neurons.quantize_integer`.)
    """

    lo: float = -0.5
    hi: float = 0.5

    def __post_init__(self) -> None:
        if not self.lo < self.hi:
            raise ValueError(f"StraightThrough: need lo < hi, got lo={self.lo}, hi={self.hi}")

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return ((x >= self.lo) & (x <= self.hi)).to(x.dtype)
