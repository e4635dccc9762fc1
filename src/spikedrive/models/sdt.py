"""Spike-Driven Transformer (v1; Yao et al., NeurIPS 2023).

``SPS stem -> L x (SDSA + MLP, membrane shortcuts) -> head``. Head [code]: mean of the membrane
over tokens ``-> LIF -> linear -> mean over T`` (the release pools before the neuron, so the
classifier receives spikes; the paper draws the neuron first). Images ``[B, C, H, W]`` are
direct-encoded (repeated ``T`` times; the first SPS conv is the encoding layer); sequences
``[T, B, C, H, W]`` (event frames) are taken as they are.

Sizes (``layers-dim``), parameters as in the paper's tables (METHODS.md "Spike-Driven
Transformer v1"): 8-384 16.81M, 8-512 29.68M, 8-768 66.34M (ImageNet, 224 px, T = 4, SPS pools
four times: 14 x 14 tokens), CIFAR 2-512 10.28M (pools twice), DVS 2-256 2.57M (128 px
frames, pools three times, the release's DVS "erode" max-pools).
"""

from __future__ import annotations

import torch
from torch import nn

from ..encoding import direct_encode
from ..layers import Linear
from ..layers.sdsa import NeuronFactory, sdt_lif
from ..layers.sdt_blocks import SDTBlock, SpikingPatchSplitting
from .registry import ModelInput, register_model

__all__ = ["SpikeDrivenTransformer"]


class SpikeDrivenTransformer(nn.Module):
    """SDT v1: ``[B, C, H, W]`` or ``[T, B, C, H, W]`` -> logits ``[B, num_classes]``.

    Args:
        depth: encoder blocks ``L``; dim: embedding width ``D``; num_heads: heads (8).
        num_classes; T: time steps for images (sequences bring their own).
        in_channels: 3 for images, 2 for event polarities.
        pooling: SPS pooling stages (``"1111"`` ImageNet, ``"0011"`` CIFAR, ``"0111"`` DVS 128 px).
        mlp_ratio: MLP hidden width over ``D`` (4).
        variant: SDSA form, ``"code"`` (release) or ``"paper"``; erode: the release's DVS max-pools.
        neuron: factory ``neuron(v_threshold=...)`` (default LIF tau 2, detached hard reset).
        mark_encoding: mark the first SPS conv as the encoding layer; ``False`` for event frames
            (see :class:`~spikedrive.layers.sdt_blocks.SpikingPatchSplitting`).
    """

    def __init__(self, depth: int = 8, dim: int = 384, num_classes: int = 1000, T: int = 4, num_heads: int = 8,
                 in_channels: int = 3, pooling: str = "1111", mlp_ratio: float = 4.0, variant: str = "code",
                 erode: bool = False, neuron: NeuronFactory | None = None, mark_encoding: bool = True) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"SpikeDrivenTransformer: depth must be >= 1, got {depth}")
        self.T, self.in_channels = T, in_channels
        make = neuron or sdt_lif
        self.stem = SpikingPatchSplitting(in_channels, dim, pooling, neuron, mark_encoding)
        self.blocks = nn.ModuleList([SDTBlock(dim, num_heads, mlp_ratio, variant, erode, neuron) for _ in range(depth)])
        self.head_lif = make()
        self.head = Linear(dim, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # The release: truncated normal (std 0.02) for every conv, its 1x1 convs included (our
        # linear layers over tokens), zero biases; the classifier keeps PyTorch's default.
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)) and m is not self.head.module:
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` or ``[T, B, C, H, W]`` -> logits ``[B, num_classes]``."""
        if x.dim() not in (4, 5) or x.shape[-3] != self.in_channels:
            raise ValueError(f"{type(self).__name__}: expected [B, {self.in_channels}, H, W] or [T, B, "
                             f"{self.in_channels}, H, W], got shape {tuple(x.shape)}")
        if x.dim() == 4:
            x = direct_encode(x, self.T)
        u = self.stem(x)  # [T, B, D, h, w], channels-last memory
        hw = (u.shape[-2], u.shape[-1])
        x = u.permute(0, 1, 3, 4, 2).flatten(2, 3)  # tokens [T, B, N, D] (a view of that memory)
        for block in self.blocks:
            x = block(x, hw)
        x = self.head_lif(x.mean(2))  # [T, B, D] spikes
        return self.head(x).mean(0)


_IMAGENET = ModelInput("imagenet", {"img_size": 224})
_CIFAR = ModelInput("cifar10", {"img_size": 32})
_GESTURE = ModelInput("gesture", {"T": 16, "binarize": True, "frame_size": 128})


@register_model(default_input=_IMAGENET)
def sdt_8_384(num_classes: int = 1000, T: int = 4, **kwargs) -> SpikeDrivenTransformer:
    """SDT 8-384: 16.81M parameters, 72.28% ImageNet top-1 at T = 4 (paper)."""
    return SpikeDrivenTransformer(8, 384, num_classes, T, **kwargs)


@register_model(default_input=_IMAGENET)
def sdt_8_512(num_classes: int = 1000, T: int = 4, **kwargs) -> SpikeDrivenTransformer:
    """SDT 8-512: 29.68M parameters, 74.57% ImageNet top-1 (paper)."""
    return SpikeDrivenTransformer(8, 512, num_classes, T, **kwargs)


@register_model(default_input=_IMAGENET)
def sdt_8_768(num_classes: int = 1000, T: int = 4, **kwargs) -> SpikeDrivenTransformer:
    """SDT 8-768: 66.34M parameters, 76.32% ImageNet top-1 at 224 px, 77.07% at 288 px (paper)."""
    return SpikeDrivenTransformer(8, 768, num_classes, T, **kwargs)


@register_model(default_input=_CIFAR)
def sdt_cifar_2_512(num_classes: int = 10, T: int = 4, **kwargs) -> SpikeDrivenTransformer:
    """SDT 2-512 for 32 px CIFAR (SPS pools twice: 8 x 8 tokens): 10.28M parameters, CIFAR-10
    95.6%, CIFAR-100 78.4% (paper)."""
    kwargs.setdefault("pooling", "0011")
    return SpikeDrivenTransformer(2, 512, num_classes, T, **kwargs)


@register_model(default_input=_GESTURE)
def sdt_dvs_2_256(num_classes: int = 11, T: int = 16, **kwargs) -> SpikeDrivenTransformer:
    """SDT 2-256 for 128 px event frames (2 polarities, SPS pools three times): 2.57M parameters,
    DVS128 Gesture 99.3%, CIFAR10-DVS 80.0% (paper)."""
    kwargs.setdefault("pooling", "0111")
    kwargs.setdefault("in_channels", 2)
    kwargs.setdefault("erode", True)
    kwargs.setdefault("mark_encoding", False)
    return SpikeDrivenTransformer(2, 256, num_classes, T, **kwargs)


@register_model(default_input=ModelInput("cifar10", {"img_size": 32}))
def sdt_tiny(num_classes: int = 10, T: int = 2, **kwargs) -> SpikeDrivenTransformer:
    """A CPU-sized SDT 1-64 for tests and the small recipes (not a paper model)."""
    kwargs.setdefault("pooling", "0011")
    return SpikeDrivenTransformer(kwargs.pop("depth", 1), kwargs.pop("dim", 64), num_classes, T, **kwargs)
