"""Small spiking CNNs for the embedded 8x8 digits demo (and I-LIF's spike-driven check)."""

from __future__ import annotations

import torch
from torch import nn

from ..encoding import direct_encode
from ..layers import BatchNorm1d, BatchNorm2d, Conv2d, Linear, TimeDistributed
from ..neurons import ILIF, LIF
from .registry import register_model

__all__ = ["DigitsSNN"]


class DigitsSNN(nn.Module):
    """Two conv blocks and a classifier for ``1 x 8 x 8`` images.

    ``[B, 1, 8, 8]`` (direct-encoded over ``T``) or ``[T, B, 1, 8, 8]`` → logits ``[B, classes]``,
    the mean over time of the classifier's output. Layout: conv3x3(1→c1)+BN (encoding) → neuron →
    conv3x3(c1→c2)+BN → neuron → maxpool 2 → linear(c2·16→hidden)+BN → neuron → linear(→classes).

    Args:
        num_classes: output classes.
        T: time steps of the direct encoding.
        channels: widths ``(c1, c2)``.
        hidden: width of the hidden linear layer.
        neuron: a zero-argument callable making a neuron (default: ``LIF`` with tau 2, detach reset).
    """

    def __init__(self, num_classes: int = 10, T: int = 4, channels: tuple[int, int] = (16, 32), hidden: int = 128,
                 neuron=None) -> None:
        super().__init__()
        make = neuron or (lambda: LIF(tau=2.0, detach_reset=True))
        c1, c2 = channels
        self.T = T
        self.features = nn.Sequential(
            Conv2d(1, c1, 3, encoding=True), BatchNorm2d(c1), make(),
            Conv2d(c1, c2, 3), BatchNorm2d(c2), make(),
            TimeDistributed(nn.MaxPool2d(2)), TimeDistributed(nn.Flatten()),
        )
        self.classifier = nn.Sequential(
            Linear(c2 * 16, hidden, bias=False), BatchNorm1d(hidden), make(),
            Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 1, 8, 8]`` or ``[T, B, 1, 8, 8]`` → logits ``[B, num_classes]``."""
        if x.dim() == 4:
            x = direct_encode(x, self.T)
        if x.dim() != 5:
            raise ValueError(f"DigitsSNN: expected [B, 1, 8, 8] or [T, B, 1, 8, 8], got shape {tuple(x.shape)}")
        return self.classifier(self.features(x)).mean(0)



@register_model
def digits_snn(num_classes: int = 10, T: int = 4, **kwargs) -> DigitsSNN:
    """The demo model: LIF neurons (tau 2, hard reset, detached reset), T = 4."""
    return DigitsSNN(num_classes=num_classes, T=T, **kwargs)


@register_model
def digits_ilif(num_classes: int = 10, T: int = 1, D: int = 4, **kwargs) -> DigitsSNN:
    """The demo network with I-LIF neurons (D = 4); supports :func:`spikedrive.to_spike_driven`."""
    return DigitsSNN(num_classes=num_classes, T=T, neuron=lambda: ILIF(D=D), **kwargs)
