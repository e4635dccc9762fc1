"""COCO-protocol evaluation (mAP@50, mAP@50:95, per-class AP) through faster-coco-eval.

Ground truth and detections are turned into COCO's JSON structures (``bbox`` as ``[x, y, w, h]``
pixels), so any source (COCO files, Gen1 boxes, in-memory targets) is scored by the same code as
``pycocotools.cocoeval.COCOeval``; faster-coco-eval is its C++ reimplementation with the same
numbers (checked in the tests).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .boxes import xyxy_to_xywh

__all__ = ["coco_ground_truth", "coco_detections", "evaluate_coco", "gen1_to_coco"]


def _xyxy_to_xywh_list(boxes: Any) -> np.ndarray:
    return xyxy_to_xywh(torch.as_tensor(boxes).detach().cpu().float().double().reshape(-1, 4)).numpy()


def coco_ground_truth(images: Sequence[dict[str, Any]], class_names: Sequence[str]) -> dict[str, Any]:
    """A COCO ground-truth dict from per-image targets.

    Args:
        images: one dict per image with ``image_id`` (int), ``boxes`` ``[N, 4]`` xyxy pixels,
            ``labels`` ``[N]`` (0-based), optional ``iscrowd`` ``[N]``, ``height``, ``width``.
        class_names: name of each label; label ``k`` becomes ``category_id`` ``k + 1``.
    """
    out_images, anns = [], []
    for img in images:
        iid = int(img["image_id"])
        out_images.append({"id": iid, "width": int(img.get("width", 0)), "height": int(img.get("height", 0))})
        xywh = _xyxy_to_xywh_list(img["boxes"])
        labels = np.asarray(torch.as_tensor(img["labels"]).cpu()).reshape(-1)
        crowd = np.asarray(torch.as_tensor(img.get("iscrowd", np.zeros(len(labels)))).cpu()).reshape(-1)
        for box, label, c in zip(xywh, labels, crowd):
            anns.append({"id": len(anns) + 1, "image_id": iid, "category_id": int(label) + 1,
                         "bbox": [float(v) for v in box], "area": float(box[2] * box[3]), "iscrowd": int(c)})
    cats = [{"id": k + 1, "name": str(n)} for k, n in enumerate(class_names)]
    return {"images": out_images, "annotations": anns, "categories": cats}


def coco_detections(dets: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-image ``{"image_id", "boxes" [K, 4] xyxy, "scores" [K], "labels" [K]}`` -> COCO results."""
    out = []
    for d in dets:
        xywh = _xyxy_to_xywh_list(d["boxes"])
        scores = np.asarray(torch.as_tensor(d["scores"]).detach().cpu().float()).reshape(-1)
        labels = np.asarray(torch.as_tensor(d["labels"]).cpu()).reshape(-1)
        for box, s, label in zip(xywh, scores, labels):
            out.append({"image_id": int(d["image_id"]), "category_id": int(label) + 1,
                        "bbox": [float(v) for v in box], "score": float(s)})
    return out


def gen1_to_coco(boxes: np.ndarray, image_ids: Sequence[int] | None = None, sensor_size: tuple[int, int] = (304, 240),
                 class_names: Sequence[str] = ("car", "pedestrian")) -> dict[str, Any]:
    """Gen1 boxes (``BOX_DTYPE``: ``t``, ``x, y, w, h`` pixels, ``class_id``) -> a COCO ground truth,
    one image per distinct label time ``t`` (ids ``image_ids`` in time order, default 1, 2, ...)."""
    times = np.unique(boxes["t"])
    ids = list(range(1, len(times) + 1)) if image_ids is None else [int(i) for i in image_ids]
    if len(ids) != len(times):
        raise ValueError(f"gen1_to_coco: {len(ids)} image_ids for {len(times)} label times")
    w, h = sensor_size
    images = []
    for iid, t in zip(ids, times):
        sel = boxes[boxes["t"] == t]
        xywh = np.stack([sel[k].astype(np.float64) for k in ("x", "y", "w", "h")], axis=-1).reshape(-1, 4)
        xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        images.append({"image_id": iid, "boxes": torch.from_numpy(xyxy), "labels": torch.from_numpy(sel["class_id"].astype(np.int64)),
                       "width": w, "height": h})
    return coco_ground_truth(images, class_names)


def evaluate_coco(gt: dict[str, Any], results: list[dict[str, Any]], backend: str = "faster_coco_eval",
                  verbose: bool = False) -> dict[str, float]:
    """COCO bbox evaluation of ``results`` (COCO result dicts) against ``gt`` (a COCO dict).

    Args:
        backend: ``"faster_coco_eval"`` or ``"pycocotools"`` (same numbers; the second must be
            installed).
        verbose: print COCO's summary table.

    Returns:
        ``{"map50", "map50_95", "map75", "ap_<class name>" (AP@50:95 per class)}``; with no
        detections every AP is 0.
    """
    if backend == "faster_coco_eval":
        from faster_coco_eval import COCO, COCOeval_faster as COCOeval
    elif backend == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    else:
        raise ValueError(f"evaluate_coco: backend must be 'faster_coco_eval' or 'pycocotools', got {backend!r}")
    names = {c["id"]: c["name"] for c in gt["categories"]}
    zero = {"map50": 0.0, "map50_95": 0.0, "map75": 0.0, **{f"ap_{n}": 0.0 for n in names.values()}}
    if not results or not gt["annotations"]:
        return zero
    sink = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    with sink:
        coco_gt = COCO()
        coco_gt.dataset = {k: list(v) for k, v in gt.items()}
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes([dict(r) for r in results])
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = np.asarray(ev.stats)
    out = {"map50_95": float(stats[0]), "map50": float(stats[1]), "map75": float(stats[2])}
    precision = np.asarray(ev.eval["precision"])  # [IoU, recall, class, area, max_dets]
    cat_ids = list(ev.params.catIds)
    for k, cid in enumerate(cat_ids):
        p = precision[:, :, k, 0, -1]
        p = p[p > -1]
        out[f"ap_{names[cid]}"] = float(p.mean()) if p.size else 0.0
    return {**zero, **out}
