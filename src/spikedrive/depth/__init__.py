"""Event-camera depth: normalised log depth, the depth losses, the MVSEC metrics and the depth
task the engine drives (registered as ``task: depth`` by :mod:`spikedrive.engine.depth_task`)."""

from .log_depth import ALPHA, D_MAX_M, from_log_depth, to_log_depth
from .losses import depth_loss, gradient_matching_loss, scale_invariant_loss
from .metrics import CUTOFFS_M, METRIC_KEYS, DepthMetrics, depth_metric_sums, depth_metrics, metrics_from_sums
from .task import DepthBatch, DepthTask

__all__ = [
    "ALPHA", "D_MAX_M", "to_log_depth", "from_log_depth",
    "scale_invariant_loss", "gradient_matching_loss", "depth_loss",
    "CUTOFFS_M", "METRIC_KEYS", "depth_metrics", "depth_metric_sums", "metrics_from_sums", "DepthMetrics",
    "DepthTask", "DepthBatch",
]
