"""Normalised log depth (E2Depth's target): ``D_hat = 1 + ln(D / D_max) / alpha``, in ``[0, 1]``.

With MVSEC's lidar range ``D_max = 80 m`` and ``alpha = 3.7``, ``D_hat = 0`` is
``80 * exp(-3.7) ~ 1.98 m`` and ``D_hat = 1`` is 80 m; nearer or farther depths are clipped.
NaN (no lidar return) stays NaN in both directions, so callers can still mask it out.
"""

from __future__ import annotations

import math

import torch

__all__ = ["D_MAX_M", "ALPHA", "to_log_depth", "from_log_depth"]

D_MAX_M = 80.0
ALPHA = 3.7


def _check(d_max: float, alpha: float, who: str) -> None:
    if not (math.isfinite(d_max) and d_max > 0):
        raise ValueError(f"{who}: d_max must be a finite depth > 0 in metres, got {d_max}")
    if not (math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"{who}: alpha must be a finite number > 0, got {alpha}")


def to_log_depth(depth: torch.Tensor, d_max: float = D_MAX_M, alpha: float = ALPHA) -> torch.Tensor:
    """Metres -> normalised log depth, clipped to ``[0, 1]``.

    Args:
        depth: depth in metres, any shape (e.g. ``[B, 1, H, W]``); NaN where unknown. Zero or
            negative depths map to 0 (the clip), never to ``-inf``.
        d_max: depth of ``D_hat = 1``, metres; alpha: log-range of ``[0, 1]``.

    Returns:
        ``D_hat`` of the same shape and dtype, in ``[0, 1]`` (NaN kept).
    """
    _check(d_max, alpha, "to_log_depth")
    # clamp before the log: tiny positive floor so 0 m clips to D_hat = 0 instead of -inf.
    safe = depth.clamp_min(torch.finfo(depth.dtype).tiny)
    out = (1.0 + torch.log(safe / d_max) / alpha).clamp(0.0, 1.0)
    return torch.where(torch.isnan(depth), depth, out)


def from_log_depth(log_depth: torch.Tensor, d_max: float = D_MAX_M, alpha: float = ALPHA) -> torch.Tensor:
    """Normalised log depth -> metres: ``D = d_max * exp(alpha * (D_hat - 1))``.

    Args:
        log_depth: ``D_hat``, any shape; clipped to ``[0, 1]`` first, as the forward map.
        d_max, alpha: as :func:`to_log_depth`.

    Returns:
        Depth in metres, in ``[d_max * exp(-alpha), d_max]`` (NaN kept).
    """
    _check(d_max, alpha, "from_log_depth")
    return d_max * torch.exp(alpha * (log_depth.clamp(0.0, 1.0) - 1.0))
