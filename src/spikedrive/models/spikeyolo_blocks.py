"""SpikeYOLO's meta SNN blocks (ECCV 2024), time-major ``[T, B, C, H, W]`` throughout.

Read from the authors' code (BICLab/SpikeYOLO, ``ultralytics/nn/modules/yolo_spikformer.py``):
every block starts each branch with a neuron and ends it with batch norm, so every residual add
and every concatenation acts on real-valued BN outputs (membrane shortcuts), and every synaptic
layer but the stem receives neuron output.

* :class:`StdConv` — ``neuron -> conv -> BN`` (``MS_StandardConv`` / ``SpikeConv``; with a conv
  bias it is the stride-2 ``MS_DownSampling``).
* :class:`RepConv` — ``1x1 -> BN-and-pad -> 3x3 depthwise -> 1x1 -> BN`` without neurons between:
  linear, so :meth:`RepConv.fuse` folds it into one 3x3 conv with bias (deployment form).
* :class:`SepRepConv` — ``BN-and-pad -> 1x1 -> 3x3 depthwise`` on the neuron output, also fusable.
* :class:`SepConv` — ``neuron, 1x1 C->2C, BN; neuron, kxk depthwise, BN; neuron, SepRepConv 2C->C, BN``.
* :class:`ConvBlock` / :class:`AllConvBlock` — ``x + SepConv(x)``, then a channel mixer with ratio
  ``r`` (two RepConvs, or two 3x3 StdConvs) added back.
* :class:`SPPF` — ``StdConv 1x1 C->C/2``, three chained 5x5 max-pools, concat, ``StdConv 1x1``.
* :class:`DetectHead` — YOLOv8's decoupled head built from StdConvs and a neuron + biased 1x1.

Batch norms use ultralytics' ``eps = 1e-3, momentum = 0.03`` (``initialize_weights``, which the
release's detection model calls).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from ..layers import BatchNorm2d, Conv2d, MaxPool2d, Synapse, TimeDistributed
from ..layers.folding import bn_affine, fold_pw_dw_pw, pad_with_bn_zero
from ..neurons import ILIF

__all__ = [
    "NeuronFactory", "make_neuron", "bn", "BNPad", "StdConv", "RepConv", "SepRepConv", "SepConv", "ConvBlock",
    "AllConvBlock", "SPPF", "Upsample", "DetectHead", "reparameterize",
]

NeuronFactory = Callable[[], nn.Module]
_BN_EPS, _BN_MOMENTUM = 1e-3, 0.03


def make_neuron(D: int = 4, charge: str = "decay", tau: float = 2.0, ann: bool = False) -> NeuronFactory:
    """A zero-argument neuron factory: I-LIF (``beta = 0.25`` decay charge, or the Gen1 ``tau``
    charge) emitting integers ``0..D``, or ``nn.ReLU`` for the same-architecture ANN."""
    if ann:
        return nn.ReLU
    ILIF(D=D, charge=charge, tau=tau)  # validate once, here, so a bad value names itself early
    return lambda: ILIF(D=D, beta=0.25, charge=charge, tau=tau)


def bn(channels: int) -> BatchNorm2d:
    """Batch norm over ``[T, B, C, H, W]`` with ultralytics' ``eps`` and ``momentum``."""
    return BatchNorm2d(channels, eps=_BN_EPS, momentum=_BN_MOMENTUM)


class BNPad(nn.Module):
    """Batch norm, then a border of ``pad`` pixels filled with what the norm maps 0 to.

    ``[T, B, C, H, W] -> [T, B, C, H + 2 pad, W + 2 pad]``. In eval mode this equals batch norm of
    the zero-padded input, which is what lets a following unpadded convolution fold into one
    zero-padded convolution with a bias. The fill uses the running statistics (detached) in
    training too, as the release does.
    """

    def __init__(self, channels: int, pad: int = 1) -> None:
        super().__init__()
        self.bn = bn(channels)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[T, B, C, H, W] -> [T, B, C, H + 2p, W + 2p]``."""
        y = self.bn(x)
        if self.pad == 0:
            return y
        return pad_with_bn_zero(y, self.bn, self.pad)


def _dense_synapse(weight: torch.Tensor, bias: torch.Tensor) -> Synapse:
    """A ``Synapse`` over a zero-padded (same-size) conv holding ``weight`` ``[O, I, k, k]`` and ``bias``."""
    out_c, in_c, k, _ = weight.shape
    syn = Conv2d(in_c, out_c, k, bias=True).to(weight.device, weight.dtype)
    with torch.no_grad():
        syn.module.weight.copy_(weight)
        syn.module.bias.copy_(bias)
    return syn


class RepConv(nn.Module):
    """``1x1 (C_in->C_in) -> BNPad -> 3x3 depthwise (no padding) -> 1x1 (C_in->C_out) -> BN``.

    ``[T, B, C_in, H, W] -> [T, B, C_out, H, W]``; no neuron inside, so the chain is linear in its
    input and :meth:`fuse` replaces it by one 3x3 conv with bias (equal in eval mode).
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = Conv2d(c_in, c_in, 1)
        self.bnpad = BNPad(c_in, 1)
        self.dw = Conv2d(c_in, c_in, 3, padding=0, groups=c_in)
        self.conv2 = Conv2d(c_in, c_out, 1)
        self.bn = bn(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[T, B, C_in, H, W] -> [T, B, C_out, H, W]``."""
        return self.bn(self.conv2(self.dw(self.bnpad(self.conv1(x)))))

    @torch.no_grad()
    def fuse(self) -> Synapse:
        """The equivalent 3x3 conv (``padding 1``, with bias) under the running BN statistics."""
        return _dense_synapse(*fold_pw_dw_pw(self.conv1.module.weight[:, :, 0, 0], self.bnpad.bn,
                                             self.dw.module.weight[:, 0], self.conv2.module.weight[:, :, 0, 0],
                                             self.bn))


class SepRepConv(nn.Module):
    """``BNPad -> 1x1 (C_in->C_out) -> 3x3 depthwise (no padding)``, ``[T, B, C_in, H, W] ->
    [T, B, C_out, H, W]``; :meth:`fuse` folds it into one 3x3 conv with bias."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.bnpad = BNPad(c_in, 1)
        self.conv1 = Conv2d(c_in, c_out, 1)
        self.dw = Conv2d(c_out, c_out, 3, padding=0, groups=c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[T, B, C_in, H, W] -> [T, B, C_out, H, W]``."""
        return self.dw(self.conv1(self.bnpad(x)))

    @torch.no_grad()
    def fuse(self) -> Synapse:
        """The equivalent 3x3 conv (``padding 1``, with bias) under the running BN statistics."""
        s, b = bn_affine(self.bnpad.bn)                 # [i]
        a = self.conv1.module.weight[:, :, 0, 0]          # [o, i]
        d = self.dw.module.weight[:, 0]                   # [o, 3, 3]
        weight = torch.einsum("okl,oi,i->oikl", d, a, s)
        bias = d.sum((1, 2)) * (a @ b)
        return _dense_synapse(weight, bias)


def reparameterize(module: nn.Module) -> int:
    """Replace, in place, every :class:`RepConv` / :class:`SepRepConv` under ``module`` by its fused
    3x3 conv; returns how many were replaced. Uses the running BN statistics (eval-mode maths)."""
    count = 0
    for name, child in list(module.named_children()):
        if isinstance(child, (RepConv, SepRepConv)):
            setattr(module, name, child.fuse())
            count += 1
        else:
            count += reparameterize(child)
    return count


class StdConv(nn.Sequential):
    """``neuron -> conv k x k (stride s, padding k // 2) -> BN``: ``[T, B, C_in, H, W] ->
    [T, B, C_out, H / s, W / s]``."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int, neuron: NeuronFactory, bias: bool = False) -> None:
        super().__init__(neuron(), Conv2d(c_in, c_out, k, stride=stride, bias=bias), bn(c_out))


class SepConv(nn.Module):
    """MobileNetV2-style inverted separable conv with spiking inputs, ``[T, B, C, H, W] -> same``.

    ``neuron, 1x1 C->2C, BN; neuron, k x k depthwise, BN; neuron, SepRepConv 2C->C, BN``.
    """

    def __init__(self, dim: int, neuron: NeuronFactory, kernel_size: int = 7) -> None:
        super().__init__()
        mid = 2 * dim
        self.body = nn.Sequential(
            neuron(), Conv2d(dim, mid, 1), bn(mid),
            neuron(), Conv2d(mid, mid, kernel_size, groups=mid), bn(mid),
            neuron(), SepRepConv(mid, dim), bn(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[T, B, C, H, W] -> [T, B, C, H, W]``."""
        return self.body(x)


class ConvBlock(nn.Module):
    """``MS_ConvBlock``: ``x = x + SepConv(x)``; ``x = x + BN(RepConv(neuron(BN(RepConv(neuron(x))))))``
    with the mixer widening ``C -> ratio * C -> C``. ``[T, B, C, H, W] -> same``."""

    def __init__(self, dim: int, ratio: int, neuron: NeuronFactory, kernel_size: int = 7) -> None:
        super().__init__()
        hidden = int(dim * ratio)
        self.sep = SepConv(dim, neuron, kernel_size)
        self.mixer = nn.Sequential(
            neuron(), RepConv(dim, hidden), bn(hidden),
            neuron(), RepConv(hidden, dim), bn(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[T, B, C, H, W] -> [T, B, C, H, W]`` (real-valued membrane input in and out)."""
        x = x + self.sep(x)
        return x + self.mixer(x)


class AllConvBlock(nn.Module):
    """``MS_AllConvBlock``: ``x = x + SepConv(x)``; ``x = x + StdConv3x3(rC->C)(StdConv3x3(C->rC)(x))``.
    ``[T, B, C, H, W] -> same``."""

    def __init__(self, dim: int, ratio: int, neuron: NeuronFactory, kernel_size: int = 7) -> None:
        super().__init__()
        hidden = int(dim * ratio)
        self.sep = SepConv(dim, neuron, kernel_size)
        self.mixer = nn.Sequential(StdConv(dim, hidden, 3, 1, neuron), StdConv(hidden, dim, 3, 1, neuron))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[T, B, C, H, W] -> [T, B, C, H, W]``."""
        x = x + self.sep(x)
        return x + self.mixer(x)


class SPPF(nn.Module):
    """Spiking SPPF: ``StdConv 1x1 C_in->C_in/2``, three chained ``k x k`` stride-1 max-pools on
    its (real) output, concat of the four along channels, ``StdConv 1x1 -> C_out``."""

    def __init__(self, c_in: int, c_out: int, neuron: NeuronFactory, k: int = 5) -> None:
        super().__init__()
        hidden = c_in // 2
        self.cv1 = StdConv(c_in, hidden, 1, 1, neuron)
        self.pool = MaxPool2d(k, 1, k // 2)
        self.cv2 = StdConv(4 * hidden, c_out, 1, 1, neuron)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[T, B, C_in, H, W] -> [T, B, C_out, H, W]``."""
        y = [self.cv1(x)]
        for _ in range(3):
            y.append(self.pool(y[-1]))
        return self.cv2(torch.cat(y, dim=2))


class Upsample(TimeDistributed):
    """Nearest-neighbour up-sampling by 2 of ``[T, B, C, H, W]``."""

    def __init__(self) -> None:
        super().__init__(nn.Upsample(scale_factor=2, mode="nearest"))


class DetectHead(nn.Module):
    """YOLOv8's decoupled anchor-free head from spiking convs.

    Per level: box branch ``StdConv3x3 -> StdConv3x3 -> neuron -> 1x1 (bias) -> 4 * reg_max`` and
    class branch likewise to ``num_classes``; widths ``c2 = max(16, ch0 // 4, 4 * reg_max)`` and
    ``c3 = max(ch0, min(num_classes, 100))`` unless given. Returns per level
    ``[B, 4 * reg_max + num_classes, H, W]``, the mean over time of the raw outputs.
    """

    def __init__(self, num_classes: int, channels: tuple[int, ...], strides: tuple[int, ...], neuron: NeuronFactory,
                 reg_max: int = 16, box_width: int | None = None, cls_width: int | None = None) -> None:
        super().__init__()
        self.num_classes, self.reg_max, self.strides = num_classes, reg_max, strides
        c2 = box_width or max(16, channels[0] // 4, 4 * reg_max)
        c3 = cls_width or max(channels[0], min(num_classes, 100))

        def branch(c_in: int, width: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(StdConv(c_in, width, 3, 1, neuron), StdConv(width, width, 3, 1, neuron),
                                 neuron(), Conv2d(width, c_out, 1, bias=True))

        self.box = nn.ModuleList(branch(c, c2, 4 * reg_max) for c in channels)
        self.cls = nn.ModuleList(branch(c, c3, num_classes) for c in channels)
        self.init_biases()

    @torch.no_grad()
    def init_biases(self) -> None:
        """YOLOv8's prior: box logits 1.0; class logits ``log(5 / nc / (640 / s)^2)`` (about 5
        objects per 640-px image spread over the level's cells)."""
        for box, cls, s in zip(self.box, self.cls, self.strides):
            box[-1].module.bias.fill_(1.0)
            cls[-1].module.bias.fill_(math.log(5 / self.num_classes / (640 / s) ** 2))

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        """``[T, B, C_i, H_i, W_i]`` per level -> ``[B, 4 * reg_max + num_classes, H_i, W_i]`` per level."""
        return [torch.cat((box(x), cls(x)), dim=2).mean(0) for x, box, cls in zip(features, self.box, self.cls)]
