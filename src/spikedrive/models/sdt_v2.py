"""Meta-SpikeFormer / Spike-Driven Transformer v2 (Yao et al., ICLR 2024).

Stage widths ``e0..e3`` [code: ``Spiking_vit_MetaFormer``]: stem ``conv7x7 s2 (bias) -> BN``
to ``e0/2`` (the encoding layer, no neuron before it) -> ConvBlock -> down 3x3 s2 to ``e0`` ->
ConvBlock -> down to ``e1`` -> 2 ConvBlocks -> down to ``e2`` -> 6 transformer blocks -> 3x3
stride-1 conv to ``e3`` -> 2 transformer blocks -> mean over H, W -> LIF -> linear -> mean over
T (an optional second distillation head, averaged with the first in eval mode). Downsampling
is ``LIF -> conv -> BN``; total downsampling 16 (224 px -> 14 x 14 tokens).

Sizes (METHODS.md "Meta-SpikeFormer / SDT v2", counted from the release): 15M (64/128/256/360)
15.11M, 31M (96/192/384/480) 31.33M, 55M (128/256/512/640) 55.35M, 124M (192/384/768/960)
123.74M, at 1000 classes without the distillation head.
"""

from __future__ import annotations

import torch
from torch import nn

from ..encoding import direct_encode
from ..layers import Linear
from ..layers.sdsa import NeuronFactory, sdt_lif
from ..layers.sdt_blocks import ConvBlock, DownsampleV2, MetaBlock
from .registry import ModelInput, register_model

__all__ = ["MetaSpikeFormer"]


class MetaSpikeFormer(nn.Module):
    """SDT v2: ``[B, C, H, W]`` or ``[T, B, C, H, W]`` -> logits ``[B, num_classes]``.

    Args:
        widths: ``(e0, e1, e2, e3)``; num_classes; T: time steps for images (the release trains
            at T = 1 first, then fine-tunes at T = 4); in_channels.
        num_heads: attention heads (8); mlp_ratio: 4.
        depths: transformer blocks in stages 3 and 4 (``(6, 2)`` in every released size).
        distill: add the distillation head; training then returns ``(logits, distill_logits)``.
        fuse: fold RepConv and depthwise->pointwise pairs into single convs in eval mode, so
            every synaptic layer receives spikes (see :mod:`spikedrive.layers.sdsa`).
        neuron: factory ``neuron(v_threshold=...)`` (default LIF tau 2, detached hard reset).
        attn_scale: multiplies ``Q (Kᵀ V)`` (0.125 in the release). At 14 x 14 tokens the sums
            reach the attention neuron's threshold; on toy inputs (a few tokens, few channels a
            head) they do not, that neuron stays silent, and the BNs after it see a constant
            input whose zero variance multiplies gradients by ``1/sqrt(eps)`` each: raise it there.
        stem_stride: stride of the 7x7 stem (2 in the release: downsampling 16, 224 px -> 14 x 14
            tokens). 32 px images keep only 2 x 2 tokens at 2; 1 gives 4 x 4 (downsampling 8, as
            SDT v1 pools less on CIFAR) with the same parameters and 4x the stem's MACs.
    """

    def __init__(self, widths: tuple[int, int, int, int] = (64, 128, 256, 360), num_classes: int = 1000, T: int = 1,
                 in_channels: int = 3, num_heads: int = 8, mlp_ratio: int = 4, depths: tuple[int, int] = (6, 2),
                 distill: bool = False, fuse: bool = True, neuron: NeuronFactory | None = None,
                 attn_scale: float = 0.125, stem_stride: int = 2) -> None:
        super().__init__()
        if stem_stride not in (1, 2):
            raise ValueError(f"MetaSpikeFormer: stem_stride must be 1 or 2, got {stem_stride!r}")
        if len(widths) != 4 or any(int(w) < 2 for w in widths) or widths[0] % 2:
            raise ValueError(f"MetaSpikeFormer: widths must be 4 channel counts (e0 even), got {widths!r}")
        e0, e1, e2, e3 = widths
        self.T, self.in_channels = T, in_channels
        make = neuron or sdt_lif
        self.stage1 = nn.Sequential(
            DownsampleV2(in_channels, e0 // 2, 7, stem_stride, first=True, neuron=neuron),
            ConvBlock(e0 // 2, mlp_ratio, neuron, fuse),
            DownsampleV2(e0 // 2, e0, 3, 2, neuron=neuron),
            ConvBlock(e0, mlp_ratio, neuron, fuse),
        )
        self.stage2 = nn.Sequential(
            DownsampleV2(e0, e1, 3, 2, neuron=neuron),
            ConvBlock(e1, mlp_ratio, neuron, fuse), ConvBlock(e1, mlp_ratio, neuron, fuse),
        )
        self.stage3 = nn.Sequential(
            DownsampleV2(e1, e2, 3, 2, neuron=neuron),
            *[MetaBlock(e2, num_heads, mlp_ratio, neuron, fuse, attn_scale) for _ in range(depths[0])],
        )
        self.stage4 = nn.Sequential(
            DownsampleV2(e2, e3, 3, 1, neuron=neuron),
            *[MetaBlock(e3, num_heads, mlp_ratio, neuron, fuse, attn_scale) for _ in range(depths[1])],
        )
        self.head_lif = make()
        self.head = Linear(e3, num_classes)
        self.head_distill = Linear(e3, num_classes) if distill else None
        for m in self.modules():
            # The release: truncated normal (std 0.02) linear layers with zero bias.
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``[B, C, H, W]`` or ``[T, B, C, H, W]`` -> logits ``[B, num_classes]`` (a pair with the
        distillation head while training)."""
        if x.dim() not in (4, 5) or x.shape[-3] != self.in_channels:
            raise ValueError(f"{type(self).__name__}: expected [B, {self.in_channels}, H, W] or [T, B, "
                             f"{self.in_channels}, H, W], got shape {tuple(x.shape)}")
        if x.dim() == 4:
            x = direct_encode(x, self.T)
        x = self.stage4(self.stage3(self.stage2(self.stage1(x))))
        s = self.head_lif(x.flatten(3).mean(-1))  # [T, B, e3] spikes
        logits = self.head(s).mean(0)
        if self.head_distill is None:
            return logits
        distill = self.head_distill(s).mean(0)
        return (logits, distill) if self.training else (logits + distill) / 2


_IMAGENET = ModelInput("imagenet", {"img_size": 224})


@register_model(default_input=_IMAGENET)
def sdt_v2_15m(num_classes: int = 1000, T: int = 1, **kwargs) -> MetaSpikeFormer:
    """Meta-SpikeFormer 15M (widths 64/128/256/360): 15.1M parameters."""
    return MetaSpikeFormer((64, 128, 256, 360), num_classes, T, **kwargs)


@register_model(default_input=_IMAGENET)
def sdt_v2_31m(num_classes: int = 1000, T: int = 1, **kwargs) -> MetaSpikeFormer:
    """Meta-SpikeFormer 31M (the release's metaspikformer_8_384, 96/192/384/480): 31.3M parameters."""
    return MetaSpikeFormer((96, 192, 384, 480), num_classes, T, **kwargs)


@register_model(default_input=_IMAGENET)
def sdt_v2_55m(num_classes: int = 1000, T: int = 1, **kwargs) -> MetaSpikeFormer:
    """Meta-SpikeFormer 55M (metaspikformer_8_512, 128/256/512/640): 55.4M parameters, 80.0%
    ImageNet top-1 at T = 4 with distillation (paper)."""
    return MetaSpikeFormer((128, 256, 512, 640), num_classes, T, **kwargs)


@register_model(default_input=_IMAGENET)
def sdt_v2_124m(num_classes: int = 1000, T: int = 1, **kwargs) -> MetaSpikeFormer:
    """Meta-SpikeFormer 124M (metaspikformer_8_768, 192/384/768/960): 123.74M parameters."""
    return MetaSpikeFormer((192, 384, 768, 960), num_classes, T, **kwargs)


@register_model(default_input=ModelInput("cifar10", {"img_size": 32}))
def sdt_v2_tiny(num_classes: int = 10, T: int = 2, **kwargs) -> MetaSpikeFormer:
    """A CPU-sized Meta-SpikeFormer (widths 16/32/64/64, one transformer block per stage) for
    tests and the small recipes (not a paper model)."""
    kwargs.setdefault("depths", (1, 1))
    return MetaSpikeFormer(kwargs.pop("widths", (16, 32, 64, 64)), num_classes, T, **kwargs)
