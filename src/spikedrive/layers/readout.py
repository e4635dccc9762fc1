"""The pieces every spiking classifier writes by hand: time-distributed pooling and flatten,
dropout with one mask for all time steps, and a readout that averages over time."""

from __future__ import annotations

import torch
from torch import nn

from .cpu_kernels import MaxPool2dChannelsLast
from .time_distributed import TimeDistributed

__all__ = ["MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Flatten", "Dropout", "MeanOverTime"]


def MaxPool2d(kernel_size: int, stride: int | None = None, padding: int = 0) -> TimeDistributed:
    """Max-pooling of every time step: ``[T, B, C, H, W] -> [T, B, C, H', W']`` (commutes with
    I-LIF's expansion into virtual steps, so it may sit between I-LIF and a synapse)."""
    return TimeDistributed(MaxPool2dChannelsLast(kernel_size, stride, padding))


def AvgPool2d(kernel_size: int, stride: int | None = None, padding: int = 0) -> TimeDistributed:
    """Average pooling of every time step: ``[T, B, C, H, W] -> [T, B, C, H', W']``. Its output is
    not binary: the layer after it is not spike-driven (the spike-driven check says so)."""
    return TimeDistributed(nn.AvgPool2d(kernel_size, stride, padding))


def AdaptiveAvgPool2d(output_size: int | tuple[int, int]) -> TimeDistributed:
    """Adaptive average pooling of every time step: ``[T, B, C, H, W] -> [T, B, C, *output_size]``."""
    return TimeDistributed(nn.AdaptiveAvgPool2d(output_size))


class Flatten(nn.Module):
    """Flatten everything but time and batch: ``[T, B, *rest] -> [T, B, prod(rest)]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[T, B, ...] -> [T, B, F]``."""
        if x.dim() < 2:
            raise ValueError(f"Flatten: expected [T, B, ...], got shape {tuple(x.shape)}")
        return x.flatten(2) if x.dim() > 2 else x


class Dropout(nn.Module):
    """Dropout over ``[T, B, ...]`` with one mask per sample shared by every time step.

    A fresh mask per step would let a neuron's spikes through at some steps and not others,
    which is noise the membrane integrates rather than the dropping of a unit; sharing the mask
    over time drops the unit (the convention of SpikingJelly's ``layer.Dropout``). Identity in
    eval mode; kept units are scaled by ``1 / (1 - p)``.

    Args:
        p: probability of dropping a unit, in ``[0, 1)``.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[T, B, ...] -> [T, B, ...]``."""
        if not self.training or self.p == 0.0:
            return x
        if x.dim() < 2:
            raise ValueError(f"Dropout: expected [T, B, ...], got shape {tuple(x.shape)}")
        keep = torch.empty_like(x[:1]).bernoulli_(1.0 - self.p)
        return x * keep / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p:g}"


class MeanOverTime(nn.Module):
    """Readout: the mean over time of ``[T, B, ...]``, giving ``[B, ...]`` (e.g. logits)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[T, B, ...] -> [B, ...]``."""
        if x.dim() < 2:
            raise ValueError(f"MeanOverTime: expected [T, B, ...], got shape {tuple(x.shape)}")
        return x.mean(0)
