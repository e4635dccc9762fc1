"""Box conversions and overlaps, on torchvision's ops where it has them.

Inside models boxes are ``[x1, y1, x2, y2]`` in input pixels; on disk (Gen1, COCO JSON) they are
``[x, y, w, h]`` with ``(x, y)`` the top-left corner. The distance form ``[l, t, r, b]`` is what the
anchor-free head predicts: the distances from an anchor point to the four sides.
"""

from __future__ import annotations

import torch
from torchvision.ops import box_convert, box_iou, complete_box_iou, complete_box_iou_loss

__all__ = ["xywh_to_xyxy", "xyxy_to_xywh", "box_iou", "pairwise_ciou", "aligned_ciou", "dist_to_box", "box_to_dist"]


def xywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """``[..., 4]`` top-left + size -> ``[..., 4]`` corners (same units)."""
    return box_convert(boxes, "xywh", "xyxy")


def xyxy_to_xywh(boxes: torch.Tensor) -> torch.Tensor:
    """``[..., 4]`` corners -> ``[..., 4]`` top-left + size (same units)."""
    return box_convert(boxes, "xyxy", "xywh")


def pairwise_ciou(boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Complete IoU of every pair: ``[N, 4]`` x ``[M, 4]`` xyxy -> ``[N, M]`` (in ``(-1.5, 1]``)."""
    return complete_box_iou(boxes1, boxes2, eps=eps)


def aligned_ciou(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Complete IoU of matching rows: ``[N, 4]`` and ``[N, 4]`` xyxy -> ``[N]``.

    ``1 - complete_box_iou_loss``: IoU minus the centre-distance term ``rho^2 / c^2`` minus
    ``alpha * v``, the aspect-ratio term (Zheng et al. 2020).
    """
    if pred.shape != target.shape or pred.shape[-1:] != (4,):
        raise ValueError(f"aligned_ciou: pred and target must both be [N, 4], got {tuple(pred.shape)} and {tuple(target.shape)}")
    if pred.numel() == 0:
        return pred.new_zeros(pred.shape[:-1])
    return 1.0 - complete_box_iou_loss(pred, target, reduction="none", eps=eps)


def dist_to_box(dist: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Distances ``[..., 4]`` (l, t, r, b) from ``points`` ``[..., 2]`` (x, y) -> xyxy ``[..., 4]``."""
    lt, rb = dist.chunk(2, dim=-1)
    return torch.cat([points - lt, points + rb], dim=-1)


def box_to_dist(boxes: torch.Tensor, points: torch.Tensor, max_dist: float | None = None) -> torch.Tensor:
    """xyxy ``boxes`` ``[..., 4]`` seen from ``points`` ``[..., 2]`` -> (l, t, r, b) ``[..., 4]``,
    clamped to ``[0, max_dist]`` when ``max_dist`` is given."""
    x1y1, x2y2 = boxes.chunk(2, dim=-1)
    dist = torch.cat([points - x1y1, x2y2 - points], dim=-1)
    return dist.clamp(0, max_dist) if max_dist is not None else dist
