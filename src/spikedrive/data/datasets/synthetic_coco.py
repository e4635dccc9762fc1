"""A small COCO-format detection set: coloured shapes on noisy backgrounds, with their boxes.

Layout and JSON as COCO 2017 (``root/train2017/*.png``, ``root/val2017/*.png``,
``root/annotations/instances_{train2017,val2017}.json``), so the COCO reader runs end to end.
Categories use non-contiguous ids, as COCO's do (1 rectangle, 3 ellipse, 7 triangle), so the
mapping to contiguous labels is exercised. Boxes are the exact extents of the drawn shapes
(``[x, y, w, h]`` pixels); shapes do not overlap, so every box shows its whole object.
"""

from __future__ import annotations

import json
from os import PathLike
from pathlib import Path

import numpy as np

from .synthetic_common import child_rng

__all__ = ["make_coco", "COCO_SHAPES"]

COCO_SHAPES = {1: "rectangle", 3: "ellipse", 7: "triangle"}


def _place(rng: np.random.Generator, width: int, height: int, taken: list[tuple[int, int, int, int]],
           min_px: int) -> tuple[int, int, int, int] | None:
    """A box ``(x, y, w, h)`` inside the image that overlaps none of ``taken`` (or None)."""
    for _ in range(20):
        w = int(rng.integers(min_px, max(min_px + 1, width // 2)))
        h = int(rng.integers(min_px, max(min_px + 1, height // 2)))
        x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
        if all(x + w <= a or a + c <= x or y + h <= b or b + d <= y for a, b, c, d in taken):
            return x, y, w, h
    return None


def _draw(rng: np.random.Generator, width: int, height: int, max_objects: int, min_px: int
          ) -> tuple[np.ndarray, list[tuple[int, tuple[int, int, int, int]]]]:
    """One ``[H, W, 3]`` uint8 image and its ``(category_id, (x, y, w, h))`` objects."""
    from PIL import Image, ImageDraw

    base = rng.uniform(0, 90, size=3) + rng.normal(0, 6, size=(height, width, 3))
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    objects: list[tuple[int, tuple[int, int, int, int]]] = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        box = _place(rng, width, height, [b for _, b in objects], min_px)
        if box is None:
            continue
        cid = int(rng.choice(list(COCO_SHAPES)))
        x, y, w, h = box
        colour = tuple(int(c) for c in rng.integers(140, 256, size=3))
        corners = [x, y, x + w - 1, y + h - 1]  # PIL's shapes include their last pixel
        if COCO_SHAPES[cid] == "rectangle":
            draw.rectangle(corners, fill=colour)
        elif COCO_SHAPES[cid] == "ellipse":
            draw.ellipse(corners, fill=colour)
        else:
            draw.polygon([(x, y + h - 1), (x + w - 1, y + h - 1), (x + (w - 1) // 2, y)], fill=colour)
        objects.append((cid, box))
    return np.asarray(img), objects


def make_coco(root: str | PathLike[str], n_train: int = 8, n_val: int = 4, seed: int = 0,
              image_size: tuple[int, int] = (64, 48), size_jitter: int = 16, max_objects: int = 3,
              min_object_px: int = 6) -> Path:
    """Write a COCO 2017-layout detection set of shapes under ``root``; returns ``root``.

    Args:
        n_train, n_val: images in ``train2017`` / ``val2017``.
        seed: same seed, byte-identical files (each image has its own generator).
        image_size: ``(W, H)`` of the smallest image; each image adds up to ``size_jitter``
            pixels to each side, so sizes vary as in COCO.
        max_objects: 1..max_objects shapes per image (fewer when they do not fit).
        min_object_px: smallest box side.
    """
    from PIL import Image

    root = Path(root)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    categories = [{"id": cid, "name": name, "supercategory": "shape"} for cid, name in COCO_SHAPES.items()]
    image_id = ann_id = 0
    for split, n in (("train2017", n_train), ("val2017", n_val)):
        (root / split).mkdir(exist_ok=True)
        images, annotations = [], []
        for i in range(n):
            rng = child_rng(seed, 0 if split == "train2017" else 1, i)
            width = image_size[0] + int(rng.integers(0, size_jitter + 1))
            height = image_size[1] + int(rng.integers(0, size_jitter + 1))
            pixels, objects = _draw(rng, width, height, max_objects, min_object_px)
            image_id += 1
            name = f"{image_id:012d}.png"
            Image.fromarray(pixels).save(root / split / name)
            images.append({"id": image_id, "file_name": name, "width": width, "height": height})
            for cid, (x, y, w, h) in objects:
                ann_id += 1
                annotations.append({
                    "id": ann_id, "image_id": image_id, "category_id": cid, "bbox": [x, y, w, h],
                    "area": float(w * h), "iscrowd": 0,
                    "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]]})
        doc = {"info": {"description": f"spikedrive synthetic shapes, seed {seed}"}, "licenses": [],
               "images": images, "annotations": annotations, "categories": categories}
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(doc, indent=1))
    return root
