"""The MVSEC depth metrics (E2Depth's table): abs rel, sq rel, RMSE, RMSE log, delta < 1.25^k
and the mean absolute depth error of the pixels within 10 / 20 / 30 m.

Every metric is a ratio of sums over the valid pixels (``mask`` and a finite, positive ground
truth), so a dataset's metrics are pixel-weighted means over all of it and add up exactly over
batches and ranks (:class:`DepthMetrics` keeps only the sums).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from .log_depth import ALPHA, D_MAX_M, from_log_depth, to_log_depth
from .losses import depth_loss

__all__ = ["CUTOFFS_M", "METRIC_KEYS", "depth_metric_sums", "metrics_from_sums", "depth_metrics", "DepthMetrics"]

CUTOFFS_M = (10.0, 20.0, 30.0)
METRIC_KEYS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3", "mean_err_10", "mean_err_20", "mean_err_30")
# [n, sum |e|/g, sum e^2/g, sum e^2, sum dlog^2, n(d<1.25), n(d<1.25^2), n(d<1.25^3),
#  then (sum |e|, n) per cut-off]
_N_SUMS = 8 + 2 * len(CUTOFFS_M)


def _valid(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if pred.shape != gt.shape:
        raise ValueError(f"depth_metrics: pred and gt must have the same shape, got {tuple(pred.shape)} and "
                         f"{tuple(gt.shape)}")
    valid = torch.isfinite(gt) & (gt > 0) & torch.isfinite(pred)
    if mask is not None:
        if mask.shape != gt.shape:
            raise ValueError(f"depth_metrics: mask must have gt's shape {tuple(gt.shape)}, got {tuple(mask.shape)}")
        valid &= mask.bool()
    return valid


def depth_metric_sums(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """The float64 sums behind :func:`depth_metrics` (add them over batches, then
    :func:`metrics_from_sums`).

    Args:
        pred: predicted depth in metres, any shape (e.g. ``[B, 1, H, W]``); clamped to >= 1 mm
            so the log and ratios stay finite.
        gt: ground-truth depth in metres, same shape; NaN, inf or <= 0 where unknown.
        mask: optional bool, same shape; ``False`` pixels are left out.

    Returns:
        A ``[14]`` float64 tensor on ``pred``'s device.
    """
    valid = _valid(pred, gt, mask)
    p = pred.detach().double()[valid].clamp_min(1e-3)
    g = gt.detach().double()[valid]
    err = p - g
    ratio = torch.maximum(p / g, g / p)
    parts = [torch.tensor(float(g.numel()), dtype=torch.float64, device=p.device),
             (err.abs() / g).sum(), (err ** 2 / g).sum(), (err ** 2).sum(),
             ((torch.log(p) - torch.log(g)) ** 2).sum()]
    parts += [(ratio < 1.25 ** k).sum().double() for k in (1, 2, 3)]
    for cut in CUTOFFS_M:
        near = g <= cut
        parts += [err.abs()[near].sum(), near.sum().double()]
    return torch.stack(parts)


def metrics_from_sums(sums: torch.Tensor) -> dict[str, float]:
    """The metric dict (:data:`METRIC_KEYS`) of :func:`depth_metric_sums`' totals; NaN for a
    metric with no pixel (e.g. ``mean_err_10`` when nothing is within 10 m)."""
    s = [float(v) for v in sums.cpu()]
    n = s[0]

    def div(a: float, b: float) -> float:
        return a / b if b > 0 else float("nan")

    out = {"abs_rel": div(s[1], n), "sq_rel": div(s[2], n), "rmse": math.sqrt(div(s[3], n)) if n else float("nan"),
           "rmse_log": math.sqrt(div(s[4], n)) if n else float("nan"),
           "a1": div(s[5], n), "a2": div(s[6], n), "a3": div(s[7], n)}
    for i, cut in enumerate(CUTOFFS_M):
        out[f"mean_err_{int(cut)}"] = div(s[8 + 2 * i], s[9 + 2 * i])
    return out


def depth_metrics(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, float]:
    """MVSEC metrics of ``pred`` against ``gt`` (both metres, same shape) over the valid pixels.

    ``abs_rel = mean |p - g| / g``, ``sq_rel = mean (p - g)^2 / g``, ``rmse = sqrt(mean (p - g)^2)``,
    ``rmse_log = sqrt(mean (ln p - ln g)^2)``, ``a_k = mean[max(p/g, g/p) < 1.25^k]``,
    ``mean_err_c = mean |p - g|`` over the valid pixels with ``g <= c`` metres (c = 10, 20, 30).
    Valid: ``mask`` (if given) and a finite ``g > 0`` and a finite ``p``; so NaN holes are left out.

    Returns:
        A dict with the keys of :data:`METRIC_KEYS` (NaN when no pixel qualifies).
    """
    return metrics_from_sums(depth_metric_sums(pred, gt, mask))


class DepthMetrics:
    """Evaluation accumulator of the depth task: the metric sums plus the loss.

    ``update(output, batch)``: ``output`` normalised log depth ``[B, 1, H, W]``, ``batch``
    ``(frames, depth [B, 1, H, W] metres, mask [B, 1, H, W] bool)``. ``compute()`` returns the
    :data:`METRIC_KEYS` and ``loss`` (the training objective, averaged over batches).
    """

    def __init__(self, d_max: float = D_MAX_M, alpha: float = ALPHA, loss_kwargs: dict[str, Any] | None = None) -> None:
        self.d_max, self.alpha = d_max, alpha
        self.loss_kwargs = dict(loss_kwargs or {})
        self.state: torch.Tensor | None = None

    def update(self, output: torch.Tensor, batch: Any) -> None:
        """Add one batch (see the class docstring)."""
        _, depth, mask = batch
        out = output.detach().float()
        sums = depth_metric_sums(from_log_depth(out, self.d_max, self.alpha), depth, mask)
        loss = depth_loss(out, to_log_depth(depth, self.d_max, self.alpha), mask, **self.loss_kwargs)
        step = torch.cat([sums, torch.stack([loss.double(), torch.ones((), dtype=torch.float64, device=out.device)])])
        self.state = step if self.state is None else self.state + step

    def reduce(self, all_reduce: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Sum the state over ranks (a rank that saw nothing adds zeros)."""
        if self.state is None:
            self.state = torch.zeros(_N_SUMS + 2, dtype=torch.float64)
        self.state = all_reduce(self.state)

    def compute(self) -> dict[str, float]:
        """The metrics (:data:`METRIC_KEYS`) and ``loss``; NaN if nothing was seen."""
        if self.state is None:
            return {**{k: float("nan") for k in METRIC_KEYS}, "loss": float("nan")}
        out = metrics_from_sums(self.state[:_N_SUMS])
        batches = float(self.state[_N_SUMS + 1])
        out["loss"] = float(self.state[_N_SUMS]) / batches if batches else float("nan")
        return out
