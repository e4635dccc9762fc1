"""COCO-format object detection: ``instances_*.json`` plus an image folder.

The JSON is parsed and checked when the dataset is built, so a bad file fails at once with the
entry that is wrong: an annotation whose box leaves its image, an unknown ``category_id`` or
``image_id``, a malformed ``bbox``. Nothing is skipped silently. (torchvision's
``CocoDetection`` needs pycocotools, which this project does not install.) The checked file is
then indexed by faster-coco-eval's pycocotools-compatible ``COCO`` (``dataset.coco``), the ground
truth that COCO-protocol evaluation (``faster_coco_eval.COCOeval``) takes; that index checks
nothing itself, hence the checks here.

Items are ``(image, target)``: ``image`` a ``tv_tensors.Image`` ``[3, H, W]`` uint8, ``target`` a
dict with ``boxes`` (``tv_tensors.BoundingBoxes`` ``[N, 4]`` XYXY pixels), ``labels`` (``[N]``
int64, contiguous ``0..K-1`` in sorted ``category_id`` order), ``iscrowd`` (``[N]`` int64),
``image_id`` (int) and ``orig_size`` (``(H, W)``), so torchvision ``transforms.v2`` move the boxes
with the image.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset
import numpy as np
from faster_coco_eval import COCO
from torchvision import tv_tensors

from ..events.errors import CorruptFileError
from .folder import load_rgb

__all__ = ["CocoDetectionSet", "detection_collate", "open_coco_splits", "COCO_LAYOUT"]

COCO_LAYOUT = ("{root}/annotations/instances_{{train2017,val2017}}.json with images in "
               "{root}/train2017/ and {root}/val2017/ (the COCO 2017 detection layout)")

# Released COCO boxes are floats that overshoot their image by rounding (up to about a pixel);
# within this margin a box is clipped to the image, beyond it the file is rejected.
BOX_TOLERANCE_PX = 1.0


def _fail(ann_file: Path, what: str) -> None:
    raise ValueError(f"{ann_file}: {what}")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


class CocoDetectionSet(Dataset):
    """The images of one COCO annotation file, with their boxes.

    Args:
        image_dir: folder holding the ``file_name`` of every image.
        ann_file: the ``instances_*.json`` file.
        transforms: ``transforms(image, target) -> (image, target)``, e.g. a ``transforms.v2``
            pipeline (see :func:`~spikedrive.data.images.transforms.detection_transforms`).
        category_ids: the label order to use (another split's ``category_ids``, so labels mean
            the same in every split); default: this file's category ids, sorted.
        drop_empty_boxes: drop annotations whose ``bbox`` has ``w <= 0`` or ``h <= 0`` (the
            released COCO files hold a few) instead of raising; ``dropped`` lists their ids.

    Raises:
        ValueError: naming ``ann_file`` and the entry, for malformed JSON, an annotation with an
            unknown ``image_id`` or ``category_id``, or a ``bbox`` that is not ``[x, y, w, h]``
            with ``w, h > 0`` inside its image (within ``BOX_TOLERANCE_PX``); on reading, an
            image that is missing, cannot be decoded or has another size than the JSON says.
    """

    def __init__(self, image_dir: str | os.PathLike[str], ann_file: str | os.PathLike[str],
                 transforms: Callable[..., Any] | None = None,
                 category_ids: Sequence[int] | None = None, drop_empty_boxes: bool = False) -> None:
        self.image_dir = Path(image_dir)
        self.drop_empty_boxes = drop_empty_boxes
        self.dropped: list[int] = []
        self.ann_file = Path(ann_file)
        self.transforms = transforms
        try:
            data = json.loads(self.ann_file.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{self.ann_file}: not a readable COCO JSON file ({err})") from err
        if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "annotations", "categories")):
            _fail(self.ann_file, "expected a JSON object with lists 'images', 'annotations' and 'categories'")
        names = self._read_categories(data["categories"])
        ids = sorted(names) if category_ids is None else [int(c) for c in category_ids]
        unknown = sorted(set(names) - set(ids))
        if unknown:
            _fail(self.ann_file, f"categories {unknown} are not in the label order given ({ids})")
        self.category_ids: list[int] = ids
        self.label_of = {cid: i for i, cid in enumerate(ids)}
        self.classes: list[str] = [names.get(cid, str(cid)) for cid in ids]
        self.images = self._read_images(data["images"])
        self.annotations: dict[int, list[tuple[int, list[float], int, int]]] = {i: [] for i in self.images}
        for ann in data["annotations"]:
            self._add_annotation(ann)
        self.ids = sorted(self.images)
        #: The file's pycocotools-compatible index (faster-coco-eval), for COCO-protocol evaluation.
        self.coco = COCO(data)

    # -- parsing ------------------------------------------------------------------------
    def _read_categories(self, categories: list[Any]) -> dict[int, str]:
        names: dict[int, str] = {}
        for i, cat in enumerate(categories):
            if not isinstance(cat, dict) or not isinstance(cat.get("id"), int):
                _fail(self.ann_file, f"categories[{i}] has no integer 'id'")
            names[cat["id"]] = str(cat.get("name", cat["id"]))
        return names

    def _read_images(self, images: list[Any]) -> dict[int, tuple[str, int, int]]:
        out: dict[int, tuple[str, int, int]] = {}
        for i, img in enumerate(images):
            ok = isinstance(img, dict) and isinstance(img.get("id"), int) and isinstance(img.get("file_name"), str)
            ok = ok and all(isinstance(img.get(k), int) and img[k] > 0 for k in ("width", "height"))
            if not ok:
                _fail(self.ann_file, f"images[{i}] needs an integer 'id', a 'file_name' and positive integer 'width' and 'height'")
            if img["id"] in out:
                _fail(self.ann_file, f"image id {img['id']} ({img['file_name']}) appears twice")
            out[img["id"]] = (img["file_name"], img["width"], img["height"])
        return out

    def _add_annotation(self, ann: Any) -> None:
        aid = ann.get("id") if isinstance(ann, dict) else None
        where = f"annotation id {aid}"
        if not isinstance(ann, dict):
            _fail(self.ann_file, f"an annotation is not a JSON object: {ann!r}")
        image = self.images.get(ann.get("image_id"))  # type: ignore[arg-type]
        if image is None:
            _fail(self.ann_file, f"{where}: unknown image_id {ann.get('image_id')!r}")
        file_name, width, height = image  # type: ignore[misc]
        where += f" (image {file_name})"
        cid = ann.get("category_id")
        if cid not in self.label_of:
            _fail(self.ann_file, f"{where}: unknown category_id {cid!r}; the categories are {self.category_ids}")
        box = ann.get("bbox")
        if not (isinstance(box, list) and len(box) == 4 and all(_number(v) for v in box)):
            _fail(self.ann_file, f"{where}: bbox {box!r} is not [x, y, w, h] of 4 finite numbers")
        x, y, w, h = (float(v) for v in box)
        tol = BOX_TOLERANCE_PX
        if (w <= 0 or h <= 0) and self.drop_empty_boxes:
            self.dropped.append(aid)
            return
        if w <= 0 or h <= 0:
            _fail(self.ann_file, f"{where}: bbox [x, y, w, h] = {box} is empty (w, h must be > 0; "
                                 f"drop_empty_boxes=True drops such boxes)")
        if x < -tol or y < -tol or x + w > width + tol or y + h > height + tol:
            _fail(self.ann_file, f"{where}: bbox [x, y, w, h] = {box} is outside the "
                                 f"{width}x{height} image (0 <= x, x + w <= {width}, "
                                 f"0 <= y, y + h <= {height})")
        x1, y1 = max(x, 0.0), max(y, 0.0)
        x2, y2 = min(x + w, float(width)), min(y + h, float(height))
        self.annotations[ann["image_id"]].append(
            (self.label_of[cid], [x1, y1, x2, y2], int(bool(ann.get("iscrowd", 0))), int(aid) if isinstance(aid, int) else -1))

    # -- Dataset protocol ---------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.ids)

    def load_image(self, image_id: int) -> tv_tensors.Image:
        """Image ``image_id`` as ``[3, H, W]`` uint8, checked against the JSON's width and height."""
        file_name, width, height = self.images[image_id]
        path = self.image_dir / file_name
        if not path.is_file():
            raise ValueError(f"{self.ann_file}: image id {image_id}: {path} does not exist")
        try:
            pixels = np.array(load_rgb(path))  # [H, W, 3] uint8
        except CorruptFileError as err:
            raise CorruptFileError(path, None, f"{err.reason}; image id {image_id} of {self.ann_file.name}") from err
        image = torch.from_numpy(pixels).permute(2, 0, 1)
        if tuple(image.shape[1:]) != (height, width):
            raise ValueError(
                f"{path}: decoded size {image.shape[2]}x{image.shape[1]} differs from the "
                f"{width}x{height} in {self.ann_file} (image id {image_id}); its boxes would be wrong")
        return tv_tensors.Image(image)

    def target(self, image_id: int) -> dict[str, Any]:
        """The target dict of ``image_id`` before transforms (see the module docstring)."""
        _, width, height = self.images[image_id]
        anns = self.annotations[image_id]
        boxes = torch.tensor([a[1] for a in anns], dtype=torch.float32).reshape(-1, 4)
        return {
            "boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(height, width)),
            "labels": torch.tensor([a[0] for a in anns], dtype=torch.int64),
            "iscrowd": torch.tensor([a[2] for a in anns], dtype=torch.int64),
            "image_id": image_id,
            "orig_size": (height, width),
        }

    def __getitem__(self, index: int) -> tuple[Any, dict[str, Any]]:
        image_id = self.ids[index]
        image, target = self.load_image(image_id), self.target(image_id)
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target


def open_coco_splits(path: Path, train_split: str, test_split: str,
                     drop_empty_boxes: bool = False) -> tuple[CocoDetectionSet, CocoDetectionSet]:
    """The two labelled splits of a COCO folder ``path`` (``<split>/`` images and
    ``annotations/instances_<split>.json``), the test split's labels numbered as the training
    split's. A missing folder or file is a ``ValueError`` naming it and the layout expected."""
    files = {s: (path / s, path / "annotations" / f"instances_{s}.json") for s in (train_split, test_split)}
    for images, ann in files.values():
        for need in (images, ann):
            if not need.exists():
                raise ValueError(f"coco: {need} does not exist; expected {COCO_LAYOUT.format(root=path)}")
    train = CocoDetectionSet(*files[train_split], drop_empty_boxes=drop_empty_boxes)
    test = CocoDetectionSet(*files[test_split], category_ids=train.category_ids, drop_empty_boxes=drop_empty_boxes)
    return train, test


def detection_collate(samples: Sequence[tuple[Any, dict[str, Any]]],
                      time_major: bool | None = None) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """Batch ``(inputs, target)`` samples into ``(batch, [target, ...])``: images ``[C, H, W]``
    become ``[B, C, H, W]``, frame sequences ``[T, ...]`` become time-major ``[T, B, ...]``.

    Box counts differ per sample, so targets stay a list. ``time_major`` None decides by rank:
    4-d items (``[T, C, H, W]`` frames) are sequences, others images. Sequences are cast to
    float32 (event representations may come as float64 or counts); images are float32 when
    floating and keep an integer dtype (raw uint8 pixels are not to be mistaken for ``[0, 1]``).
    ``inputs`` may be tensors (``tv_tensors`` are unwrapped) or NumPy arrays. All must share one
    shape (letterbox or resize them in the transforms: ``img_size``); a mismatch raises
    ``ValueError`` naming both shapes.
    """
    inputs = [torch.as_tensor(x).as_subclass(torch.Tensor) for x, _ in samples]
    first = inputs[0].shape
    if time_major is None:
        time_major = len(first) == 4
    for x in inputs[1:]:
        if x.shape != first:
            raise ValueError(
                f"detection_collate: {'frames' if time_major else 'images'} differ in shape: {tuple(first)} vs "
                f"{tuple(x.shape)}; letterbox or resize them to one size in the transforms (dataset_kwargs img_size)")
    batch = torch.stack(inputs, dim=1 if time_major else 0)
    if time_major or batch.is_floating_point():
        batch = batch.float()
    return batch, [t for _, t in samples]


# Samples of one dataset batch with the collate function the engine's loaders look up.
CocoDetectionSet.collate_fn = staticmethod(detection_collate)  # type: ignore[attr-defined]

