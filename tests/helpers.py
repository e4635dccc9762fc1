"""Small helpers shared by several test modules."""

from __future__ import annotations

import torch
from torch import nn


def calibrate_bn(model: nn.Module, x: torch.Tensor) -> None:
    """Set every BN's running statistics from one batch ``x``, so an untrained network fires
    (and an I-LIF network emits integers above 1); leaves the model in eval mode."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        model(x)
    model.eval()
