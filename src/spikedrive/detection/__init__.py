"""Object detection shared by every detector: boxes (torchvision ops), the anchor-free DFL
decoder, the task-aligned assigner, YOLOv8's loss, post-processing, COCO-protocol evaluation
(faster-coco-eval), box-aware augmentation and the detection task the engine drives (registered
as ``task: detection`` by :mod:`spikedrive.engine.detection_task`)."""

from .assigner import Assignment, TaskAlignedAssigner
from .boxes import aligned_ciou, box_iou, box_to_dist, dist_to_box, pairwise_ciou, xywh_to_xyxy, xyxy_to_xywh
from .classes import COCO_CLASSES, GEN1_CLASSES
from .coco_eval import coco_detections, coco_ground_truth, evaluate_coco, gen1_to_coco
from .decode import decode_outputs, dfl_expectation, flatten_levels, make_anchors
from .draw import draw_detections, save_detections_png
from .loss import DetectionLoss, dfl_loss, pad_targets
from .postprocess import postprocess, select_detections
from .task import DetectionMetrics, DetectionTask, head_spec
from .transforms import Letterbox, RandomFlip, RandomHSV, drop_small_boxes, mosaic4

__all__ = [
    "xywh_to_xyxy", "xyxy_to_xywh", "box_iou", "pairwise_ciou", "aligned_ciou", "dist_to_box", "box_to_dist",
    "make_anchors", "flatten_levels", "dfl_expectation", "decode_outputs",
    "TaskAlignedAssigner", "Assignment", "DetectionLoss", "dfl_loss", "pad_targets",
    "postprocess", "select_detections",
    "coco_ground_truth", "coco_detections", "evaluate_coco", "gen1_to_coco",
    "DetectionTask", "DetectionMetrics", "head_spec",
    "Letterbox", "RandomHSV", "RandomFlip", "mosaic4", "drop_small_boxes",
    "draw_detections", "save_detections_png", "COCO_CLASSES", "GEN1_CLASSES",
]
