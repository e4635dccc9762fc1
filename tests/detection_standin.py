"""A tiny plain-PyTorch detector with SpikeYOLO's output contract, for the detection tests."""

from __future__ import annotations

import math

import torch
from torch import nn


class TinyDetector(nn.Module):
    """Images ``[B, 3, H, W]`` or frames ``[T, B, 3, H, W]`` -> three raw maps
    ``[B, 4 * reg_max + num_classes, H / s, W / s]`` for ``s`` in ``strides`` (mean over T)."""

    strides = (8, 16, 32)

    def __init__(self, num_classes: int = 2, width: int = 8, reg_max: int = 16) -> None:
        super().__init__()
        self.num_classes, self.reg_max = num_classes, reg_max
        no = 4 * reg_max + num_classes

        def down(c_in: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(c_in, width, 3, 2, 1), nn.ReLU())

        self.s8 = nn.Sequential(down(3), down(width), down(width))
        self.s16, self.s32 = down(width), down(width)
        self.heads = nn.ModuleList(nn.Conv2d(width, no, 1) for _ in self.strides)
        for head, s in zip(self.heads, self.strides):
            nn.init.constant_(head.bias[: 4 * reg_max], 1.0)
            nn.init.constant_(head.bias[4 * reg_max:], math.log(5 / num_classes / (64 / s) ** 2))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        seq = x.dim() == 5
        t = x.shape[0] if seq else 1
        if seq:
            x = x.flatten(0, 1)
        f8 = self.s8(x)
        f16 = self.s16(f8)
        f32 = self.s32(f16)
        outs = [h(f) for h, f in zip(self.heads, (f8, f16, f32))]
        if seq:
            outs = [o.view(t, -1, *o.shape[1:]).mean(0) for o in outs]
        return outs
