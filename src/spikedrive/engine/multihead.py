"""Classification with a head after every column (T-RevSNN's intermediate supervision).

In training mode the model returns the logits of every head ``[H, B, classes]`` (head ``i`` after
column ``i``, the last one is the model's answer); in eval mode only the last head,
``[B, classes]``. The loss is the authors' compound loss (``loss.py`` of the T-RevSNN code):

    sum_{i=0}^{H-1} CE_i * (i + 1) / H  +  CE_{H-1}

so the last head weighs 2 and earlier heads ramp up linearly. Evaluation is plain top-1 accuracy
and cross-entropy of the last head (:class:`~spikedrive.engine.task.ClassificationMetrics`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .task import ClassificationMetrics, move_to_device, register_task

__all__ = ["MultiHeadClassificationTask", "multihead_loss"]


def multihead_loss(outputs: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """``sum_i CE_i (i+1)/H + CE_last`` over ``outputs`` ``[H, B, classes]`` against ``labels``
    ``[B]`` (int64). Returns a scalar in nats."""
    if outputs.dim() != 3 or outputs.shape[1] != labels.shape[0]:
        raise ValueError(f"multihead_loss: outputs must be [heads, B, classes] with B = {labels.shape[0]} labels, "
                         f"got shape {tuple(outputs.shape)}")
    heads = outputs.shape[0]
    ce = [F.cross_entropy(outputs[i].float(), labels, label_smoothing=label_smoothing) for i in range(heads)]
    return torch.stack([c * (i + 1) / heads for i, c in enumerate(ce)]).sum() + ce[-1]


class MultiHeadClassificationTask:
    """Batches ``(inputs, labels [B])``; training output ``[H, B, classes]`` (a plain ``[B, classes]``
    is taken as a single head), evaluation output ``[B, classes]``.

    Args:
        label_smoothing: cross-entropy label smoothing of every head's training loss.
    """

    def __init__(self, label_smoothing: float = 0.0) -> None:
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"MultiHeadClassificationTask: label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)

    def to_device(self, batch: Any, device: torch.device) -> Any:
        """``(inputs, labels)`` on ``device``."""
        return move_to_device(batch, device)

    def model_input(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """What the model is called on (for the energy report): the batch's inputs."""
        return batch[0]

    def forward(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """The last head's logits ``[B, classes]`` (the model is in eval mode)."""
        out = model(batch[0])
        return out[-1] if out.dim() == 3 else out

    def training_loss(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]
                      ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The compound loss over every head, and the last head's batch accuracy to log."""
        inputs, labels = batch
        out = model(inputs)
        if out.dim() == 2:
            out = out.unsqueeze(0)
        loss = multihead_loss(out, labels, self.label_smoothing)
        accuracy = (out[-1].detach().argmax(dim=1) == labels).float().mean()
        return loss, {"accuracy": accuracy}

    def new_metrics(self) -> ClassificationMetrics:
        """An empty accuracy / loss accumulator (of the last head)."""
        return ClassificationMetrics()


def _multihead(cfg: Any) -> MultiHeadClassificationTask:
    if getattr(cfg, "mixup", 0.0) or getattr(cfg, "cutmix", 0.0):
        raise ValueError("config: task multihead_classification does not mix batches; set mixup: 0 and cutmix: 0")
    return MultiHeadClassificationTask(label_smoothing=cfg.label_smoothing)


register_task("multihead_classification", _multihead)
