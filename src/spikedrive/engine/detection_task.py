"""Registers the detection task (``task: detection``) and the detection datasets, and holds the
bodies of ``spikedrive detect train|eval|predict``.

The task lives in :mod:`spikedrive.detection`, below the engine, so it cannot register itself;
this small engine module does. Datasets: ``coco_detection`` (COCO 2017 layout, mosaic / HSV /
flips, letterboxed) and ``gen1_detection`` (Gen1 layout, SpikeYOLO's histogram frames,
letterboxed). ``predict`` draws the detections (and the ground truth in white) onto the images
or the last event frame and writes one PNG per sample.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from ..detection import COCO_CLASSES, GEN1_CLASSES, DetectionTask, save_detections_png
from ..detection.data import build_coco_detection, build_gen1_detection
from .data import register_dataset
from .task import register_task
from .task_commands import eval_task_splits, load_task_split, train_task_recipe

__all__ = ["build_detection_task", "class_names", "detect_train", "detect_eval", "detect_predict"]


def class_names(cfg: Any) -> list[str]:
    """The label names of a recipe: ``task_kwargs.class_names`` if given, else Gen1's two or COCO's
    80 by dataset, else ``"0" .. "K-1"`` for ``model_kwargs.num_classes = K``."""
    given = (getattr(cfg, "task_kwargs", None) or {}).get("class_names")
    num = (getattr(cfg, "model_kwargs", None) or {}).get("num_classes")
    if given:
        return [str(n) for n in given]
    if str(cfg.dataset).startswith("gen1") and num in (None, len(GEN1_CLASSES)):
        return list(GEN1_CLASSES)
    if str(cfg.dataset).startswith("coco") and num in (None, len(COCO_CLASSES)):
        return list(COCO_CLASSES)
    if not num:
        raise ValueError(f"config: task detection on dataset {cfg.dataset!r} needs model_kwargs.num_classes "
                         f"(or task_kwargs.class_names)")
    return [str(k) for k in range(int(num))]


def build_detection_task(cfg: Any) -> DetectionTask:
    """The detection task of a recipe; ``task_kwargs`` (when the recipe has that field) may set the
    loss gains ``box``, ``cls``, ``dfl``, the assigner's ``topk``, ``alpha``, ``beta`` and the
    evaluation's ``conf``, ``iou``, ``max_det``, ``multi_label``."""
    kwargs = dict(getattr(cfg, "task_kwargs", None) or {})
    kwargs.pop("class_names", None)
    return DetectionTask(class_names(cfg), **kwargs)


register_task("detection", build_detection_task)
register_dataset("coco_detection", build_coco_detection, checks_root=True)
register_dataset("gen1_detection", build_gen1_detection, checks_root=True)


def detect_train(args: argparse.Namespace) -> int:
    """``spikedrive detect train --config C [--resume] [key=value ...]``: train a detection recipe."""
    return train_task_recipe(args, "detection", "detect train")


def detect_eval(args: argparse.Namespace) -> int:
    """``spikedrive detect eval CHECKPOINT [key=value ...]``: COCO-protocol mAP on val and test."""
    return eval_task_splits(args, "detection", "detect eval", build_detection_task)


def detect_predict(args: argparse.Namespace) -> int:
    """``spikedrive detect predict CHECKPOINT --out DIR [--split test] [--samples N] [--conf 0.25]
    [key=value ...]``: detections drawn on the inputs (ground truth in white), one PNG each."""
    from .data import make_eval_loader

    cfg, model, split, dataset = load_task_split(args, "detection", "detect predict")
    task = build_detection_task(cfg)
    task.post["conf"] = float(getattr(args, "conf", 0.25))
    limit = int(getattr(args, "samples", 4))
    written = 0
    model.eval()
    with torch.no_grad():
        for raw in make_eval_loader(dataset, cfg):
            batch = task.to_device(raw, torch.device("cpu"))
            dets = task.forward(model, batch)
            inputs, targets = batch
            for b, det in enumerate(dets):
                if written >= limit:
                    break
                image = inputs[b] if inputs.dim() == 4 else inputs[:, b]
                path = save_detections_png(Path(args.out) / f"{split}_{written:04d}.png", image, det,
                                           task.class_names, targets[b]["boxes"])
                print(path)
                written += 1
            if written >= limit:
                break
    return 0
