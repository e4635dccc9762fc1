"""TA-SNN, MA-SNN and ASA-SNN networks for event data (Gesture, CIFAR10-DVS, SHD) and the plain
SNN they are compared with.

One class, :class:`AttentionSNN`, builds them all: conv blocks ``conv3x3 -> BN -> avg-pool(p)
-> attention -> LIF`` and FC blocks ``linear -> BN -> attention -> LIF``, the attention being
none, TA (every layer), MA (TCSA in conv layers, temporal in FC layers, as the paper) or ASA
(conv layers only). Output: the mean over time of the last layer's spikes (the papers' readout,
``spike_output=True``) or of its pre-neuron input (a membrane readout).

Frame dropping (TA only): ``drop_threshold`` set on the *first* TA layer; in eval mode the
frames it scores below the threshold are removed, and every later layer runs on the kept frames
only (later TA layers score them with the skipped frames' squeeze taken as 0; see
:class:`~spikedrive.layers.TemporalAttention`). ``last_skipped`` / ``frames_skipped_fraction``
report what was skipped. The scoring layer's own convolution runs on all frames: a frame's score
needs its features.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..encoding import direct_encode
from ..layers import (
    AdvanceSpatialAttention, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten, Linear,
    MultiDimensionalAttention, TemporalAttention,
)
from ..neurons import LIF, Rectangle, SpikingNeuron
from .registry import ModelInput, register_model

__all__ = ["AttentionSNN", "ATTENTIONS"]

ATTENTIONS = ("none", "ta", "ma", "asa")


def _paper_neuron() -> SpikingNeuron:
    """TA-SNN / MA-SNN's LIF: ``H = 0.3 V + X``, V_th 0.3, reset to 0, rectangle surrogate."""
    return LIF.with_decay(0.3, 0.3, detach_reset=True, surrogate=Rectangle(0.5))


class _Block(nn.Module):
    """synapse -> BN (-> pool) (-> attention) (-> ReLU) -> neuron, threading kept-frame indices."""

    def __init__(self, synapse: nn.Module, norm: nn.Module, pool: nn.Module | None, attention: nn.Module | None,
                 neuron: SpikingNeuron, relu: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        self.synapse, self.norm, self.pool, self.attention, self.neuron = synapse, norm, pool, attention, neuron
        self.relu = relu
        self.dropout = Dropout(dropout) if dropout > 0 else None

    def forward(self, x: torch.Tensor, frames: torch.Tensor | None = None, current: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(x [T', B, ...], frames [T'] or None) -> (spikes [T'', B, ...], frames)``; with
        ``current`` the input current ``[T'', B, ...]`` the neuron would receive, in place of spikes."""
        x = self.norm(self.synapse(x))
        if self.pool is not None:
            x = self.pool(x)
        if isinstance(self.attention, TemporalAttention):
            x = self.attention(x, frames)
            frames = self.attention.last_kept if frames is not None or self.attention.last_skipped else frames
        elif self.attention is not None:
            x = self.attention(x)
        if self.relu:
            x = torch.relu(x)
        if current:
            return x, frames
        s = self.neuron(x)
        return (self.dropout(s) if self.dropout is not None else s), frames


class AttentionSNN(nn.Module):
    """Plain / TA / MA / ASA spiking network for event frames ``[T, B, C, S, S]`` (or images
    ``[B, C, S, S]``, direct-encoded) or sequences ``[T, B, L]`` (``image_size=None``) ->
    logits ``[B, num_classes]``.

    Args:
        num_classes; T: time steps (the attention MLPs are built for exactly ``T``).
        in_channels, image_size: input ``[C, S, S]``; ``image_size=None`` for ``[T, B, L]``
            input with ``L = in_channels``.
        channels, pools: conv blocks (3x3, padding 1) and their avg-pool sizes (1: none).
        hidden: widths of the hidden FC blocks; the last FC block maps to ``num_classes``.
        attention: ``"none" | "ta" | "ma" | "asa"``.
        reduction_t, reduction_c: TA / MA ratios; asa_reduction, asa_split: ASA's ``r`` and lambda.
        ma_dims: MA's attentions in conv layers, a subset of ``"TCS"``.
        dropout: dropout after each hidden FC block (one mask over time).
        spike_output: read out the last layer's spikes (papers) or its input current.
        spiking_input: the input is already spikes (the first layer is not an encoding layer).
        conv_bias: biased convolutions (the authors' code) or bias-free.
        drop_threshold: TA frame dropping at inference (``attention="ta"`` only).
        neuron: zero-argument neuron factory (default TA/MA-SNN's LIF, decay 0.3, V_th 0.3).
    """

    def __init__(self, num_classes: int = 11, T: int = 30, in_channels: int = 2, image_size: int | None = 32,
                 channels: tuple[int, ...] = (64, 128, 128), pools: tuple[int, ...] = (1, 2, 2),
                 hidden: tuple[int, ...] = (256,), attention: str = "ta", reduction_t: int = 16, reduction_c: int = 8,
                 asa_reduction: int = 4, asa_split: float = 0.5, ma_dims: str = "TCS", dropout: float = 0.0,
                 spike_output: bool = True, spiking_input: bool = True, conv_bias: bool = True,
                 drop_threshold: float | None = None, neuron: Callable[[], SpikingNeuron] | None = None) -> None:
        super().__init__()
        who = type(self).__name__
        if attention not in ATTENTIONS:
            raise ValueError(f"{who}: attention must be one of {ATTENTIONS}, got {attention!r}")
        if len(channels) != len(pools):
            raise ValueError(f"{who}: pools needs one size per conv block ({len(channels)}), got {pools}")
        if image_size is None and channels:
            raise ValueError(f"{who}: sequence input (image_size=None) takes no conv blocks, got channels={channels}")
        if drop_threshold is not None and attention != "ta":
            raise ValueError(f"{who}: drop_threshold needs attention='ta' (frame scores), got attention={attention!r}")
        if set(ma_dims) - set("TCS") or not ma_dims:
            raise ValueError(f"{who}: ma_dims must be a non-empty subset of 'TCS', got {ma_dims!r}")
        make = neuron or _paper_neuron
        self.T, self.in_channels, self.image_size = T, in_channels, image_size
        self.attention_kind, self.spike_output = attention, spike_output
        blocks: list[_Block] = []
        c_in, size = in_channels, image_size
        for i, (c_out, p) in enumerate(zip(channels, pools)):
            assert size is not None
            if p > size:
                raise ValueError(f"{who}: pool {p} at conv block {i} is larger than the image side {size} there")
            att: nn.Module | None = None
            if attention == "ta":
                att = TemporalAttention(T, reduction_t)
            elif attention == "ma":
                att = MultiDimensionalAttention(T, c_out, reduction_t, reduction_c, temporal="T" in ma_dims,
                                                channel="C" in ma_dims, spatial="S" in ma_dims)
            elif attention == "asa":
                att = AdvanceSpatialAttention(T, c_out, asa_reduction, asa_split)
            conv = Conv2d(c_in, c_out, 3, bias=conv_bias, encoding=i == 0 and not spiking_input)
            blocks.append(_Block(conv, BatchNorm2d(c_out), AvgPool2d(p) if p > 1 else None, att, make()))
            c_in, size = c_out, (size // p if p > 1 else size)
        self.conv_blocks = nn.ModuleList(blocks)
        self.flatten = Flatten()
        features = c_in * size * size if size is not None else c_in
        fc: list[_Block] = []
        widths = list(hidden) + [num_classes]
        for j, width in enumerate(widths):
            att = None
            if attention == "ta":
                att = TemporalAttention(T, reduction_t)
            elif attention == "ma":
                att = MultiDimensionalAttention(T, width, reduction_t, temporal=True, channel=False, spatial=False, relu=False)
            first = not channels and j == 0
            fc.append(_Block(Linear(features, width, encoding=first and not spiking_input), BatchNorm1d(width), None,
                             att, make(), relu=attention == "ma", dropout=dropout if j < len(hidden) else 0.0))
            features = width
        self.fc_blocks = nn.ModuleList(fc)
        first_ta = next((b.attention for b in [*blocks, *fc] if isinstance(b.attention, TemporalAttention)), None)
        self.first_ta: TemporalAttention | None = first_ta
        if drop_threshold is not None:
            assert first_ta is not None
            first_ta.drop_threshold = drop_threshold

    @property
    def last_skipped(self) -> int:
        """Frames the first TA layer skipped in the last call (0 without frame dropping)."""
        return self.first_ta.last_skipped if self.first_ta is not None else 0

    def set_drop_threshold(self, value: float | None) -> None:
        """Set (or clear, ``None``) frame dropping on the first TA layer; resets its counters."""
        if self.first_ta is None:
            raise ValueError(f"{type(self).__name__}: frame dropping needs attention='ta', this network has "
                             f"attention={self.attention_kind!r}")
        self.first_ta.drop_threshold = value
        self.first_ta.skipped_total = self.first_ta.frames_total = 0

    def frames_skipped_fraction(self) -> float:
        """Fraction of frames the first TA layer skipped since :meth:`set_drop_threshold`."""
        ta = self.first_ta
        return ta.skipped_total / ta.frames_total if ta is not None and ta.frames_total else 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[T, B, C, S, S]`` / ``[B, C, S, S]`` / ``[T, B, L]`` -> logits ``[B, num_classes]``."""
        who = type(self).__name__
        if self.image_size is not None:
            if x.dim() == 4:
                x = direct_encode(x, self.T)
            expected = (self.T, self.in_channels, self.image_size, self.image_size)
            if x.dim() != 5 or (x.shape[0], *x.shape[2:]) != expected:
                raise ValueError(f"{who}: expected [T={self.T}, B, {self.in_channels}, {self.image_size}, "
                                 f"{self.image_size}] (or [B, C, S, S]), got shape {tuple(x.shape)}")
        elif x.dim() != 3 or x.shape[0] != self.T or x.shape[2] != self.in_channels:
            raise ValueError(f"{who}: expected [T={self.T}, B, L={self.in_channels}], got shape {tuple(x.shape)}")
        frames: torch.Tensor | None = None
        for block in self.conv_blocks:
            x, frames = block(x, frames)
        x = self.flatten(x)
        *hidden, last = self.fc_blocks
        for block in hidden:
            x, frames = block(x, frames)
        x, frames = last(x, frames, current=not self.spike_output)
        return x.mean(0)


_GESTURE = ModelInput("gesture", {"T": 30, "binarize": True, "frame_size": 32})


@register_model(default_input=_GESTURE)
def snn_gesture(num_classes: int = 11, T: int = 30, **kwargs) -> AttentionSNN:
    """The plain LIF-SNN of TA-SNN's Gesture network (no attention): 64C3 -> 128C3-AP2 ->
    128C3-AP2 -> FC256 -> FC11 on 2x32x32 frames."""
    kwargs.setdefault("attention", "none")
    return AttentionSNN(num_classes, T, **kwargs)


@register_model(default_input=_GESTURE)
def tasnn_gesture(num_classes: int = 11, T: int = 30, **kwargs) -> AttentionSNN:
    """TA-SNN, DVS128 Gesture (ICCV 2021: 98.61%): TA in every layer, r = 16, T = 30."""
    kwargs.setdefault("attention", "ta")
    kwargs.setdefault("reduction_t", 16)
    return AttentionSNN(num_classes, T, **kwargs)


@register_model(default_input=ModelInput("cifar10dvs", {"T": 10, "binarize": True, "frame_size": 128}))
def tasnn_cifar10dvs(num_classes: int = 10, T: int = 10, **kwargs) -> AttentionSNN:
    """TA-SNN, CIFAR10-DVS (72.0%): 32C3-AP2 -> 64C3-AP2 -> 128C3-AP2 -> 256C3-AP2 -> 512C3-AP4
    -> FC256 -> FC10 on 2x128x128, r = 5, T = 10."""
    kwargs.setdefault("attention", "ta")
    kwargs.setdefault("reduction_t", 5)
    kwargs.setdefault("image_size", 128)
    kwargs.setdefault("channels", (32, 64, 128, 256, 512))
    kwargs.setdefault("pools", (2, 2, 2, 2, 4))
    return AttentionSNN(num_classes, T, **kwargs)


@register_model(default_input=ModelInput("shd", {"T": 10}))
def tasnn_shd(num_classes: int = 20, T: int = 10, **kwargs) -> AttentionSNN:
    """TA-SNN, SHD (91.08%): MLP 700-128-128-20 with TA (r = 5), dropout 0.5, on spike-count
    sequences ``[T, B, 700]`` (counts are not binary: the first layer is the encoding layer)."""
    kwargs.setdefault("attention", "ta")
    kwargs.setdefault("reduction_t", 5)
    kwargs.setdefault("in_channels", 700)
    kwargs.setdefault("image_size", None)
    kwargs.setdefault("channels", ())
    kwargs.setdefault("pools", ())
    kwargs.setdefault("hidden", (128, 128))
    kwargs.setdefault("dropout", 0.5)
    kwargs.setdefault("spiking_input", False)
    return AttentionSNN(num_classes, T, **kwargs)


@register_model(default_input=ModelInput("gesture", {"T": 60, "binarize": True, "frame_size": 32}))
def masnn_gesture(num_classes: int = 11, T: int = 60, **kwargs) -> AttentionSNN:
    """MA-SNN, DVS128 Gesture (TPAMI 2023): TCSA in conv layers, temporal attention + ReLU in FC
    layers, r_t = 5, r_c = 8, T = 60; the same 64C3 -> 128C3-AP2 -> 128C3-AP2 -> FC256 -> FC11
    network (as SpikingJelly 2.0's ``masnn_dvs128_gesture``)."""
    kwargs.setdefault("attention", "ma")
    kwargs.setdefault("reduction_t", 5)
    kwargs.setdefault("reduction_c", 8)
    return AttentionSNN(num_classes, T, **kwargs)


@register_model(default_input=ModelInput("gesture", {"T": 60, "binarize": True, "frame_size": 32}))
def asasnn_gesture(num_classes: int = 11, T: int = 60, **kwargs) -> AttentionSNN:
    """ASA-SNN, DVS128 Gesture (ICCV 2023: LIF-SNN 91.3% / NASFR 0.176 -> 95.2% / 0.038): ASA
    (r = 4, lambda = 0.5) in every conv layer of the same three-conv network (inferred: METHODS.md
    does not record ASA-SNN's Gesture layer list)."""
    kwargs.setdefault("attention", "asa")
    return AttentionSNN(num_classes, T, **kwargs)
