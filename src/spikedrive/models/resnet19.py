"""Spiking ResNet-19 of the SNN lottery-ticket baseline (Kim et al., ECCV 2022, reused by Yao et
al. 2023; METHODS.md "Lottery tickets in SNNs").

Structure, as in the authors' code (``cifarsvhn/resnet.py`` of Exploring-Lottery-Ticket-
Hypothesis-in-SNNs): an encoding conv3x3 (3 -> 64) + BN + LIF; three stages of basic blocks,
3 / 3 / 2 blocks of 128 / 256 / 512 channels, each stage starting with stride 2 (a 1x1 conv + BN
shortcut where the shape changes); global average pooling; fc 512 -> 256 + LIF; fc 256 ->
classes. 1 + 2 x 8 convs + 2 linear layers = 19 weight layers (plus the shortcut 1x1 convs).

Neurons: LIF with ``tau = 1 / (1 - 0.25) = 4/3`` (decay 0.25), threshold 1, hard reset to 0,
detached reset, ATan surrogate. The authors' SpikingJelly ``LIFNode`` scales the input by
``1 / tau`` (``decay_input=True``: ``H = 0.25 V + 0.75 X``); ``decay_input=False`` gives
``LIF.with_decay(0.25, 1.0)``'s ``H = 0.25 V + X``.

Input: an image ``[B, C, H, W]`` (direct-encoded over ``T`` steps) or a sequence
``[T, B, C, H, W]``; output: logits ``[B, classes]``, the mean over time (the authors average the
per-step losses; for cross-entropy of the mean logits this is the common variant).
"""

from __future__ import annotations

import torch
from torch import nn

from ..encoding import direct_encode
from ..layers import AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear
from ..neurons import LIF, Atan
from .registry import ModelInput, register_model

__all__ = ["SpikingResNet19", "BasicBlock"]


def _lif(decay: float, decay_input: bool) -> LIF:
    if decay_input:
        return LIF(tau=1.0 / (1.0 - decay), v_threshold=1.0, v_reset=0.0, decay_input=True, detach_reset=True,
                   surrogate=Atan())
    return LIF.with_decay(decay, v_threshold=1.0, detach_reset=True, surrogate=Atan())


class BasicBlock(nn.Module):
    """``LIF(BN(conv3x3(LIF(BN(conv3x3(x))))) + shortcut(x))`` over ``[T, B, C, H, W]``; the
    shortcut is the identity or, where stride or width change, conv1x1 + BN."""

    def __init__(self, c_in: int, c_out: int, stride: int, decay: float, decay_input: bool) -> None:
        super().__init__()
        self.conv1 = Conv2d(c_in, c_out, 3, stride=stride)
        self.bn1 = BatchNorm2d(c_out)
        self.lif1 = _lif(decay, decay_input)
        self.conv2 = Conv2d(c_out, c_out, 3)
        self.bn2 = BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(Conv2d(c_in, c_out, 1, stride=stride, padding=0), BatchNorm2d(c_out))
        self.lif2 = _lif(decay, decay_input)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[T, B, c_in, H, W] -> [T, B, c_out, H / stride, W / stride]`` spikes."""
        out = self.bn2(self.conv2(self.lif1(self.bn1(self.conv1(x)))))
        return self.lif2(out + self.shortcut(x))


class SpikingResNet19(nn.Module):
    """The spiking ResNet-19 (module doc).

    Args:
        num_classes: output classes.
        T: time steps for a static image input.
        in_channels: input channels (3 for CIFAR, 1 for grey digits).
        width: channel multiplier of every layer (1.0: 64 / 128 / 256 / 512, fc 256); widths are
            rounded and at least 1.
        blocks: basic blocks per stage (``(3, 3, 2)`` for ResNet-19).
        decay: membrane decay per step (0.25).
        decay_input: scale the input by ``1 - decay`` as the authors' SpikingJelly LIF does.
    """

    def __init__(self, num_classes: int = 10, T: int = 5, in_channels: int = 3, width: float = 1.0,
                 blocks: tuple[int, ...] = (3, 3, 2), decay: float = 0.25, decay_input: bool = True) -> None:
        super().__init__()
        if not width > 0:
            raise ValueError(f"SpikingResNet19: width must be > 0, got {width}")
        if T < 1:
            raise ValueError(f"SpikingResNet19: T must be an integer >= 1, got {T}")
        if len(blocks) != 3 or any(b < 1 for b in blocks):
            raise ValueError(f"SpikingResNet19: blocks must be three counts >= 1, got {blocks}")
        w = lambda c: max(1, int(round(c * width)))  # noqa: E731
        self.T, self.in_channels, self.num_classes = T, in_channels, num_classes
        self.conv1 = Conv2d(in_channels, w(64), 3, encoding=True)
        self.bn1 = BatchNorm2d(w(64))
        self.lif1 = _lif(decay, decay_input)
        stages, c = [], w(64)
        for c_out, n in zip((w(128), w(256), w(512)), blocks):
            stage = [BasicBlock(c, c_out, 2, decay, decay_input)]
            stage += [BasicBlock(c_out, c_out, 1, decay, decay_input) for _ in range(n - 1)]
            stages.append(nn.Sequential(*stage))
            c = c_out
        self.layer1, self.layer2, self.layer3 = stages
        self.pool = AdaptiveAvgPool2d(1)
        self.flatten = Flatten()
        self.fc1 = Linear(c, w(256))
        self.lif_fc = _lif(decay, decay_input)
        self.fc2 = Linear(w(256), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` or ``[T, B, C, H, W]`` → logits ``[B, num_classes]``."""
        if x.dim() == 4:
            x = direct_encode(x, self.T)
        if x.dim() != 5 or x.shape[2] != self.in_channels:
            raise ValueError(f"{type(self).__name__}: expected [B, {self.in_channels}, H, W] or [T, B, "
                             f"{self.in_channels}, H, W], got shape {tuple(x.shape)}")
        out = self.lif1(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = self.lif_fc(self.fc1(self.flatten(self.pool(out))))
        return self.fc2(out).mean(0)


@register_model(default_input=ModelInput("cifar10"))
def resnet19(num_classes: int = 10, T: int = 5, width: float = 1.0, **kwargs) -> SpikingResNet19:
    """Spiking ResNet-19 of the lottery-ticket protocol (CIFAR-10/100, T = 5, LIF decay 0.25)."""
    return SpikingResNet19(num_classes=num_classes, T=T, width=width, **kwargs)


@register_model(default_input=ModelInput("digits"))
def resnet19_tiny(num_classes: int = 10, T: int = 4, width: float = 0.125, **kwargs) -> SpikingResNet19:
    """ResNet-19 at 1/8 width (8 / 16 / 32 / 64 channels, fc 32) on grey 8x8 digits by default,
    for tests and digits-scale experiments."""
    kwargs.setdefault("in_channels", 1)
    return SpikingResNet19(num_classes=num_classes, T=T, width=width, **kwargs)
