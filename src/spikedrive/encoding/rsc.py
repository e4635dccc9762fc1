"""Randomized-smoothing coding (RSC-SNN, Wu et al., ACM MM 2024).

A static image ``x`` in ``[0, 1]`` is fed to the network as ``x_t = x + sigma * e_t`` with
``e_t ~ N(0, I)``: a Gaussian randomized-smoothing draw inside the coding stage.

* **RSC-I** (``mode="I"``): one draw ``e`` for all ``T`` steps, so the sequence is a direct code of
  one noisy image; certification is Cohen et al.'s (L2 radius ``sigma * Phi^-1(p)``).
* **RSC-II** (``mode="II"``): a fresh draw at every step; averaging over ``T`` steps lowers the
  effective noise, and the certified L2 radius of the ``T``-draw smoother is ``sigma *
  Phi^-1(p) / sqrt(T)`` (the same shift ``delta`` moves all ``T`` copies).

The noise is additive, so the code is differentiable in ``x`` (``d x_t / d x = 1``): no
straight-through estimator is needed; attacks still need expectation over transformation.
Values are not clipped, as in Cohen et al. (clipping would change the smoothing distribution).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["RSC_MODES", "rsc_encode", "RSCEncoder"]

RSC_MODES = ("I", "II")


def _check(T: int, sigma: float, mode: str, who: str) -> None:
    if not isinstance(T, int) or isinstance(T, bool) or T < 1:
        raise ValueError(f"{who}: T must be an integer >= 1, got {T!r}")
    if not isinstance(sigma, (int, float)) or isinstance(sigma, bool) or not math.isfinite(sigma) or sigma < 0:
        raise ValueError(f"{who}: sigma must be a finite noise level >= 0 (in units of the [0, 1] intensity), "
                         f"got {sigma!r}")
    if mode not in RSC_MODES:
        raise ValueError(f"{who}: mode must be one of {RSC_MODES} (I: one draw for all T, II: a draw per step), "
                         f"got {mode!r}")


def rsc_encode(x: torch.Tensor, T: int, sigma: float, mode: str = "II",
               generator: torch.Generator | None = None) -> torch.Tensor:
    """Gaussian randomized-smoothing code: ``[B, ...] -> [T, B, ...]``, ``x_t = x + sigma e_t``.

    Args:
        x: intensities ``[B, ...]``, nominally in ``[0, 1]`` (NaN raises ``ValueError``).
        T: time steps.
        sigma: noise standard deviation in intensity units (``0``: direct coding).
        mode: ``"I"`` (one draw repeated over ``T``) or ``"II"`` (a fresh draw per step).
        generator: random source on ``x``'s device, for reproducible codes.

    Returns:
        Real-valued ``[T, B, ...]`` in ``x``'s dtype (the first synaptic layer is the encoding
        layer), differentiable in ``x``.
    """
    _check(T, sigma, mode, "rsc_encode")
    if x.is_floating_point() and bool(torch.isnan(x).any()):
        raise ValueError(f"rsc_encode: x contains NaN ({int(torch.isnan(x).sum())} of {x.numel()} values)")
    draws = 1 if mode == "I" else T
    noise = torch.randn((draws, *x.shape), generator=generator, device=x.device, dtype=x.dtype)
    out = x.unsqueeze(0) + sigma * noise
    return out.expand(T, *x.shape) if mode == "I" else out


class RSCEncoder(nn.Module):
    """Module form of :func:`rsc_encode` (``[B, ...] -> [T, B, ...]``); ``generator`` is used on
    every call.

    Attributes:
        stochastic: ``True`` when ``sigma > 0`` (attacks then average gradients over draws).
        draws: independent noise draws per forward pass (1 for RSC-I, ``T`` for RSC-II), which
            sets the certified radius of the smoother.
    """

    def __init__(self, T: int, sigma: float, mode: str = "II", generator: torch.Generator | None = None) -> None:
        super().__init__()
        _check(T, sigma, mode, "RSCEncoder")
        self.T, self.sigma, self.mode, self.generator = T, float(sigma), mode, generator

    @property
    def stochastic(self) -> bool:
        return self.sigma > 0

    @property
    def draws(self) -> int:
        return 1 if self.mode == "I" else self.T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, ...] -> [T, B, ...]`` real-valued."""
        return rsc_encode(x, self.T, self.sigma, self.mode, self.generator)

    def extra_repr(self) -> str:
        return f"T={self.T}, sigma={self.sigma}, mode={self.mode!r}"
