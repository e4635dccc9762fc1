"""MS-ResNet (membrane shortcut) and Att-Res-SNN (MA-SNN's ImageNet network): 18, 34, 104.

Block (MA-SNN's code; MS-ResNet's shape): ``LIF -> conv3x3 -> BN -> LIF -> conv3x3 -> BN
[-> CSA] + shortcut``. The neurons sit *before* the convolutions, so the residual sum adds
membrane input (real-valued pre-activations), never spikes: the shortcut carries the previous
block's pre-neuron tensor. When the shape changes the shortcut is ``conv1x1 (stride) -> BN``
(MS-ResNet) or ``avgpool(stride) -> conv1x1 -> BN`` (Att-Res-SNN); that 1x1 convolution sees
real-valued input, as in both papers, so these networks are not fully spike-driven.
Stem ``conv7x7 s2 -> BN`` (the encoding layer; ``stem_pool`` adds a 3x3 s2 max-pool);
widths 64/128/256/512; blocks 18: [2,2,2,2], 34: [3,4,6,3], 104: [3,8,32,8].
Head: ``LIF -> global avg-pool -> mean over T -> dropout -> FC``.
Neurons: ``H = 0.25 V + X``, V_th 0.5, reset to 0, rectangle surrogate (MA-SNN's code).
CSA is :class:`~spikedrive.layers.MultiDimensionalAttention` with ``temporal=False`` and
reduction 8, without the final ReLU (the branch added to the shortcut keeps its sign; a choice,
the release's placement of that ReLU in the residual block is not recorded in METHODS.md).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..encoding import direct_encode
from ..layers import AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, Dropout, Linear, MaxPool2d, MultiDimensionalAttention
from ..neurons import LIF, Rectangle, SpikingNeuron
from .registry import ModelInput, register_model

__all__ = ["MSBlock", "MSResNet"]

NeuronFactory = Callable[[], SpikingNeuron]
DEPTHS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 104: (3, 8, 32, 8)}


def _default_neuron() -> SpikingNeuron:
    return LIF.with_decay(0.25, 0.5, detach_reset=True, surrogate=Rectangle(1.0))


class MSBlock(nn.Module):
    """Membrane-shortcut basic block, ``[T, B, C_in, H, W] -> [T, B, C_out, H/s, W/s]`` (real
    membrane input in and out).

    Args:
        c_in, c_out: channels; stride: of the first conv and of the shortcut.
        neuron: factory for the two neurons; attention: add CSA (reduction 8) to the branch.
        avgpool_shortcut: Att-Res-SNN's ``avgpool -> 1x1`` shortcut instead of a strided 1x1.
    """

    def __init__(self, c_in: int, c_out: int, stride: int, neuron: NeuronFactory, attention: bool = False,
                 avgpool_shortcut: bool = False, T: int = 1) -> None:
        super().__init__()
        self.branch = nn.Sequential(
            neuron(), Conv2d(c_in, c_out, 3, stride=stride), BatchNorm2d(c_out),
            neuron(), Conv2d(c_out, c_out, 3), BatchNorm2d(c_out),
        )
        self.attention = MultiDimensionalAttention(T, c_out, reduction_c=8, temporal=False, relu=False) if attention else None
        if attention:
            nn.init.constant_(self.branch[5].module.weight, 0.1)  # the authors' 0.2 * V_th
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            layers: list[nn.Module] = []
            if avgpool_shortcut and stride != 1:
                layers.append(AvgPool2d(stride))
                stride = 1
            self.shortcut = nn.Sequential(*layers, Conv2d(c_in, c_out, 1, stride=stride, padding=0), BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Membrane ``[T, B, C_in, H, W]`` -> membrane ``[T, B, C_out, H', W']``."""
        out = self.branch(x)
        if self.attention is not None:
            out = self.attention(out)
        return out + self.shortcut(x)


class MSResNet(nn.Module):
    """MS-ResNet / Att-Res-SNN: images ``[B, 3, S, S]`` (direct-encoded over ``T``) or sequences
    ``[T, B, 3, S, S]`` -> logits ``[B, num_classes]``. See the module docs.

    Args:
        depth: 18, 34 or 104 (or give ``layers``); num_classes; T: time steps for images.
        attention: Att-Res-SNN (CSA in every block, avg-pool shortcut, head dropout 0.2).
        in_channels, widths, stem_pool: stem and stage shapes.
        dropout: head dropout (default 0.2 with attention, else 0).
        neuron: zero-argument neuron factory (default MA-SNN's LIF).
    """

    def __init__(self, depth: int = 18, num_classes: int = 1000, T: int = 1, attention: bool = False,
                 in_channels: int = 3, widths: tuple[int, ...] = (64, 128, 256, 512),
                 layers: tuple[int, ...] | None = None, stem_pool: bool = False, dropout: float | None = None,
                 neuron: NeuronFactory | None = None) -> None:
        super().__init__()
        if layers is None:
            if depth not in DEPTHS:
                raise ValueError(f"MSResNet: depth must be one of {sorted(DEPTHS)} (or pass layers), got {depth!r}")
            layers = DEPTHS[depth]
        if len(layers) != len(widths):
            raise ValueError(f"MSResNet: layers {layers} and widths {widths} must have the same length")
        make = neuron or _default_neuron
        self.T, self.in_channels = T, in_channels
        stem: list[nn.Module] = [Conv2d(in_channels, widths[0], 7, stride=2, encoding=True), BatchNorm2d(widths[0])]
        if stem_pool:
            stem.append(MaxPool2d(3, 2, 1))
        self.stem = nn.Sequential(*stem)
        blocks: list[nn.Module] = []
        c_in = widths[0]
        for stage, (n, c_out) in enumerate(zip(layers, widths)):
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(MSBlock(c_in, c_out, stride, make, attention, avgpool_shortcut=attention, T=T))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.head_neuron = make()
        self.pool = AdaptiveAvgPool2d(1)
        p = (0.2 if attention else 0.0) if dropout is None else dropout
        self.dropout = Dropout(p)
        self.fc = Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, S, S]`` or ``[T, B, C, S, S]`` -> logits ``[B, num_classes]``."""
        if x.dim() == 4:
            x = direct_encode(x, self.T)
        if x.dim() != 5 or x.shape[2] != self.in_channels:
            raise ValueError(f"{type(self).__name__}: expected [B, {self.in_channels}, S, S] or [T, B, "
                             f"{self.in_channels}, S, S], got shape {tuple(x.shape)}")
        x = self.blocks(self.stem(x))
        x = self.pool(self.head_neuron(x)).flatten(2)  # [T, B, C]
        return self.fc(self.dropout(x)).mean(0)


_IMAGENET = ModelInput("imagenet", {"img_size": 224})


@register_model(default_input=_IMAGENET)
def ms_resnet18(num_classes: int = 1000, T: int = 1, **kwargs) -> MSResNet:
    """MS-ResNet-18 (membrane shortcuts, no attention)."""
    return MSResNet(18, num_classes, T, attention=False, **kwargs)


@register_model(default_input=_IMAGENET)
def ms_resnet34(num_classes: int = 1000, T: int = 1, **kwargs) -> MSResNet:
    """MS-ResNet-34."""
    return MSResNet(34, num_classes, T, attention=False, **kwargs)


@register_model(default_input=_IMAGENET)
def ms_resnet104(num_classes: int = 1000, T: int = 1, **kwargs) -> MSResNet:
    """MS-ResNet-104 (basic blocks [3, 8, 32, 8], as MA-SNN's Res-SNN-104)."""
    return MSResNet(104, num_classes, T, attention=False, **kwargs)


@register_model(default_input=_IMAGENET)
def att_ms_resnet18(num_classes: int = 1000, T: int = 1, **kwargs) -> MSResNet:
    """Att-Res-SNN-18: MS-ResNet-18 with CSA (reduction 8) in every block."""
    return MSResNet(18, num_classes, T, attention=True, **kwargs)


@register_model(default_input=_IMAGENET)
def att_ms_resnet34(num_classes: int = 1000, T: int = 1, **kwargs) -> MSResNet:
    """Att-Res-SNN-34."""
    return MSResNet(34, num_classes, T, attention=True, **kwargs)


@register_model(default_input=_IMAGENET)
def att_ms_resnet104(num_classes: int = 1000, T: int = 1, **kwargs) -> MSResNet:
    """Att-Res-SNN-104 (MA-SNN: 75.92% at T = 1, 77.08% at T = 4 on ImageNet)."""
    return MSResNet(104, num_classes, T, attention=True, **kwargs)
