"""Task-aligned assignment (TOOD, Feng et al. 2021, as YOLOv8 uses it).

For every ground-truth box the anchor points inside it are ranked by the alignment metric
``t = s^alpha * u^beta`` (``s`` the predicted score of the box's class, ``u`` the CIoU of the
predicted box with it, clamped at 0); the ``topk`` best are its candidates. An anchor claimed by
several boxes keeps the one it overlaps most. The class target of a positive anchor is the
alignment metric normalised per box so that its best anchor gets that box's best IoU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .boxes import aligned_ciou

__all__ = ["TaskAlignedAssigner", "Assignment"]


@dataclass
class Assignment:
    """What :class:`TaskAlignedAssigner` returns.

    Attributes:
        labels: ``[B, A]`` int64 class of each anchor's box (0 for background anchors).
        boxes: ``[B, A, 4]`` xyxy pixels of each anchor's box (unused where ``fg`` is False).
        scores: ``[B, A, C]`` soft class targets (zero rows for background).
        fg: ``[B, A]`` bool, the positive anchors.
        gt_index: ``[B, A]`` int64 index of the assigned box among the image's boxes.
    """

    labels: torch.Tensor
    boxes: torch.Tensor
    scores: torch.Tensor
    fg: torch.Tensor
    gt_index: torch.Tensor


class TaskAlignedAssigner:
    """Assigns ground-truth boxes to anchor points.

    Args:
        topk: candidates per box (10).
        alpha: exponent of the class score (0.5).
        beta: exponent of the IoU (6.0).
        eps: guards divisions and the inside-the-box test.
    """

    def __init__(self, topk: int = 10, alpha: float = 0.5, beta: float = 6.0, eps: float = 1e-9) -> None:
        if topk < 1:
            raise ValueError(f"TaskAlignedAssigner: topk must be >= 1, got {topk}")
        self.topk, self.alpha, self.beta, self.eps = int(topk), float(alpha), float(beta), float(eps)

    @torch.no_grad()
    def __call__(self, pred_scores: torch.Tensor, pred_boxes: torch.Tensor, points: torch.Tensor,
                 gt_labels: torch.Tensor, gt_boxes: torch.Tensor, gt_mask: torch.Tensor) -> Assignment:
        """Assign.

        Args:
            pred_scores: ``[B, A, C]`` class probabilities (after the sigmoid).
            pred_boxes: ``[B, A, 4]`` predicted xyxy, input pixels.
            points: ``[A, 2]`` anchor points, input pixels.
            gt_labels: ``[B, M]`` int64 classes of the (padded) ground-truth boxes.
            gt_boxes: ``[B, M, 4]`` xyxy pixels.
            gt_mask: ``[B, M]`` bool, which of the ``M`` slots hold a real box.
        """
        b, a, c = pred_scores.shape
        m = gt_boxes.shape[1]
        dev = pred_scores.device
        if m == 0:
            return Assignment(torch.zeros(b, a, dtype=torch.long, device=dev), torch.zeros(b, a, 4, device=dev),
                              torch.zeros(b, a, c, device=dev), torch.zeros(b, a, dtype=torch.bool, device=dev),
                              torch.zeros(b, a, dtype=torch.long, device=dev))
        # anchors whose point lies strictly inside each box: [B, M, A]
        lt = points.view(1, 1, a, 2) - gt_boxes[:, :, None, :2]
        rb = gt_boxes[:, :, None, 2:] - points.view(1, 1, a, 2)
        inside = torch.cat([lt, rb], dim=-1).amin(dim=-1) > self.eps
        candidates = inside & gt_mask[:, :, None]
        # alignment metric on candidate pairs only
        overlaps = torch.zeros(b, m, a, dtype=pred_boxes.dtype, device=dev)
        scores = torch.zeros(b, m, a, dtype=pred_scores.dtype, device=dev)
        bi, mi, ai = candidates.nonzero(as_tuple=True)
        label = gt_labels[bi, mi].clamp(0, c - 1)
        scores[bi, mi, ai] = pred_scores[bi, ai, label]
        overlaps[bi, mi, ai] = aligned_ciou(pred_boxes[bi, ai], gt_boxes[bi, mi]).clamp(min=0).to(overlaps.dtype)
        metric = scores.pow(self.alpha) * overlaps.pow(self.beta)
        # top-k candidates of each box
        k = min(self.topk, a)
        top_idx = metric.topk(k, dim=-1).indices  # [B, M, k]
        in_top = torch.zeros_like(candidates).scatter_(-1, top_idx, True)
        pos = in_top & candidates  # [B, M, A]
        # an anchor claimed by several boxes keeps the box it overlaps most
        multi = pos.sum(dim=1, keepdim=True) > 1  # [B, 1, A]
        if multi.any():
            best = overlaps.argmax(dim=1, keepdim=True)  # [B, 1, A]
            only_best = torch.zeros_like(pos).scatter_(1, best, True)
            pos = torch.where(multi, only_best & candidates, pos)
        fg = pos.any(dim=1)  # [B, A]
        gt_index = pos.float().argmax(dim=1)  # [B, A]
        batch = torch.arange(b, device=dev)[:, None]
        labels = gt_labels[batch, gt_index].clamp(min=0)
        boxes = gt_boxes[batch, gt_index]
        # soft targets: metric normalised per box so its best anchor scores the box's best IoU
        metric = metric * pos
        best_metric = metric.amax(dim=-1, keepdim=True)
        best_iou = (overlaps * pos).amax(dim=-1, keepdim=True)
        norm = (metric * best_iou / (best_metric + self.eps)).amax(dim=1)  # [B, A]
        target_scores = torch.zeros(b, a, c, dtype=pred_scores.dtype, device=dev)
        target_scores.scatter_(-1, labels.unsqueeze(-1), 1.0)
        target_scores = target_scores * (norm * fg).unsqueeze(-1)
        return Assignment(labels * fg, boxes, target_scores, fg, gt_index)
