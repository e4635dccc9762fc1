"""The depth task for the engine: event frames in, normalised log depth out.

A batch from the loader is ``(frames [T, B, C, H, W], depth)`` (MVSEC's collate gives depth
``[B, H, W]`` in metres, NaN = no lidar return) or ``(frames, depth, mask)``. :meth:`to_device`
puts it in one form, ``(frames, depth [B, 1, H, W], mask [B, 1, H, W] bool)``, where ``mask`` is
the given mask (if any) and a finite, positive depth. The model maps frames to normalised log
depth ``[B, 1, H, W]`` in ``[0, 1]`` (:func:`~spikedrive.depth.to_log_depth`). This module
satisfies the engine's task protocol structurally and does not import the engine.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .log_depth import ALPHA, D_MAX_M, to_log_depth
from .losses import depth_loss
from .metrics import DepthMetrics

__all__ = ["DepthTask", "DepthBatch"]

DepthBatch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class DepthTask:
    """Monocular event-camera depth: loss :func:`~spikedrive.depth.depth_loss` on normalised log
    depth, metrics :class:`~spikedrive.depth.DepthMetrics` in metres.

    Args:
        d_max: depth of normalised log depth 1, metres (MVSEC lidar range, 80).
        alpha: log range (3.7).
        lam: scale-invariance weight of the log loss; grad_weight: gradient-matching weight;
        scales: gradient-matching resolutions.
    """

    time_major = True

    def __init__(self, d_max: float = D_MAX_M, alpha: float = ALPHA, lam: float = 0.5, grad_weight: float = 0.5,
                 scales: int = 4) -> None:
        self.d_max, self.alpha = float(d_max), float(alpha)
        self.loss_kwargs = {"lam": float(lam), "grad_weight": float(grad_weight), "scales": int(scales)}
        to_log_depth(torch.zeros(1), self.d_max, self.alpha)  # validates d_max / alpha now, not mid-run

    def prepare(self, batch: Any) -> DepthBatch:
        """``(frames, depth[, mask])`` -> ``(frames [T, B, C, H, W] float, depth [B, 1, H, W], mask [B, 1, H, W] bool)``."""
        if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
            raise ValueError(f"DepthTask: batch must be (frames, depth) or (frames, depth, mask), got "
                             f"{type(batch).__name__} of length {len(batch) if isinstance(batch, (tuple, list)) else '-'}")
        frames, depth = batch[0], batch[1]
        if frames.dim() != 5:
            raise ValueError(f"DepthTask: frames must be time-major [T, B, C, H, W], got shape {tuple(frames.shape)}")
        if depth.dim() == 3:
            depth = depth.unsqueeze(1)
        b, h, w = frames.shape[1], frames.shape[3], frames.shape[4]
        if tuple(depth.shape) != (b, 1, h, w):
            raise ValueError(f"DepthTask: depth must be [B, H, W] or [B, 1, H, W] = {(b, 1, h, w)} for frames of shape "
                             f"{tuple(frames.shape)}, got {tuple(depth.shape)}")
        depth = depth.float()
        mask = torch.isfinite(depth) & (depth > 0)
        if len(batch) == 3:
            if batch[2].numel() != depth.numel():
                raise ValueError(f"DepthTask: mask must have {depth.numel()} elements like depth, got shape "
                                 f"{tuple(batch[2].shape)}")
            mask &= batch[2].reshape(depth.shape).bool()
        return frames.float(), depth, mask

    def to_device(self, batch: Any, device: torch.device) -> DepthBatch:
        """The batch in the task's form (:meth:`prepare`), on ``device``."""
        frames, depth, mask = self.prepare(batch)
        return frames.to(device, non_blocking=True), depth.to(device, non_blocking=True), mask.to(device)

    def model_input(self, batch: DepthBatch) -> torch.Tensor:
        """The event frames ``[T, B, C, H, W]``."""
        return batch[0]

    def forward(self, model: nn.Module, batch: DepthBatch) -> torch.Tensor:
        """Normalised log depth ``[B, 1, H, W]``."""
        return model(batch[0])

    def target(self, batch: DepthBatch) -> torch.Tensor:
        """Normalised log depth of the ground truth ``[B, 1, H, W]`` (NaN where unknown)."""
        return to_log_depth(batch[1], self.d_max, self.alpha)

    def training_loss(self, model: nn.Module, batch: DepthBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(depth_loss, {"valid_fraction": fraction of pixels with ground truth})``."""
        pred = model(batch[0])
        loss = depth_loss(pred.float(), self.target(batch), batch[2], **self.loss_kwargs)
        return loss, {"valid_fraction": batch[2].float().mean()}

    def new_metrics(self) -> DepthMetrics:
        """An empty metric accumulator (metres, and the loss)."""
        return DepthMetrics(self.d_max, self.alpha, self.loss_kwargs)
