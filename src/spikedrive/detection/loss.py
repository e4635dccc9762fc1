"""YOLOv8's detection loss: BCE classification + CIoU box + distribution focal loss.

``loss = (gain_box * L_ciou + gain_cls * L_bce + gain_dfl * L_dfl) * B`` where each term is a sum
over anchors divided by the sum of the soft class targets (so a batch with more objects does not
weigh more), and the factor ``B`` (batch size) is YOLOv8's: its SGD learning rates assume it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from .assigner import TaskAlignedAssigner
from .boxes import aligned_ciou, box_to_dist, dist_to_box
from .decode import dfl_expectation, flatten_levels, make_anchors

__all__ = ["DetectionLoss", "dfl_loss", "pad_targets"]


def dfl_loss(box_logits: torch.Tensor, target_dist: torch.Tensor) -> torch.Tensor:
    """Distribution focal loss per anchor.

    Args:
        box_logits: ``[N, 4, reg_max]`` logits.
        target_dist: ``[N, 4]`` distances in bins, in ``[0, reg_max - 1)``.

    Returns:
        ``[N]``: the mean over the four sides of the cross-entropy to the two bins around the
        target, weighted by closeness (``-(r - y) log p_l - (y - l) log p_r``).
    """
    left = target_dist.floor().long()
    w_left = (left + 1).float() - target_dist
    logp = F.log_softmax(box_logits.float(), dim=-1)
    lp = logp.gather(-1, left.unsqueeze(-1)).squeeze(-1)
    rp = logp.gather(-1, (left + 1).unsqueeze(-1)).squeeze(-1)
    return -(lp * w_left + rp * (1.0 - w_left)).mean(dim=-1)


def pad_targets(targets: Sequence[dict[str, Any]], device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-image ``{"boxes": [N_i, 4] xyxy, "labels": [N_i]}`` -> padded ``(labels [B, M], boxes
    [B, M, 4], mask [B, M])`` with ``M = max N_i``."""
    m = max((len(t["labels"]) for t in targets), default=0)
    b = len(targets)
    labels = torch.zeros(b, m, dtype=torch.long, device=device)
    boxes = torch.zeros(b, m, 4, dtype=torch.float32, device=device)
    mask = torch.zeros(b, m, dtype=torch.bool, device=device)
    for i, t in enumerate(targets):
        n = len(t["labels"])
        if n:
            labels[i, :n] = torch.as_tensor(t["labels"], device=device).long()
            boxes[i, :n] = torch.as_tensor(t["boxes"], device=device).float().reshape(n, 4)
            mask[i, :n] = True
    return labels, boxes, mask


class DetectionLoss:
    """The loss of an anchor-free head with DFL.

    Args:
        num_classes: classes ``C``; reg_max: DFL bins (16); strides: pixels per cell per level.
        box, cls, dfl: the gains (YOLOv8: 7.5, 0.5, 1.5).
        assigner: a :class:`TaskAlignedAssigner` (default topk 10, alpha 0.5, beta 6).
    """

    def __init__(self, num_classes: int, reg_max: int = 16, strides: Sequence[int] = (8, 16, 32),
                 box: float = 7.5, cls: float = 0.5, dfl: float = 1.5,
                 assigner: TaskAlignedAssigner | None = None) -> None:
        if num_classes < 1 or reg_max < 2:
            raise ValueError(f"DetectionLoss: need num_classes >= 1 and reg_max >= 2, got {num_classes} and {reg_max}")
        self.num_classes, self.reg_max, self.strides = int(num_classes), int(reg_max), tuple(int(s) for s in strides)
        self.gains = (float(box), float(cls), float(dfl))
        self.assigner = assigner or TaskAlignedAssigner()

    def __call__(self, outputs: Sequence[torch.Tensor], targets: Sequence[dict[str, Any]]
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(scalar loss, {"box", "cls", "dfl"} unscaled terms)`` for raw head maps ``outputs``
        (one ``[B, 4*reg_max + C, H_i, W_i]`` per level) and per-image targets (xyxy pixels)."""
        box_logits, cls_logits, shapes = flatten_levels(outputs, self.reg_max, self.num_classes)
        if len(shapes) != len(self.strides):
            raise ValueError(f"DetectionLoss: {len(shapes)} output levels but strides {self.strides}")
        b = cls_logits.shape[0]
        if len(targets) != b:
            raise ValueError(f"DetectionLoss: {len(targets)} targets for a batch of {b}")
        dev = cls_logits.device
        points, stride = make_anchors(shapes, self.strides, device=dev)
        pred_dist = dfl_expectation(box_logits.float())
        pred_boxes = dist_to_box(pred_dist, points)  # grid units
        gt_labels, gt_boxes, gt_mask = pad_targets(targets, dev)
        cls_logits = cls_logits.float()
        got = self.assigner(cls_logits.detach().sigmoid(), (pred_boxes.detach() * stride), points * stride,
                            gt_labels, gt_boxes, gt_mask)
        score_sum = got.scores.sum().clamp(min=1.0)
        loss_cls = F.binary_cross_entropy_with_logits(cls_logits, got.scores, reduction="sum") / score_sum
        if got.fg.any():
            weight = got.scores.sum(-1)[got.fg]  # [P]
            stride_fg = stride.expand(b, -1, -1)[got.fg]  # [P, 1]
            target_boxes = got.boxes[got.fg] / stride_fg
            iou = aligned_ciou(pred_boxes[got.fg], target_boxes)
            loss_box = ((1.0 - iou) * weight).sum() / score_sum
            points_fg = points.expand(b, -1, -1)[got.fg]
            target_dist = box_to_dist(target_boxes, points_fg, self.reg_max - 1 - 0.01)
            loss_dfl = (dfl_loss(box_logits[got.fg], target_dist) * weight).sum() / score_sum
        else:
            loss_box = loss_dfl = cls_logits.sum() * 0.0
        g_box, g_cls, g_dfl = self.gains
        # times the batch size, YOLOv8's convention (the gains are tuned for it)
        loss = (g_box * loss_box + g_cls * loss_cls + g_dfl * loss_dfl) * b
        return loss, {"box": loss_box.detach(), "cls": loss_cls.detach(), "dfl": loss_dfl.detach()}
