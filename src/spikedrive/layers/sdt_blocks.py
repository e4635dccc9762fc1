"""The blocks of the Spike-Driven Transformers (v1 and v2 / Meta-SpikeFormer).

All blocks follow the membrane-shortcut rule: the stream between blocks is real-valued
(pre-neuron membrane input), each branch starts with a LIF, and the branch output (after BN) is
*added to the stream before the next neuron*, so every synaptic layer receives spikes. Shapes are
time-major ``[T, B, C, H, W]`` throughout. Facts are from the authors' code (BICLab
Spike-Driven-Transformer ``module/sps.py``, ``module/ms_conv.py``; Spike-Driven-Transformer-V2
``classification/models.py``) unless marked otherwise.
"""

from __future__ import annotations

import torch
from torch import nn

from .readout import MaxPool2d
from .sdsa import BatchNormLast, NeuronFactory, SpikeDrivenAttentionV2, SpikeDrivenSelfAttention, sdt_lif
from .folding import FusedConv
from .time_distributed import BatchNorm2d, Conv2d, Linear

__all__ = [
    "encode_once", "SpikingPatchSplitting", "SpikingMLP", "SpikingConvMLP", "SDTBlock",
    "DepthwisePointwise", "SepConv", "ConvBlock", "DownsampleV2", "MetaBlock",
]


def encode_once(encode: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``encode(x)`` for a stateless ``encode`` (conv, BN) on ``[T, B, C, H, W]``; a direct-encoded
    input (one image expanded over ``T`` with stride 0, see
    :func:`spikedrive.encoding.direct_encode`) goes through once and is expanded afterwards: the
    same values and gradients (BN's batch statistics over ``T`` copies equal those over one),
    ``1/T`` of the work. Only BN's running variance moves slightly differently: its unbiased
    factor counts ``B H W`` samples instead of ``T B H W``."""
    steps = x.shape[0]
    if steps <= 1 or x.stride(0) != 0:
        return encode(x)
    u = encode(x[:1])
    if u.dim() == 5 and u[0].is_contiguous(memory_format=torch.channels_last):
        # Expanded in [T, B, H, W, C] order, so the backward's sum over T comes out channels-last
        # like the BN's input (a mixed-layout BN backward is ~5x slower on CPU).
        return u.permute(0, 1, 3, 4, 2).expand(steps, -1, -1, -1, -1).permute(0, 1, 4, 2, 3)
    return u.expand(steps, *u.shape[1:])


class SpikingPatchSplitting(nn.Module):
    """SDT v1's SPS stem: images or frames ``[T, B, C_in, H, W]`` -> membrane ``[T, B, D, H/2^p, W/2^p]``.

    Stages ``i = 0..3`` with widths ``D/8, D/4, D/2, D``: ``conv3x3 (no bias) -> BN -> LIF ->
    [maxpool 3 s2]`` for the first three (pooling the spikes keeps them binary); the last is
    ``conv3x3 -> BN -> [maxpool]`` giving the membrane ``u``, then the relative position embedding
    ``u + BN(conv3x3(LIF(u)))``. The first conv sees the input: it is the encoding layer.

    The convolutions run in channels-last memory (weights converted here; activations follow),
    faster on CPU (oneDNN) and tensor cores alike. A direct-encoded input (one image repeated over
    ``T`` as a stride-0 view, see :func:`spikedrive.encoding.direct_encode`) goes through the
    encoding conv and its BN once and is expanded over time afterwards: the same values and
    gradients (BN's batch statistics over ``T`` copies equal those over one), ``1/T`` of the work.

    Args:
        in_channels: input channels (3 images, 2 event polarities); dim: ``D`` (divisible by 8).
        pooling: which stages pool, as the release's ``pooling_stat`` string: ``"1111"``
            (ImageNet, downsampling 16), ``"0011"`` (CIFAR), ``"0111"`` (128 px event frames).
        neuron: factory (default :func:`~spikedrive.layers.sdsa.sdt_lif`).
        mark_encoding: mark the first conv as the encoding layer (charged MACs). ``False`` for
            event frames: the analysis then treats it as encoding only if its input is not
            binary, so binary event frames are charged accumulates like any spikes.
    """

    def __init__(self, in_channels: int, dim: int, pooling: str = "1111", neuron: NeuronFactory | None = None,
                 mark_encoding: bool = True) -> None:
        super().__init__()
        if dim % 8:
            raise ValueError(f"SpikingPatchSplitting: dim must be divisible by 8, got {dim}")
        if len(pooling) != 4 or set(pooling) - {"0", "1"}:
            raise ValueError(f"SpikingPatchSplitting: pooling must be 4 characters of '0'/'1' (e.g. '1111'), got {pooling!r}")
        make = neuron or sdt_lif
        widths = (dim // 8, dim // 4, dim // 2, dim)
        self.encode = nn.Sequential(Conv2d(in_channels, widths[0], 3, encoding=mark_encoding), BatchNorm2d(widths[0]))
        stages: list[nn.Module] = []
        for i, c in enumerate(widths):
            layers: list[nn.Module] = [] if i == 0 else [Conv2d(widths[i - 1], c, 3), BatchNorm2d(c)]
            if i < 3:
                layers.append(make())
            if pooling[i] == "1":
                layers.append(MaxPool2d(3, 2, 1))
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.rpe = nn.Sequential(make(), Conv2d(dim, dim, 3), BatchNorm2d(dim))
        self.downsampling = 2 ** pooling.count("1")
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[T, B, C_in, H, W]`` -> membrane ``[T, B, D, H', W']`` (channels-last memory)."""
        u = self.stages(encode_once(self.encode, x))
        return u + self.rpe(u)


class SpikingMLP(nn.Module):
    """SDT v1's spiking MLP over tokens: ``LIF -> linear (bias) -> BN -> LIF -> linear (bias) ->
    BN``, membrane ``[T, B, N, C]`` -> branch ``[T, B, N, C]`` (the release's 1x1 convs)."""

    def __init__(self, dim: int, hidden: int, neuron: NeuronFactory | None = None) -> None:
        super().__init__()
        make = neuron or sdt_lif
        self.body = nn.Sequential(
            make(), Linear(dim, hidden), BatchNormLast(hidden),
            make(), Linear(hidden, dim), BatchNormLast(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Membrane ``[T, B, N, C]`` -> branch ``[T, B, N, C]``."""
        return self.body(x)


class SpikingConvMLP(nn.Module):
    """SDT v2's spiking MLP on maps: ``LIF -> 1x1 (bias) -> BN -> LIF -> 1x1 (bias) -> BN``,
    membrane ``[T, B, C, H, W]`` -> ``[T, B, C, H, W]`` (the release uses Conv1d over the
    flattened tokens: the same weights)."""

    def __init__(self, dim: int, hidden: int, neuron: NeuronFactory | None = None) -> None:
        super().__init__()
        make = neuron or sdt_lif
        self.body = nn.Sequential(
            make(), Conv2d(dim, hidden, 1, padding=0, bias=True), BatchNorm2d(hidden),
            make(), Conv2d(hidden, dim, 1, padding=0, bias=True), BatchNorm2d(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Membrane ``[T, B, C, H, W]`` -> branch ``[T, B, C, H, W]``."""
        return self.body(x)


class SDTBlock(nn.Module):
    """SDT v1 encoder block over tokens ``[T, B, N, C]``: ``x + SDSA(x)``, then ``+ MLP``
    (ratio 4), both membrane shortcuts.

    Args: dim, num_heads, mlp_ratio; variant / erode: see :class:`SpikeDrivenSelfAttention`.
    """

    def __init__(self, dim: int, num_heads: int = 8, mlp_ratio: float = 4.0, variant: str = "code",
                 erode: bool = False, neuron: NeuronFactory | None = None) -> None:
        super().__init__()
        self.attn = SpikeDrivenSelfAttention(dim, num_heads, variant, erode=erode, neuron=neuron)
        self.mlp = SpikingMLP(dim, int(dim * mlp_ratio), neuron)

    def forward(self, x: torch.Tensor, hw: tuple[int, int] | None = None) -> torch.Tensor:
        """Membrane ``[T, B, N, C]`` -> membrane ``[T, B, N, C]``; ``hw``: token grid (erode only)."""
        x = x + self.attn(x, hw)
        return x + self.mlp(x)


class DepthwisePointwise(nn.Module):
    """``kxk depthwise -> 1x1`` (no biases, no neuron between) on spikes ``[T, B, C, H, W]``.

    In the release the 1x1 receives the depthwise output, real values. The pair is linear, so in
    eval mode (``fuse=True``) it runs as one ``k x k`` conv ``C -> C_out`` with weight
    ``w_pw[o, c] * w_dw[c]`` that receives the spikes themselves [inferred: the spike-driven form;
    the energy model then charges ``k² C C_out`` per output, what that conv executes].
    """

    def __init__(self, channels: int, c_out: int, kernel_size: int = 7, fuse: bool = True) -> None:
        super().__init__()
        self.dw = Conv2d(channels, channels, kernel_size, groups=channels)
        self.pw = Conv2d(channels, c_out, 1, padding=0)
        self.fuse = fuse
        self.fused = FusedConv(channels, c_out, kernel_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Spikes ``[T, B, C, H, W]`` -> ``[T, B, C_out, H, W]``."""
        if self.fuse and not self.training:
            wd, wp = self.dw.module.weight[:, 0], self.pw.module.weight[:, :, 0, 0]
            self.fused.module.weight = wp[:, :, None, None] * wd[None]
            return self.fused(x)
        return self.pw(self.dw(x))


class SepConv(nn.Module):
    """SDT v2's inverted separable conv branch on membrane ``[T, B, C, H, W]``:
    ``LIF -> 1x1 (C -> 2C) -> BN -> LIF -> 7x7 depthwise -> 1x1 (2C -> C) -> BN`` (no biases)."""

    def __init__(self, dim: int, expansion: int = 2, kernel_size: int = 7, neuron: NeuronFactory | None = None,
                 fuse: bool = True) -> None:
        super().__init__()
        make = neuron or sdt_lif
        mid = dim * expansion
        self.body = nn.Sequential(
            make(), Conv2d(dim, mid, 1, padding=0), BatchNorm2d(mid),
            make(), DepthwisePointwise(mid, dim, kernel_size, fuse), BatchNorm2d(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Membrane ``[T, B, C, H, W]`` -> branch ``[T, B, C, H, W]``."""
        return self.body(x)


class ConvBlock(nn.Module):
    """SDT v2's conv block: ``x + SepConv(x)``, then ``x + BN(conv3x3(LIF(BN(conv3x3(LIF(x))))))``
    with channels ``C -> ratio C -> C``, no biases."""

    def __init__(self, dim: int, mlp_ratio: int = 4, neuron: NeuronFactory | None = None, fuse: bool = True) -> None:
        super().__init__()
        make = neuron or sdt_lif
        hidden = dim * mlp_ratio
        self.sepconv = SepConv(dim, neuron=neuron, fuse=fuse)
        self.channel = nn.Sequential(
            make(), Conv2d(dim, hidden, 3), BatchNorm2d(hidden),
            make(), Conv2d(hidden, dim, 3), BatchNorm2d(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Membrane ``[T, B, C, H, W]`` -> membrane ``[T, B, C, H, W]``."""
        x = x + self.sepconv(x)
        return x + self.channel(x)


class DownsampleV2(nn.Module):
    """SDT v2's downsampling: ``[LIF ->] conv (bias) -> BN``; the first one (the stem, 7x7 s2)
    has no neuron before it and is the encoding layer."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int = 3, stride: int = 2, first: bool = False,
                 neuron: NeuronFactory | None = None) -> None:
        super().__init__()
        make = neuron or sdt_lif
        layers: list[nn.Module] = [] if first else [make()]
        layers += [Conv2d(c_in, c_out, kernel_size, stride=stride, bias=True, encoding=first), BatchNorm2d(c_out)]
        self.body = nn.Sequential(*layers)
        self.first = first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[T, B, C_in, H, W]`` -> membrane ``[T, B, C_out, H/s, W/s]``; the first one (conv and
        BN only, stateless) encodes a direct-encoded input once (:func:`encode_once`)."""
        return encode_once(self.body, x) if self.first else self.body(x)


class MetaBlock(nn.Module):
    """SDT v2's transformer block: ``x + Attn(x)`` (:class:`SpikeDrivenAttentionV2`, scaled by
    ``attn_scale``), then ``x + MLP(x)`` (ratio 4)."""

    def __init__(self, dim: int, num_heads: int = 8, mlp_ratio: int = 4, neuron: NeuronFactory | None = None,
                 fuse: bool = True, attn_scale: float = 0.125) -> None:
        super().__init__()
        self.attn = SpikeDrivenAttentionV2(dim, num_heads, scale=attn_scale, neuron=neuron, fuse=fuse)
        self.mlp = SpikingConvMLP(dim, dim * mlp_ratio, neuron)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Membrane ``[T, B, C, H, W]`` -> membrane ``[T, B, C, H, W]``."""
        x = x + self.attn(x)
        return x + self.mlp(x)
