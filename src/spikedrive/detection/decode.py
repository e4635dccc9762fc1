"""The anchor-free decoder: anchor points per level and distribution focal loss (DFL) decoding.

A detection head emits, per level ``i`` of stride ``s_i``, ``[B, 4 * reg_max + C, H_i, W_i]``:
for each side of the box a distribution over ``reg_max`` bins (the distance from the cell centre
to that side in units of the stride, ``0 .. reg_max - 1``) followed by ``C`` class logits. The
expected value of each distribution is the distance (Li et al. 2020, as in YOLOv8).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .boxes import dist_to_box

__all__ = ["make_anchors", "flatten_levels", "dfl_expectation", "decode_outputs"]


def make_anchors(shapes: Sequence[tuple[int, int]], strides: Sequence[int], offset: float = 0.5,
                 device: torch.device | None = None, dtype: torch.dtype = torch.float32
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Cell centres of every level, in grid units of their own level.

    Args:
        shapes: ``(H_i, W_i)`` of each level.
        strides: the input pixels per cell of each level.
        offset: where in the cell the point sits (0.5: the centre).

    Returns:
        ``(points [A, 2] (x, y) in grid units, stride [A, 1] pixels)``, levels in order, each
        level row-major; ``A = sum_i H_i W_i``. ``points * stride`` is in input pixels.
    """
    if len(shapes) != len(strides):
        raise ValueError(f"make_anchors: {len(shapes)} level shapes but {len(strides)} strides")
    points, stride = [], []
    for (h, w), s in zip(shapes, strides):
        ys = torch.arange(h, device=device, dtype=dtype) + offset
        xs = torch.arange(w, device=device, dtype=dtype) + offset
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        points.append(torch.stack([gx, gy], dim=-1).reshape(-1, 2))
        stride.append(torch.full((h * w, 1), float(s), device=device, dtype=dtype))
    return torch.cat(points), torch.cat(stride)


def flatten_levels(outputs: Sequence[torch.Tensor], reg_max: int, num_classes: int
                   ) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, int]]]:
    """Per-level head maps -> ``(box logits [B, A, 4, reg_max], class logits [B, A, C], shapes)``.

    Raises ValueError when a level does not have ``4 * reg_max + num_classes`` channels.
    """
    want = 4 * reg_max + num_classes
    flat, shapes = [], []
    for i, out in enumerate(outputs):
        if out.dim() != 4 or out.shape[1] != want:
            raise ValueError(f"flatten_levels: level {i} must be [B, 4*reg_max + num_classes = {want}, H, W], "
                             f"got shape {tuple(out.shape)}")
        shapes.append((int(out.shape[2]), int(out.shape[3])))
        flat.append(out.flatten(2))
    cat = torch.cat(flat, dim=2).transpose(1, 2)  # [B, A, 4*reg_max + C]
    box, cls = cat.split((4 * reg_max, num_classes), dim=-1)
    return box.reshape(box.shape[0], box.shape[1], 4, reg_max), cls, shapes


def dfl_expectation(box_logits: torch.Tensor) -> torch.Tensor:
    """``[..., 4, reg_max]`` logits -> ``[..., 4]`` expected distances in bins (``softmax @ arange``)."""
    bins = torch.arange(box_logits.shape[-1], device=box_logits.device, dtype=box_logits.dtype)
    return box_logits.softmax(dim=-1) @ bins


def decode_outputs(outputs: Sequence[torch.Tensor], strides: Sequence[int], reg_max: int, num_classes: int
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw head maps -> ``(boxes [B, A, 4] xyxy input pixels, class logits [B, A, C])``."""
    box_logits, cls, shapes = flatten_levels(outputs, reg_max, num_classes)
    points, stride = make_anchors(shapes, strides, device=cls.device, dtype=torch.float32)
    boxes = dist_to_box(dfl_expectation(box_logits.float()), points) * stride
    return boxes, cls
