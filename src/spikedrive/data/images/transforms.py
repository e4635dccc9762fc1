"""Image pipelines: timm's ``create_transform`` for classification, torchvision
``transforms.v2`` for detection (boxes move with the image)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from timm.data import create_transform
from torchvision.transforms import v2

__all__ = ["classification_transforms", "detection_transforms"]


def _pair(v: Sequence[float] | None) -> tuple[float, float] | None:
    return None if v is None else (float(v[0]), float(v[1]))


def classification_transforms(
    img_size: int = 224,
    augment: bool = True,
    scale: Sequence[float] | None = None,
    ratio: Sequence[float] | None = None,
    hflip: float = 0.5,
    color_jitter: float = 0.4,
    auto_augment: str | None = None,
    re_prob: float = 0.0,
    interpolation: str = "bilinear",
    crop_pct: float | None = None,
    mean: Sequence[float] = (0.485, 0.456, 0.406),
    std: Sequence[float] = (0.229, 0.224, 0.225),
) -> tuple[Callable[[Any], torch.Tensor], Callable[[Any], torch.Tensor]]:
    """``(train, eval)`` pipelines from ``timm.data.create_transform``: PIL image → normalized
    ``[3, img_size, img_size]`` float32.

    Training: random-resized crop (``scale``, ``ratio``), flips (``hflip``), colour jitter,
    ``auto_augment`` (timm's policy strings, e.g. ``"rand-m9-mstd0.5-inc1"``) and random erasing
    (``re_prob``). ``augment=False`` gives the training set the evaluation pipeline. Evaluation:
    resize to ``img_size / crop_pct`` and centre-crop ``img_size`` (timm's default ``crop_pct``
    is 0.875; 1.0 keeps small images such as CIFAR whole).
    """
    common = dict(input_size=int(img_size), interpolation=interpolation, crop_pct=crop_pct,
                  mean=tuple(mean), std=tuple(std))
    eval_tf = create_transform(is_training=False, **common)
    if not augment:
        return eval_tf, eval_tf
    train_tf = create_transform(
        is_training=True, scale=_pair(scale), ratio=_pair(ratio), hflip=hflip,
        color_jitter=color_jitter, auto_augment=auto_augment, re_prob=re_prob, **common)
    return train_tf, eval_tf


def detection_transforms(img_size: int | Sequence[int] | None = None, hflip: float = 0.5
                         ) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``(train, eval)`` ``transforms.v2`` pipelines over ``(image uint8 [3, H, W], target)``.

    Both resize to ``img_size`` (an int for a square, or ``(H, W)``; ``None`` keeps each
    image's size, so batches need equal sizes) and scale the image to float32 in ``[0, 1]``;
    training first flips left-right with probability ``hflip``. The target's ``BoundingBoxes``
    are flipped and rescaled with the image.
    """
    size: list[v2.Transform] = []
    if img_size is not None:
        hw = (int(img_size), int(img_size)) if isinstance(img_size, int) else tuple(int(s) for s in img_size)
        size = [v2.Resize(hw, antialias=True)]
    to_float = v2.ToDtype(torch.float32, scale=True)
    train = v2.Compose([v2.RandomHorizontalFlip(p=hflip), *size, to_float])
    return train, v2.Compose([*size, to_float])
