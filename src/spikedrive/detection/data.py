"""Detection datasets for the engine: COCO images and Gen1 event frames, letterboxed, augmented.

Both builders return ``(train, val, test)`` of ``(inputs, target)`` items: ``inputs`` float32 in
``[0, 1]``, ``[3, S, S]`` images or ``[T, 3, S, S]`` event frames, and ``target`` a dict with
``boxes`` (``tv_tensors.BoundingBoxes`` XYXY pixels of the letterboxed input), ``labels`` ``[N]``
int64, ``iscrowd``, ``image_id`` and ``letterbox`` ``[scale, pad_left, pad_top]``. Batch them with
:func:`~spikedrive.data.images.coco.detection_collate` (each split's ``collate_fn``): images
``[B, 3, S, S]``, frames ``[T, B, 3, S, S]``, targets a list.

Training mosaic is switched off for the last ``close_mosaic`` epochs: the view's
:meth:`DetectionView.set_epoch` must be told the epoch (the engine's ``set_loader_epoch`` calls it).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from ..data.datasets.event_detection import Gen1
from ..data.events.transforms import ToEventHistogram
from ..data.images.event_frames import EVENT_LAYOUTS, Gen1Target, open_event_split
from ..data.images.coco import COCO_LAYOUT, detection_collate, open_coco_splits
from ..data.images.splits import carve_val, require_root
from .transforms import Letterbox, RandomFlip, RandomHSV, drop_small_boxes, mosaic4

__all__ = ["DetectionView", "build_coco_detection", "build_gen1_detection", "GEN1_DETECTION_LAYOUT"]

Root = str | os.PathLike[str] | None
GEN1_DETECTION_LAYOUT = EVENT_LAYOUTS["gen1"]


class DetectionView(Dataset):
    """Items ``indices`` of ``base`` (``(inputs, target)`` with ``BoundingBoxes``), letterboxed to
    ``img_size`` and, for training, augmented.

    Args:
        base: dataset of ``(uint8 image [3, H, W] or float frames [T, 3, H, W], target)``.
        indices: the items of this split (None: all).
        img_size: output side (multiple of 32).
        train: apply the augmentation below.
        mosaic: probability of a 4-sample mosaic; close_mosaic: switch it off for the last
            this-many of ``epochs``.
        hsv: ``(h, s, v)`` gains of :class:`RandomHSV` (images only; None: off).
        hflip: left-right flip probability.
        min_box: boxes with a side under this many pixels after the transforms are dropped.
        time_major: the items are frame sequences, batched ``[T, B, ...]`` (the engine's energy
            report then cuts batches along dimension 1).
    """

    def __init__(self, base: Dataset, indices: Sequence[int] | np.ndarray | None, img_size: int, train: bool = False,
                 mosaic: float = 0.0, close_mosaic: int = 0, epochs: int = 0,
                 hsv: Sequence[float] | None = None, hflip: float = 0.0, min_box: float = 1.0,
                 time_major: bool = False) -> None:
        if int(img_size) % 32:
            raise ValueError(f"DetectionView: img_size must be a multiple of 32 (the coarsest stride), got {img_size}")
        self.base, self.img_size, self.train = base, int(img_size), bool(train)
        self.indices = np.arange(len(base)) if indices is None else np.asarray(indices, dtype=np.int64)  # type: ignore[arg-type]
        self.mosaic, self.close_mosaic, self.epochs = float(mosaic), int(close_mosaic), int(epochs)
        self.hsv = RandomHSV(*hsv) if (train and hsv) else None
        self.flip = RandomFlip(hflip) if (train and hflip) else None
        self.letterbox = Letterbox(self.img_size)
        self.min_box = float(min_box)
        self.mosaic_on = self.train and self.mosaic > 0
        self.classes = getattr(base, "classes", None)
        self.time_major = bool(time_major)

    def set_epoch(self, epoch: int, epochs: int | None = None) -> None:
        """Switch mosaic off from epoch ``epochs - close_mosaic`` on (0-based ``epoch``)."""
        total = self.epochs if epochs is None else int(epochs)
        self.mosaic_on = self.train and self.mosaic > 0 and not (self.close_mosaic and epoch >= total - self.close_mosaic)

    def __len__(self) -> int:
        return len(self.indices)

    def _raw(self, index: int) -> tuple[torch.Tensor, dict[str, Any]]:
        inputs, target = self.base[int(self.indices[index])]
        if isinstance(inputs, np.ndarray):
            inputs = torch.from_numpy(inputs)
        inputs = inputs.as_subclass(torch.Tensor)
        inputs = tv_tensors.Video(inputs) if inputs.dim() == 4 else tv_tensors.Image(inputs)
        return inputs, target

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, Any]]:
        if self.mosaic_on and float(torch.rand(())) < self.mosaic:
            others = torch.randint(0, len(self), (3,)).tolist()
            inputs, target = mosaic4([self._raw(i) for i in [index, *others]], self.img_size)
            target["letterbox"] = torch.tensor([1.0, 0.0, 0.0])
        else:
            inputs, target = self.letterbox(*self._raw(index))
        if self.hsv is not None and inputs.dim() == 3:
            inputs, target = self.hsv(inputs, target)
        if self.flip is not None:
            inputs, target = self.flip(inputs, target)
        target = drop_small_boxes(target, self.min_box)
        target["image_id"] = int(self.indices[index])
        if not inputs.is_floating_point():
            inputs = inputs.float() / 255.0
        return inputs.as_subclass(torch.Tensor), target

    collate_fn = staticmethod(detection_collate)


def build_coco_detection(root: Root, train_split: str = "train2017", test_split: str = "val2017",
                         val_fraction: float = 0.05, seed: int = 0, img_size: int = 640, mosaic: float = 1.0,
                         close_mosaic: int = 10, epochs: int = 300, hsv: Sequence[float] | None = (0.015, 0.7, 0.4),
                         hflip: float = 0.5, drop_empty_boxes: bool = False) -> tuple[Dataset, Dataset, Dataset]:
    """COCO ``(train, val, test)`` for a detector: ``val`` is ``val_fraction`` of ``train_split`` (by
    ``seed``), ``test`` is ``test_split`` (val2017). Training uses mosaic (switched off for the
    last ``close_mosaic`` of ``epochs``), HSV and flips; evaluation only letterboxes. Labels are
    contiguous in the training file's sorted category ids."""
    path = require_root("coco", root, COCO_LAYOUT)
    train_base, test_base = open_coco_splits(path, train_split, test_split, drop_empty_boxes)
    train_idx, val_idx = carve_val(len(train_base), val_fraction, seed)
    aug = dict(mosaic=mosaic, close_mosaic=close_mosaic, epochs=epochs, hsv=hsv, hflip=hflip)
    return (DetectionView(train_base, train_idx, img_size, train=True, **aug),
            DetectionView(train_base, val_idx, img_size), DetectionView(test_base, None, img_size))


def build_gen1_detection(root: Root, T: int = 5, window_us: int = 250_000, img_size: int = 320,
                         sensor_size: Sequence[int] = Gen1.sensor_size, hflip: float = 0.0, mosaic: float = 0.0,
                         close_mosaic: int = 0, epochs: int = 0, min_box: float = 1.0) -> tuple[Dataset, Dataset, Dataset]:
    """Gen1 ``(train, val, test)``: per label time, SpikeYOLO's histogram frames ``[T, 3, S, S]``
    (the ``window_us`` before the label in ``T`` bins, grey 127/255, events 0 or 1, letterboxed
    to ``img_size`` with grey 114/255) and the boxes labelled then (last row per track). The
    official folders are the splits; SpikeYOLO trains Gen1 without augmentation (``hflip``,
    ``mosaic`` default off). ``sensor_size`` ``(W, H)``: 304x240 for Gen1 (smaller for small
    synthetic sets)."""
    path = require_root("gen1", root, GEN1_DETECTION_LAYOUT)
    size = (int(sensor_size[0]), int(sensor_size[1]))
    histogram = ToEventHistogram(size, n_bins=T, window_us=window_us, normalize=True)
    target = Gen1Target(size)
    splits = []
    for split in ("train", "val", "test"):
        base = open_event_split("gen1", Gen1, path, split=split, window_us=window_us, target_transform=target,
                                transform=histogram)
        train = split == "train"
        splits.append(DetectionView(base, None, img_size, train=train, mosaic=mosaic if train else 0.0,
                                    close_mosaic=close_mosaic, epochs=epochs, hflip=hflip, min_box=min_box,
                                    time_major=True))
    return tuple(splits)  # type: ignore[return-value]
