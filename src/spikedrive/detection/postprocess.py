"""From raw head maps to detections: confidence threshold, class-wise NMS, top detections."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchvision.ops import batched_nms

from .decode import decode_outputs

__all__ = ["postprocess", "select_detections"]


def select_detections(boxes: torch.Tensor, scores: torch.Tensor, conf: float = 0.001, iou: float = 0.7,
                      max_det: int = 300, multi_label: bool = False) -> dict[str, torch.Tensor]:
    """Detections of one image.

    Args:
        boxes: ``[A, 4]`` xyxy pixels; scores: ``[A, C]`` class probabilities.
        conf: keep ``score > conf``.
        iou: NMS IoU threshold, per class (``torchvision.ops.batched_nms``).
        max_det: keep at most this many, best first.
        multi_label: one candidate per (anchor, class) above ``conf`` instead of the best class only.

    Returns:
        ``{"boxes": [K, 4], "scores": [K], "labels": [K] int64}`` sorted by score.
    """
    if multi_label:
        ai, ci = (scores > conf).nonzero(as_tuple=True)
        cand_boxes, cand_scores, cand_labels = boxes[ai], scores[ai, ci], ci
    else:
        cand_scores, cand_labels = scores.max(dim=-1)
        keep = cand_scores > conf
        cand_boxes, cand_scores, cand_labels = boxes[keep], cand_scores[keep], cand_labels[keep]
    keep = batched_nms(cand_boxes.float(), cand_scores.float(), cand_labels, iou)[:max_det]
    return {"boxes": cand_boxes[keep], "scores": cand_scores[keep], "labels": cand_labels[keep].long()}


def postprocess(outputs: Sequence[torch.Tensor], strides: Sequence[int], reg_max: int, num_classes: int,
                conf: float = 0.001, iou: float = 0.7, max_det: int = 300, multi_label: bool = False
                ) -> list[dict[str, torch.Tensor]]:
    """Raw head maps (one ``[B, 4*reg_max + C, H_i, W_i]`` per level) -> one detection dict per
    image (see :func:`select_detections`), boxes in input pixels."""
    boxes, logits = decode_outputs(outputs, strides, reg_max, num_classes)
    probs = logits.float().sigmoid()
    return [select_detections(boxes[i], probs[i], conf, iou, max_det, multi_label) for i in range(boxes.shape[0])]
