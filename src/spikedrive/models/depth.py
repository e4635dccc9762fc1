"""Spiking U-Net for monocular event-camera depth (MSS-DepthNet-like; arXiv 2211.12156).

``frames [T, B, C, H, W] -> normalised log depth [B, 1, H, W]`` in ``(0, 1)``.

* **Stem**: conv 3x3 (-> MA attention) -> BN, the encoding layer (event counts are not binary).
* **Encoder**: ``levels`` membrane-shortcut residual blocks of stride 2 (channels doubling):
  ``s = LIF(x)``, ``y = BN(conv(LIF(BN(conv_s2(s))))) + BN(conv1x1_s2(s))``; the shortcut and
  the branch both read the spikes ``s`` and add membranes (MS-ResNet), so every synapse sees
  binary input. Then one stride-1 block at the bottom.
* **Decoder**: per level ``LIF -> ConvTranspose2d(2x2, stride 2) -> BN``, plus the encoder's
  membrane of that resolution (additive skip connection), then a stride-1 residual block.
* **Readout**: ``LIF -> conv 3x3 (bias) -> 1`` channel is the last synaptic layer; its input
  current goes into a **non-spiking integrator**: ``readout="mean"`` (default) is a
  non-leaky integrator read at ``T`` and divided by ``T`` (the mean over time);
  ``readout="leaky"`` is ``V_t = V_{t-1} + (I_t - V_{t-1}) / tau_out``, read at ``T``. The
  membrane goes through a sigmoid to the ``(0, 1)`` range of normalised log depth.

``attention=True`` puts :class:`~spikedrive.layers.MultiDimensionalAttention` (TCSA, no final
ReLU) between every conv and its BN in the stem and the residual branches. Inputs whose sides are not multiples of
``2 ** levels`` (MVSEC's 260x346) are zero-padded and the output is cropped back.

The ANN of the same architecture (``ann_unet_depth``) replaces every LIF by a ReLU and, having
no time, folds the ``T`` frames into channels (``C * T`` input channels, one step).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import BatchNorm2d, Conv2d, ConvTranspose2d, MultiDimensionalAttention
from ..neurons import LIF
from .registry import register_model

__all__ = ["SpikingUNetDepth", "spiking_unet_depth", "ann_unet_depth", "count_parameters"]

NeuronFactory = Callable[[], nn.Module]


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class _ConvBN(nn.Sequential):
    """conv (-> MA attention) -> BN, ``[T, B, C_in, H, W] -> [T, B, C_out, H/s, W/s]``.

    The attention re-weights the conv's output *before* the BN: its sigmoid gates (each in
    ``(0, 1)``, three of them multiplied) shrink what they scale, and after the BN they left the
    LIF layers' membranes far below threshold (silent neurons, a network that barely trains);
    the BN restores unit scale for the neurons that follow."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int, attention: int | None, encoding: bool = False) -> None:
        mods: list[nn.Module] = [Conv2d(c_in, c_out, k, stride=stride, encoding=encoding)]
        if attention is not None:
            mods.append(MultiDimensionalAttention(attention, c_out, reduction_t=max(1, attention // 2),
                                                  reduction_c=4, relu=False))
        super().__init__(*mods, BatchNorm2d(c_out))


class _ResBlock(nn.Module):
    """Membrane-shortcut residual block: membrane ``[T, B, C_in, H, W]`` -> membrane
    ``[T, B, C_out, H/s, W/s]``; the identity shortcut adds the input membrane, a projection
    shortcut (stride or width change) reads the block's input spikes."""

    def __init__(self, c_in: int, c_out: int, stride: int, neuron: NeuronFactory, attention: int | None) -> None:
        super().__init__()
        self.neuron_in = neuron()
        self.conv1 = _ConvBN(c_in, c_out, 3, stride, attention)
        self.neuron_mid = neuron()
        self.conv2 = _ConvBN(c_out, c_out, 3, 1, attention)
        self.project = None if stride == 1 and c_in == c_out else _ConvBN(c_in, c_out, 1, stride, None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Membrane in, membrane out (see the class docstring)."""
        s = self.neuron_in(x)
        y = self.conv2(self.neuron_mid(self.conv1(s)))
        return y + (x if self.project is None else self.project(s))


class SpikingUNetDepth(nn.Module):
    """Spiking (or ReLU) U-Net, ``[T, B, C, H, W] -> [B, 1, H, W]`` normalised log depth. See the module docs.

    Args:
        in_channels: channels per step (2 polarities).
        T: time steps the model expects (the MA attention's temporal MLP needs it).
        base: channels of the first level; level ``i`` has ``base * 2**i``.
        levels: down-samplings (each halves H and W).
        attention: MA-SNN attention in the residual branches.
        readout: ``"mean"`` or ``"leaky"`` non-spiking integrator (see the module docs).
        tau_out: time constant of the leaky readout, in steps (``>= 1``).
        spiking: LIF neurons (True) or ReLU with the ``T`` frames folded into channels (False).
        tau: LIF time constant.
    """

    def __init__(self, in_channels: int = 2, T: int = 5, base: int = 16, levels: int = 3, attention: bool = False,
                 readout: str = "mean", tau_out: float = 2.0, spiking: bool = True, tau: float = 2.0) -> None:
        super().__init__()
        who = type(self).__name__
        for name, value in (("in_channels", in_channels), ("T", T), ("base", base), ("levels", levels)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{who}: {name} must be an integer >= 1, got {value!r}")
        if readout not in ("mean", "leaky"):
            raise ValueError(f"{who}: readout must be 'mean' or 'leaky', got {readout!r}")
        if not tau_out >= 1.0:
            raise ValueError(f"{who}: tau_out must be >= 1 time step, got {tau_out}")
        self.in_channels, self.T, self.levels = in_channels, T, levels
        self.spiking, self.readout, self.tau_out = spiking, readout, float(tau_out)
        steps = T if spiking else 1
        att = steps if attention else None
        neuron: NeuronFactory = (lambda: LIF(tau=tau, detach_reset=True)) if spiking else nn.ReLU
        widths = [base * 2 ** i for i in range(levels + 1)]
        self.stem = _ConvBN(in_channels if spiking else in_channels * T, base, 3, 1, att, encoding=True)
        self.down = nn.ModuleList(_ResBlock(widths[i], widths[i + 1], 2, neuron, att) for i in range(levels))
        self.bottom = _ResBlock(widths[-1], widths[-1], 1, neuron, att)
        self.up_neurons = nn.ModuleList(neuron() for _ in range(levels))
        self.up = nn.ModuleList(
            nn.Sequential(ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2), BatchNorm2d(widths[i]))
            for i in reversed(range(levels)))
        self.fuse = nn.ModuleList(_ResBlock(widths[i], widths[i], 1, neuron, att) for i in reversed(range(levels)))
        self.head_neuron = neuron()
        self.head = Conv2d(base, 1, 3, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Event frames ``[T, B, C, H, W]`` -> normalised log depth ``[B, 1, H, W]`` in ``(0, 1)``."""
        if x.dim() != 5 or x.shape[0] != self.T or x.shape[2] != self.in_channels:
            raise ValueError(f"{type(self).__name__}: expected frames [T={self.T}, B, C={self.in_channels}, H, W], "
                             f"got shape {tuple(x.shape)}")
        h, w = x.shape[-2:]
        m = 2 ** self.levels
        x = F.pad(x, (0, -w % m, 0, -h % m))
        if not self.spiking:
            x = x.transpose(0, 1).flatten(1, 2).unsqueeze(0)  # [1, B, T*C, H, W]
        skips = [self.stem(x)]
        for block in self.down:
            skips.append(block(skips[-1]))
        y = self.bottom(skips.pop())
        for neuron, up, fuse in zip(self.up_neurons, self.up, self.fuse):
            y = fuse(up(neuron(y)) + skips.pop())
        current = self.head(self.head_neuron(y))  # [T, B, 1, H', W']
        return torch.sigmoid(self._integrate(current))[..., :h, :w]

    def _integrate(self, current: torch.Tensor) -> torch.Tensor:
        """The non-spiking output neuron's membrane at the last step, ``[B, 1, H, W]``."""
        if self.readout == "mean":
            return current.mean(0)
        v = torch.zeros_like(current[0])
        for i_t in current:
            v = v + (i_t - v) / self.tau_out
        return v


@register_model
def spiking_unet_depth(T: int = 5, in_channels: int = 2, base: int = 16, levels: int = 3, attention: bool = True,
                       readout: str = "mean", **kwargs) -> SpikingUNetDepth:
    """The spiking U-Net (LIF, membrane shortcuts, MA attention by default) on ``T`` event frames."""
    return SpikingUNetDepth(in_channels, T, base, levels, attention, readout, spiking=True, **kwargs)


@register_model
def ann_unet_depth(T: int = 5, in_channels: int = 2, base: int = 16, levels: int = 3, attention: bool = True,
                   **kwargs) -> SpikingUNetDepth:
    """The same U-Net with ReLU and the ``T`` frames folded into ``C * T`` channels (the ANN baseline)."""
    kwargs.pop("readout", None)
    return SpikingUNetDepth(in_channels, T, base, levels, attention, "mean", spiking=False, **kwargs)
