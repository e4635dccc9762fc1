"""E-RSCT-style training: distillation from a pre-trained ANN teacher into an RSC-SNN.

RSC-SNN's E-RSCT (Wu et al., ACM MM 2024) trains the RSC-SNN with distillation from a
pre-trained ANN plus a "pre-synaptic" loss. The form of that second loss is not public
(METHODS.md: "loss form not public"), so only the distillation part is implemented here:
Hinton et al.'s soft-target loss at temperature ``tau`` mixed with the label loss,

    loss = (1 - alpha) CE(student, y) + alpha tau^2 KL(softmax(teacher / tau) || softmax(student / tau)).

The teacher sees the clean batch (it is an ANN on images); the student codes it itself.
Use with the engine: ``train(cfg, model=rsc_snn, task=DistillationTask(teacher))``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..engine import ClassificationTask

__all__ = ["DistillationTask", "distillation_loss"]


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor, alpha: float = 0.5,
                      tau: float = 4.0) -> torch.Tensor:
    """Scalar loss from student and teacher logits ``[B, classes]`` and labels ``[B]`` (see the
    module docstring); ``alpha`` in ``[0, 1]`` weighs the teacher, ``tau > 0`` softens both."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"distillation_loss: alpha must be in [0, 1], got {alpha!r}")
    if not tau > 0:
        raise ValueError(f"distillation_loss: tau must be > 0, got {tau!r}")
    hard = F.cross_entropy(student.float(), labels)
    soft = F.kl_div(F.log_softmax(student.float() / tau, dim=-1), F.log_softmax(teacher.float() / tau, dim=-1),
                    reduction="batchmean", log_target=True)
    return (1.0 - alpha) * hard + alpha * tau * tau * soft


class DistillationTask(ClassificationTask):
    """Classification whose training loss distils a frozen ``teacher`` (evaluation unchanged).

    Args:
        teacher: maps the batch's inputs to logits ``[B, classes]``; kept in eval mode, no
            gradient; moved to the batch's device on first use.
        alpha, tau: see :func:`distillation_loss`.
        label_smoothing: not supported with distillation (must be 0).
    """

    def __init__(self, teacher: nn.Module, alpha: float = 0.5, tau: float = 4.0, num_classes: int | None = None) -> None:
        super().__init__(num_classes=num_classes)
        distillation_loss(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), alpha, tau)
        self.teacher, self.alpha, self.tau = teacher.eval(), float(alpha), float(tau)
        for p in self.teacher.parameters():
            p.requires_grad_(False)

    def training_loss(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]
                      ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Distillation loss of the batch and its training accuracy."""
        inputs, labels = batch
        self.teacher.to(inputs.device).eval()
        with torch.no_grad():
            teacher = self.teacher(inputs)
        logits = model(inputs)
        loss = distillation_loss(logits, teacher, labels, self.alpha, self.tau)
        return loss, {"accuracy": (logits.detach().argmax(dim=1) == labels).float().mean()}
