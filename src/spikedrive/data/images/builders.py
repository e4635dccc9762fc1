"""``(train, val, test)`` image datasets from their real on-disk layouts under ``root``.

Each builder carves ``val`` out of the training split by ``seed`` (stratified by class for
classification) and uses the official held-out split (CIFAR's ``test_batch``, ImageNet's
``val/``, COCO's ``val2017``) as ``test``, which model selection never sees.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from torch.utils.data import Dataset

from .cifar import CIFAR_LAYOUTS, CIFAR_STATS, load_cifar
from .coco import COCO_LAYOUT, open_coco_splits
from .folder import load_image_folder
from .splits import SplitView, carve_val, require_root
from .transforms import classification_transforms, detection_transforms

__all__ = ["build_cifar", "build_imagenet", "build_coco", "IMAGENET_LAYOUT"]

Root = str | os.PathLike[str] | None
Splits = tuple[Dataset, Dataset, Dataset]

IMAGENET_LAYOUT = "{root}/train/<class>/<image> and {root}/val/<class>/<image> (ImageFolder layout, val sorted into the same class folders)"
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _classification_splits(train_base: Dataset, test_base: Dataset, targets: Sequence[int],
                           val_fraction: float, seed: int, augment_kwargs: dict) -> Splits:
    train_tf, eval_tf = classification_transforms(**augment_kwargs)
    train_idx, val_idx = carve_val(len(targets), val_fraction, seed, labels=targets)
    return (SplitView(train_base, train_idx, train_tf), SplitView(train_base, val_idx, eval_tf),
            SplitView(test_base, None, eval_tf))


def build_cifar(root: Root, variant: str = "cifar10", val_fraction: float = 0.1, seed: int = 0,
                img_size: int = 32, augment: bool = True, scale: Sequence[float] | None = (0.5, 1.0),
                hflip: float = 0.5, color_jitter: float = 0.0, auto_augment: str | None = None,
                re_prob: float = 0.0, check_md5: bool = False) -> Splits:
    """CIFAR-10 / -100 ``(train, val, test)`` of ``(image [3, img_size, img_size] float32
    normalized by the CIFAR mean and std, label int)``.

    ``val_fraction`` of ``data_batch_*`` (``train`` for CIFAR-100) becomes ``val``, stratified,
    by ``seed``; ``test`` is ``test_batch`` (``test``). Augmentation: timm's training pipeline
    (random-resized crop with ``scale``, flips, ``color_jitter``, ``auto_augment``,
    ``re_prob``); ``val`` and ``test`` are only resized and normalized.
    """
    path = require_root(variant, root, CIFAR_LAYOUTS[variant] if variant in CIFAR_LAYOUTS else "{root}")
    train_base = load_cifar(path, variant, train=True, check_md5=check_md5)
    test_base = load_cifar(path, variant, train=False, check_md5=check_md5)
    mean, std = CIFAR_STATS[variant]
    aug = dict(img_size=img_size, augment=augment, scale=scale, hflip=hflip, color_jitter=color_jitter,
               auto_augment=auto_augment, re_prob=re_prob, crop_pct=1.0, mean=mean, std=std)
    return _classification_splits(train_base, test_base, train_base.targets, val_fraction, seed, aug)


def build_imagenet(root: Root, val_fraction: float = 0.01, seed: int = 0, img_size: int = 224,
                   augment: bool = True, scale: Sequence[float] | None = None, hflip: float = 0.5,
                   color_jitter: float = 0.4, auto_augment: str | None = None, re_prob: float = 0.0,
                   crop_pct: float | None = None, interpolation: str = "bilinear") -> Splits:
    """ImageNet-style ``(train, val, test)`` from ``root/train`` and ``root/val`` class folders.

    ``val`` is ``val_fraction`` of ``train/`` (stratified, by ``seed``); ``test`` is ``val/`` (the
    official validation set, which papers report). Items: ``(image [3, img_size, img_size]
    float32 normalized by the ImageNet mean and std, label int)``; timm's pipelines
    (:func:`classification_transforms`).

    Raises:
        ValueError: a missing root or split folder (one line with the layout), ``val/`` classes
            that differ from ``train/``'s, or (on reading) an image that cannot be decoded.
    """
    path = require_root("imagenet", root, IMAGENET_LAYOUT)
    for split in ("train", "val"):
        if not (path / split).is_dir():
            raise ValueError(f"imagenet: {path / split} does not exist; expected {IMAGENET_LAYOUT.format(root=path)}")
    train_base = load_image_folder(path / "train")
    test_base = load_image_folder(path / "val")
    if test_base.classes != train_base.classes:
        only = sorted(set(train_base.classes) ^ set(test_base.classes))
        raise ValueError(
            f"imagenet: {path / 'val'} and {path / 'train'} have different class folders "
            f"(in one only: {only[:5]}{' ...' if len(only) > 5 else ''}); labels would not match")
    aug = dict(img_size=img_size, augment=augment, scale=scale, hflip=hflip, color_jitter=color_jitter,
               auto_augment=auto_augment, re_prob=re_prob, crop_pct=crop_pct,
               interpolation=interpolation, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    return _classification_splits(train_base, test_base, train_base.targets, val_fraction, seed, aug)


def build_coco(root: Root, train_split: str = "train2017", test_split: str = "val2017",
               val_fraction: float = 0.05, seed: int = 0, img_size: int | Sequence[int] | None = 640,
               hflip: float = 0.5, drop_empty_boxes: bool = False) -> Splits:
    """COCO detection ``(train, val, test)`` of ``(image [3, H, W] float32 in [0, 1], target)``.

    ``val`` is ``val_fraction`` of ``train_split``'s images (by ``seed``), ``test`` is
    ``test_split`` (``val2017``: the test split with public labels). Labels are contiguous
    ``0..K-1`` in the training file's sorted category ids, the same in every split. Images are
    resized to ``img_size`` (boxes with them); training flips with probability ``hflip``.
    An annotation with ``w <= 0`` or ``h <= 0`` is an error unless ``drop_empty_boxes``.
    Batch with the datasets' ``collate_fn`` (:func:`detection_collate`).
    """
    path = require_root("coco", root, COCO_LAYOUT)
    train_base, test_base = open_coco_splits(path, train_split, test_split, drop_empty_boxes)
    train_tf, eval_tf = detection_transforms(img_size, hflip)
    train_idx, val_idx = carve_val(len(train_base), val_fraction, seed)
    return (SplitView(train_base, train_idx, train_tf, joint=True),
            SplitView(train_base, val_idx, eval_tf, joint=True),
            SplitView(test_base, None, eval_tf, joint=True))
