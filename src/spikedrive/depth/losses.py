"""Depth losses on normalised log depth: the scale-invariant log loss (Eigen et al. 2014) and
multi-scale gradient matching (Li & Snavely 2018), as E2Depth trains with.

Both take the prediction and the target as normalised log depth ``[B, 1, H, W]`` and a boolean
``mask`` of the pixels with ground truth; masked-out pixels (NaN holes) contribute nothing, not
even a NaN gradient. The residual ``R = pred - target`` is a log-depth difference (up to the
constant ``alpha``), so these are the log-space losses of the papers.
"""

from __future__ import annotations

import torch

__all__ = ["scale_invariant_loss", "gradient_matching_loss", "depth_loss"]


def _check(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, who: str) -> None:
    if pred.dim() != 4 or pred.shape[1] != 1:
        raise ValueError(f"{who}: pred must be [B, 1, H, W], got shape {tuple(pred.shape)}")
    if target.shape != pred.shape or mask.shape != pred.shape:
        raise ValueError(f"{who}: target and mask must have pred's shape {tuple(pred.shape)}, got "
                         f"{tuple(target.shape)} and {tuple(mask.shape)}")
    if mask.dtype != torch.bool:
        raise TypeError(f"{who}: mask must be a bool tensor, got {mask.dtype}")


def _residual(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    # where(), not multiply: 0 * NaN is NaN and would poison the gradient.
    return torch.where(mask, pred - torch.where(mask, target, torch.zeros_like(target)), torch.zeros_like(pred))


def scale_invariant_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                         lam: float = 0.5) -> torch.Tensor:
    """``mean_b [ sum R^2 / n - lam * (sum R)^2 / n^2 ]`` over each image's ``n`` valid pixels.

    ``lam = 1`` is fully scale-invariant (a global shift of log depth costs nothing, so a
    monocular model never learns absolute scale); ``lam = 0.5`` (Eigen et al.'s choice) keeps
    half of the shift penalty. Images without a valid pixel add 0.

    Args:
        pred, target: normalised log depth ``[B, 1, H, W]``; mask: ``[B, 1, H, W]`` bool.
        lam: weight of the scale-invariance term, in ``[0, 1]``.

    Returns:
        A scalar tensor.
    """
    _check(pred, target, mask, "scale_invariant_loss")
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"scale_invariant_loss: lam must be in [0, 1], got {lam}")
    r = _residual(pred, target, mask).flatten(1)
    n = mask.flatten(1).sum(1).to(pred.dtype)
    n_safe = n.clamp_min(1.0)
    per_image = (r ** 2).sum(1) / n_safe - lam * r.sum(1) ** 2 / n_safe ** 2
    return per_image.mean()


def gradient_matching_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                           scales: int = 4) -> torch.Tensor:
    """``sum_s (1 / n_s) sum |dx R_s| + |dy R_s|`` over ``scales`` resolutions (halved each time
    by taking every second pixel), counting a finite difference only where both pixels are valid.

    Args:
        pred, target, mask: as :func:`scale_invariant_loss`.
        scales: number of resolutions, ``>= 1``.

    Returns:
        A scalar tensor (0 when no neighbouring pair is valid).
    """
    _check(pred, target, mask, "gradient_matching_loss")
    if scales < 1:
        raise ValueError(f"gradient_matching_loss: scales must be >= 1, got {scales}")
    r = _residual(pred, target, mask)
    total = pred.new_zeros(())
    for s in range(scales):
        step = 2 ** s
        rs, ms = r[..., ::step, ::step], mask[..., ::step, ::step]
        if rs.shape[-1] < 2 and rs.shape[-2] < 2:
            break
        mx = ms[..., :, 1:] & ms[..., :, :-1]
        my = ms[..., 1:, :] & ms[..., :-1, :]
        gx = (rs[..., :, 1:] - rs[..., :, :-1]).abs()[mx].sum()
        gy = (rs[..., 1:, :] - rs[..., :-1, :]).abs()[my].sum()
        total = total + (gx + gy) / ms.sum().clamp_min(1).to(pred.dtype)
    return total


def depth_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, lam: float = 0.5,
               grad_weight: float = 0.5, scales: int = 4) -> torch.Tensor:
    """``scale_invariant_loss + grad_weight * gradient_matching_loss`` (E2Depth's objective).

    Args: as :func:`scale_invariant_loss` and :func:`gradient_matching_loss`;
        grad_weight: weight of the gradient term, ``>= 0``.
    Returns: a scalar tensor.
    """
    if grad_weight < 0:
        raise ValueError(f"depth_loss: grad_weight must be >= 0, got {grad_weight}")
    loss = scale_invariant_loss(pred, target, mask, lam)
    if grad_weight:
        loss = loss + grad_weight * gradient_matching_loss(pred, target, mask, scales)
    return loss


