"""Box-aware augmentation on torchvision ``tv_tensors``: letterbox, HSV, flips, mosaic.

Each transform maps ``(inputs, target)`` to ``(inputs, target)``, where ``inputs`` is an image
``tv_tensors.Image`` ``[3, H, W]`` (uint8, or float in ``[0, 1]``) or a frame sequence
``tv_tensors.Video`` ``[T, 3, H, W]``, and ``target`` holds ``boxes`` (``tv_tensors.BoundingBoxes``,
XYXY pixels) and ``labels`` ``[N]``; torchvision's functional ops move the boxes with the pixels.
Random draws come from torch's global generator, which the engine seeds per worker and epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as TF

__all__ = ["Letterbox", "RandomHSV", "RandomFlip", "mosaic4", "drop_small_boxes", "fill_value"]

Target = dict[str, Any]


def fill_value(inputs: torch.Tensor, fill: float = 114.0) -> float:
    """``fill`` (a uint8 grey level) in the units of ``inputs``: as is for integers, ``/255`` for floats."""
    return float(fill) if not inputs.is_floating_point() else float(fill) / 255.0


def _boxes(target: Target) -> tv_tensors.BoundingBoxes:
    boxes = target["boxes"]
    if not isinstance(boxes, tv_tensors.BoundingBoxes):
        raise TypeError(f"detection transforms: target['boxes'] must be a tv_tensors.BoundingBoxes, got {type(boxes).__name__}")
    return boxes


def drop_small_boxes(target: Target, min_side: float = 2.0) -> Target:
    """Clamp the boxes ``[N, 4]`` (pixels, any ``tv_tensors`` format) to their canvas and drop
    those with a side under ``min_side`` pixels, with their ``labels`` and ``iscrowd`` ``[N]``.
    Boxes made with ``clamping_mode=None`` (torchvision's opt-out) are not clamped, so those
    reaching outside the canvas are dropped."""
    boxes = TF.clamp_bounding_boxes(_boxes(target))
    # torchvision's sanitize keeps w >= min_size and h >= min_size, exactly our rule; its area
    # test (min_area, default 1) would also drop boxes under 1 pixel of area that pass it when
    # min_side < 1, so it is switched off. SanitizeBoundingBoxes is not used: it filters only the
    # labels, and iscrowd must follow the boxes too.
    boxes, keep = TF.sanitize_bounding_boxes(boxes, min_size=min_side, min_area=0.0)
    out = dict(target)
    out["boxes"] = boxes
    for key in ("labels", "iscrowd"):
        if key in out:
            out[key] = torch.as_tensor(out[key])[keep]
    return out


@dataclass(frozen=True)
class Letterbox:
    """Resize keeping the aspect ratio so the longer side is ``size``, then pad to ``size x size``
    with grey ``fill`` (114) centred (YOLO's letterbox). Adds ``target["letterbox"] = [scale,
    pad_left, pad_top]`` so boxes can be mapped back: ``original = (box - pad) / scale``.

    Args:
        size: output side, pixels (a multiple of the coarsest stride, 32).
        fill: grey level of the padding on a 0..255 scale.
        scaleup: allow enlarging (False: only shrink, as YOLO's evaluation of small images).
    """

    size: int
    fill: float = 114.0
    scaleup: bool = True

    def __call__(self, inputs: torch.Tensor, target: Target) -> tuple[torch.Tensor, Target]:
        h, w = int(inputs.shape[-2]), int(inputs.shape[-1])
        scale = min(self.size / h, self.size / w)
        if not self.scaleup:
            scale = min(scale, 1.0)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        top, left = (self.size - nh) // 2, (self.size - nw) // 2
        padding = [left, top, self.size - nw - left, self.size - nh - top]
        out = dict(target)
        boxes = _boxes(target)
        if (nh, nw) != (h, w):
            inputs = TF.resize(inputs, [nh, nw], antialias=True)
            boxes = TF.resize(boxes, [nh, nw])
        inputs = TF.pad(inputs, padding, fill=fill_value(inputs, self.fill))
        out["boxes"] = TF.pad(boxes, padding)
        out["letterbox"] = torch.tensor([nw / w, float(left), float(top)])
        return inputs, out


@dataclass(frozen=True)
class RandomHSV:
    """YOLO's colour jitter: hue shifted by up to ``h`` of the circle, saturation and value scaled
    by factors in ``[1 - s, 1 + s]`` and ``[1 - v, 1 + v]`` (torchvision's adjust_* ops). Images
    only (``[3, H, W]``); boxes are unchanged."""

    h: float = 0.015
    s: float = 0.7
    v: float = 0.4

    def __call__(self, inputs: torch.Tensor, target: Target) -> tuple[torch.Tensor, Target]:
        r = torch.rand(3) * 2 - 1
        if self.h:
            inputs = TF.adjust_hue(inputs, float(r[0]) * self.h)
        if self.s:
            inputs = TF.adjust_saturation(inputs, 1.0 + float(r[1]) * self.s)
        if self.v:
            inputs = TF.adjust_brightness(inputs, 1.0 + float(r[2]) * self.v)
        return inputs, target


@dataclass(frozen=True)
class RandomFlip:
    """Left-right flip with probability ``p`` (pixels and boxes)."""

    p: float = 0.5

    def __call__(self, inputs: torch.Tensor, target: Target) -> tuple[torch.Tensor, Target]:
        if self.p > 0 and float(torch.rand(())) < self.p:
            out = dict(target)
            out["boxes"] = TF.horizontal_flip(_boxes(target))
            return TF.horizontal_flip(inputs), out
        return inputs, target


def mosaic4(samples: Sequence[tuple[torch.Tensor, Target]], size: int, fill: float = 114.0,
            min_area_kept: float = 0.1) -> tuple[torch.Tensor, Target]:
    """YOLO's 4-image mosaic, ``size x size`` out.

    Each sample is resized so its longer side is ``size`` and put in one quadrant around a random
    centre of a ``2 size`` canvas; the central ``size x size`` window is returned. Boxes move with
    their pixels, are clipped to the window, and are dropped when under 2 px a side or when less
    than ``min_area_kept`` of their area stays in the window (YOLO's box candidates).

    Args:
        samples: four ``(inputs [..., 3, H, W], target)`` of one kind (images or frame sequences).
    """
    if len(samples) != 4:
        raise ValueError(f"mosaic4: needs 4 samples, got {len(samples)}")
    first = samples[0][0]
    canvas = torch.full((*first.shape[:-2], 2 * size, 2 * size), fill_value(first, fill), dtype=first.dtype)
    xc, yc = (int(v) for v in torch.randint(size // 2, 3 * size // 2 + 1, (2,)))
    all_boxes, labels, crowd = [], [], []
    for i, (inputs, target) in enumerate(samples):
        h, w = int(inputs.shape[-2]), int(inputs.shape[-1])
        scale = size / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        img = TF.resize(inputs, [nh, nw], antialias=True) if (nh, nw) != (h, w) else inputs
        boxes = _boxes(target).as_subclass(torch.Tensor).float() * torch.tensor([nw / w, nh / h, nw / w, nh / h])
        if i == 0:
            x1a, y1a, x2a, y2a = max(xc - nw, 0), max(yc - nh, 0), xc, yc
            x1b, y1b = nw - (x2a - x1a), nh - (y2a - y1a)
        elif i == 1:
            x1a, y1a, x2a, y2a = xc, max(yc - nh, 0), min(xc + nw, 2 * size), yc
            x1b, y1b = 0, nh - (y2a - y1a)
        elif i == 2:
            x1a, y1a, x2a, y2a = max(xc - nw, 0), yc, xc, min(2 * size, yc + nh)
            x1b, y1b = nw - (x2a - x1a), 0
        else:
            x1a, y1a, x2a, y2a = xc, yc, min(xc + nw, 2 * size), min(2 * size, yc + nh)
            x1b, y1b = 0, 0
        canvas[..., y1a:y2a, x1a:x2a] = img[..., y1b:y1b + (y2a - y1a), x1b:x1b + (x2a - x1a)]
        shift = torch.tensor([x1a - x1b, y1a - y1b] * 2, dtype=torch.float32)
        all_boxes.append(boxes + shift)
        labels.append(torch.as_tensor(target["labels"]).long())
        crowd.append(torch.as_tensor(target.get("iscrowd", torch.zeros(len(boxes), dtype=torch.long))).long())
    off = size // 2
    out_img = canvas[..., off:off + size, off:off + size].clone()
    boxes = torch.cat(all_boxes) - off
    clipped = boxes.clamp(0, size)
    area = (boxes[:, 2:] - boxes[:, :2]).prod(dim=1)
    wh = clipped[:, 2:] - clipped[:, :2]
    keep = (wh > 2).all(dim=1) & (wh.prod(dim=1) > min_area_kept * area)
    kind = tv_tensors.Video if first.dim() == 4 else tv_tensors.Image
    target = {"boxes": tv_tensors.BoundingBoxes(clipped[keep], format="XYXY", canvas_size=(size, size)),
              "labels": torch.cat(labels)[keep], "iscrowd": torch.cat(crowd)[keep]}
    return kind(out_img), target
