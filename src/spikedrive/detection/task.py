"""The detection task for the engine: images or event frames in, boxes out.

A batch from the loader is ``(inputs, targets)``: ``inputs`` images ``[B, 3, H, W]`` or frame
sequences ``[T, B, 3, H, W]``, ``targets`` a list of ``B`` dicts with ``boxes`` ``[N, 4]`` xyxy input
pixels (a ``tv_tensors.BoundingBoxes`` or a tensor) and ``labels`` ``[N]`` int64, optionally
``iscrowd``. The model returns one raw map ``[B, 4*reg_max + C, H/s, W/s]`` per stride ``s`` of
``model.strides`` (time steps already averaged) and has ``reg_max`` and ``num_classes``. This
module satisfies the engine's task protocol structurally and does not import the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from .assigner import TaskAlignedAssigner
from .coco_eval import coco_detections, coco_ground_truth, evaluate_coco
from .loss import DetectionLoss
from .postprocess import postprocess

__all__ = ["DetectionTask", "DetectionMetrics", "head_spec"]

DetBatch = tuple[torch.Tensor, list[dict[str, torch.Tensor]]]


def head_spec(model: nn.Module) -> tuple[tuple[int, ...], int, int]:
    """``(strides, reg_max, num_classes)`` of a detector (through a DDP / EMA wrapper's ``module``).

    Raises AttributeError naming the attribute a model lacks."""
    inner = model
    while not all(hasattr(inner, a) for a in ("strides", "reg_max", "num_classes")) and hasattr(inner, "module"):
        inner = inner.module
    for attr in ("strides", "reg_max", "num_classes"):
        if not hasattr(inner, attr):
            raise AttributeError(f"DetectionTask: the model ({type(model).__name__}) has no attribute {attr!r}; a detector "
                                 f"must expose strides, reg_max and num_classes")
    return tuple(int(s) for s in inner.strides), int(inner.reg_max), int(inner.num_classes)


class DetectionMetrics:
    """COCO-protocol mAP of an evaluation pass.

    Keeps every image's ground truth and detections (on the CPU); under ``torch.distributed``
    ``reduce`` gathers them from every rank (a COCO evaluation is not a sum), otherwise it is
    the identity. ``compute`` gives ``map50``, ``map50_95``, ``map75``, ``ap_<class>`` and
    ``fitness = 0.1 map50 + 0.9 map50_95`` (YOLO's selection metric).
    """

    def __init__(self, class_names: Sequence[str], backend: str = "faster_coco_eval") -> None:
        self.class_names = list(class_names)
        self.backend = backend
        self.records: list[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]] = []

    def update(self, output: list[dict[str, torch.Tensor]], batch: DetBatch) -> None:
        """``output``: detections per image (``DetectionTask.forward``); ``batch``: ``(inputs, targets)``."""
        inputs, targets = batch
        h, w = int(inputs.shape[-2]), int(inputs.shape[-1])
        for det, tgt in zip(output, targets):
            gt = {"boxes": torch.as_tensor(tgt["boxes"]).detach().cpu().float().reshape(-1, 4),
                  "labels": torch.as_tensor(tgt["labels"]).detach().cpu().long().reshape(-1),
                  "height": h, "width": w}
            if "iscrowd" in tgt:
                gt["iscrowd"] = torch.as_tensor(tgt["iscrowd"]).cpu().reshape(-1)
            self.records.append((gt, {k: v.detach().cpu() for k, v in det.items()}))

    def reduce(self, all_reduce: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Gather every rank's records when a process group is running (else nothing to do)."""
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            gathered: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, self.records)
            self.records = [r for part in gathered for r in part]

    def compute(self) -> dict[str, float]:
        """The COCO metrics of everything seen (NaN when nothing was seen)."""
        keys = ["map50", "map50_95", "map75", "fitness", *(f"ap_{n}" for n in self.class_names)]
        if not self.records:
            return {k: float("nan") for k in keys}
        gts, dets = [], []
        for i, (gt, det) in enumerate(self.records, start=1):
            gts.append({**gt, "image_id": i})
            dets.append({**det, "image_id": i})
        out = evaluate_coco(coco_ground_truth(gts, self.class_names), coco_detections(dets), self.backend)
        out["fitness"] = 0.1 * out["map50"] + 0.9 * out["map50_95"]
        return {k: out[k] for k in keys}


class DetectionTask:
    """Anchor-free detection with YOLOv8's loss and COCO-protocol evaluation.

    Args:
        class_names: one name per label (the per-class APs are named after them).
        box, cls, dfl: loss gains (YOLOv8: 7.5, 0.5, 1.5).
        topk, alpha, beta: the task-aligned assigner's (10, 0.5, 6).
        conf, iou, max_det: post-processing for evaluation (YOLOv8 validation: 0.001, 0.7, 300).
        multi_label: one candidate per (anchor, class) in post-processing (YOLOv8's validation).
    """

    def __init__(self, class_names: Sequence[str], box: float = 7.5, cls: float = 0.5, dfl: float = 1.5,
                 topk: int = 10, alpha: float = 0.5, beta: float = 6.0, conf: float = 0.001, iou: float = 0.7,
                 max_det: int = 300, multi_label: bool = True) -> None:
        if not class_names:
            raise ValueError("DetectionTask: class_names must name at least one class")
        if not 0.0 <= conf < 1.0 or not 0.0 < iou <= 1.0 or max_det < 1:
            raise ValueError(f"DetectionTask: need 0 <= conf < 1, 0 < iou <= 1, max_det >= 1; got conf={conf}, "
                             f"iou={iou}, max_det={max_det}")
        self.class_names = [str(n) for n in class_names]
        self.gains = {"box": float(box), "cls": float(cls), "dfl": float(dfl)}
        self.assigner = TaskAlignedAssigner(topk, alpha, beta)
        self.post = {"conf": float(conf), "iou": float(iou), "max_det": int(max_det), "multi_label": bool(multi_label)}
        self._loss: DetectionLoss | None = None

    def to_device(self, batch: Any, device: torch.device) -> DetBatch:
        """``(inputs float, [{"boxes": [N, 4] float32, "labels": [N] int64, ...}])`` on ``device``."""
        if not isinstance(batch, (tuple, list)) or len(batch) != 2 or not isinstance(batch[1], (list, tuple)):
            raise ValueError(f"DetectionTask: batch must be (inputs, [target dict per image]), got {type(batch).__name__}")
        inputs, targets = batch
        if inputs.dim() not in (4, 5):
            raise ValueError(f"DetectionTask: inputs must be [B, 3, H, W] or [T, B, 3, H, W], got shape {tuple(inputs.shape)}")
        b = inputs.shape[0] if inputs.dim() == 4 else inputs.shape[1]
        if len(targets) != b:
            raise ValueError(f"DetectionTask: {len(targets)} targets for a batch of {b} inputs")
        moved = []
        for t in targets:
            m = {"boxes": torch.as_tensor(t["boxes"]).as_subclass(torch.Tensor).float().reshape(-1, 4).to(device),
                 "labels": torch.as_tensor(t["labels"]).long().reshape(-1).to(device)}
            if "iscrowd" in t:
                m["iscrowd"] = torch.as_tensor(t["iscrowd"]).reshape(-1).to(device)
            moved.append(m)
        return inputs.float().to(device, non_blocking=True), moved

    def model_input(self, batch: DetBatch) -> torch.Tensor:
        """The images or frames the model is called on."""
        return batch[0]

    def _loss_for(self, model: nn.Module) -> DetectionLoss:
        strides, reg_max, num_classes = head_spec(model)
        if num_classes != len(self.class_names):
            raise ValueError(f"DetectionTask: the model has num_classes={num_classes} but the task names "
                             f"{len(self.class_names)} classes {self.class_names}")
        if self._loss is None or (self._loss.strides, self._loss.reg_max) != (strides, reg_max):
            self._loss = DetectionLoss(num_classes, reg_max, strides, assigner=self.assigner, **self.gains)
        return self._loss

    def training_loss(self, model: nn.Module, batch: DetBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """YOLOv8's loss of the batch and its box / cls / dfl terms to log."""
        loss_fn = self._loss_for(model)
        return loss_fn(model(batch[0]), batch[1])

    def forward(self, model: nn.Module, batch: DetBatch) -> list[dict[str, torch.Tensor]]:
        """Detections per image ``{"boxes" [K, 4] xyxy input pixels, "scores" [K], "labels" [K]}``."""
        strides, reg_max, num_classes = head_spec(model)
        return postprocess(model(batch[0]), strides, reg_max, num_classes, **self.post)

    def new_metrics(self) -> DetectionMetrics:
        """An empty COCO-protocol accumulator."""
        return DetectionMetrics(self.class_names)
