"""Small spiking CNNs for the embedded demos: 8x8 digits (frames) and N-Digits (event frames)."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..encoding import direct_encode
from ..layers import BatchNorm1d, BatchNorm2d, Conv2d, Linear, TimeDistributed
from ..neurons import ILIF, LIF, SpikingNeuron
from .registry import ModelInput, register_model

__all__ = ["SmallSpikingCNN"]


class SmallSpikingCNN(nn.Module):
    """Conv blocks and a two-layer classifier.

    Input ``[B, C, S, S]`` (direct-encoded over ``T``) or a sequence ``[T, B, C, S, S]`` →
    logits ``[B, num_classes]``, the mean over time of the last layer's output. Each block is
    conv3x3 + BN + neuron (+ max-pool 2 where ``pool_after``); the first conv is the encoding
    layer. Classifier: linear + BN + neuron, linear.

    Args:
        num_classes: output classes.
        T: time steps used when the input is a static ``[B, C, S, S]`` image.
        in_channels: input channels ``C`` (1 for grey images, 2 for event polarities).
        image_size: input side ``S`` in pixels.
        channels: width of each conv block.
        pool_after: per block, whether a 2x2 max-pool follows it.
        hidden: width of the hidden linear layer.
        neuron: zero-argument factory for every neuron (default ``LIF(tau=2, detach_reset=True)``).
        spiking_input: the input is already spikes (binary event frames), so the first conv is
            an ordinary accumulate-only synaptic layer, not a real-valued encoding layer.
    """

    def __init__(
        self,
        num_classes: int = 10,
        T: int = 4,
        in_channels: int = 1,
        image_size: int = 8,
        channels: tuple[int, ...] = (16, 32),
        pool_after: tuple[bool, ...] = (False, True),
        hidden: int = 128,
        neuron: Callable[[], SpikingNeuron] | None = None,
        spiking_input: bool = False,
    ) -> None:
        super().__init__()
        if len(pool_after) != len(channels):
            raise ValueError(f"SmallSpikingCNN: pool_after needs one flag per block ({len(channels)}), got {pool_after}")
        make = neuron or (lambda: LIF(tau=2.0, detach_reset=True))
        self.T, self.in_channels, self.image_size = T, in_channels, image_size
        self.spiking_input = spiking_input
        layers: list[nn.Module] = []
        size, c_in = image_size, in_channels
        for i, (c_out, pool) in enumerate(zip(channels, pool_after)):
            layers += [Conv2d(c_in, c_out, 3, encoding=i == 0 and not spiking_input), BatchNorm2d(c_out), make()]
            if pool:
                layers.append(TimeDistributed(nn.MaxPool2d(2)))
                size //= 2
            c_in = c_out
        layers.append(TimeDistributed(nn.Flatten()))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            Linear(c_in * size * size, hidden, bias=False), BatchNorm1d(hidden), make(),
            Linear(hidden, num_classes),
        )

    def example_input(self, batch_size: int = 2) -> torch.Tensor:
        """A batch of the input this model takes: binary event frames ``[T, B, C, S, S]`` with
        ``spiking_input``, else images ``[B, C, S, S]`` in ``[0, 1]`` (for tracing and checks)."""
        g = torch.Generator().manual_seed(0)
        if self.spiking_input:
            shape = (self.T, batch_size, self.in_channels, self.image_size, self.image_size)
            return (torch.rand(shape, generator=g) < 0.2).float()
        return torch.rand(batch_size, self.in_channels, self.image_size, self.image_size, generator=g)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, S, S]`` or ``[T, B, C, S, S]`` → logits ``[B, num_classes]``."""
        if x.dim() == 4:
            x = direct_encode(x, self.T)
        expected = (self.in_channels, self.image_size, self.image_size)
        if x.dim() != 5 or tuple(x.shape[2:]) != expected:
            raise ValueError(
                f"{type(self).__name__}: expected [B, {expected[0]}, {expected[1]}, {expected[2]}] or "
                f"[T, B, ...] of that image shape, got shape {tuple(x.shape)}"
            )
        return self.classifier(self.features(x)).mean(0)


@register_model(default_input=ModelInput("digits"))
def digits_snn(num_classes: int = 10, T: int = 4, **kwargs) -> SmallSpikingCNN:
    """The demo model for 8x8 digits: LIF neurons (tau 2, hard reset, detached reset), T = 4."""
    return SmallSpikingCNN(num_classes=num_classes, T=T, **kwargs)


@register_model(default_input=ModelInput("digits"))
def digits_ilif(num_classes: int = 10, T: int = 1, D: int = 4, **kwargs) -> SmallSpikingCNN:
    """The digits network with I-LIF neurons (D = 4); supports :func:`spikedrive.to_spike_driven`."""
    return SmallSpikingCNN(num_classes=num_classes, T=T, neuron=lambda: ILIF(D=D), **kwargs)


@register_model(default_input=ModelInput("ndigits"))
def ndigits_snn(num_classes: int = 10, T: int = 8, **kwargs) -> SmallSpikingCNN:
    """For N-Digits / N-MNIST binary event frames ``[T, B, 2, 34, 34]``: three conv blocks, LIF
    neurons, every layer spike-driven (the input frames are spikes)."""
    kwargs.setdefault("spiking_input", True)
    kwargs.setdefault("in_channels", 2)
    kwargs.setdefault("image_size", 34)
    kwargs.setdefault("channels", (16, 32, 32))
    kwargs.setdefault("pool_after", (True, True, True))
    return SmallSpikingCNN(num_classes=num_classes, T=T, **kwargs)
