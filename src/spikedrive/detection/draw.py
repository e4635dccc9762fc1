"""Drawing detections onto images or event frames and writing PNGs."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torchvision.utils import draw_bounding_boxes

__all__ = ["draw_detections", "save_detections_png"]


def draw_detections(image: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str],
                    scores: torch.Tensor | None = None, gt_boxes: torch.Tensor | None = None) -> torch.Tensor:
    """``image`` ``[3, H, W]`` float in ``[0, 1]`` (or uint8), or frames ``[T, 3, H, W]`` (the last
    frame is drawn) -> uint8 ``[3, H, W]`` with the boxes (xyxy pixels) drawn: predictions in
    colour per class with ``name score`` captions, ground truth (if given) in white."""
    if image.dim() == 4:
        image = image[-1]
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"draw_detections: image must be [3, H, W] or [T, 3, H, W], got shape {tuple(image.shape)}")
    img = image.detach().cpu()
    if img.is_floating_point():
        img = (img.clamp(0, 1) * 255).round().to(torch.uint8)
    if img.shape[0] == 1:
        img = img.expand(3, -1, -1).contiguous()
    palette = ["red", "lime", "blue", "orange", "magenta", "cyan", "yellow"]
    if gt_boxes is not None and len(gt_boxes):
        img = draw_bounding_boxes(img, gt_boxes.detach().cpu().float(), colors="white", width=1)
    if len(boxes):
        caps = [class_names[int(k)] if int(k) < len(class_names) else str(int(k)) for k in labels]
        if scores is not None:
            caps = [f"{c} {float(s):.2f}" for c, s in zip(caps, scores)]
        colours = [palette[int(k) % len(palette)] for k in labels]
        img = draw_bounding_boxes(img, boxes.detach().cpu().float(), labels=caps, colors=colours, width=2)
    return img


def save_detections_png(path: str | os.PathLike[str], image: torch.Tensor, det: dict[str, torch.Tensor],
                        class_names: Sequence[str], gt_boxes: torch.Tensor | None = None) -> Path:
    """Draw ``det`` (``boxes``, ``labels``, ``scores``) on ``image`` (see :func:`draw_detections`) and
    write a PNG; returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    pixels = draw_detections(image, det["boxes"], det["labels"], class_names, det.get("scores"), gt_boxes)
    Image.fromarray(pixels.permute(1, 2, 0).numpy()).save(out)
    return out
