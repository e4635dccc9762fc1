"""MA-SNN's multi-dimensional attention (Yao et al., TPAMI 2023): temporal -> channel -> spatial.

On ``X [T, B, C, H, W]`` after conv -> BN, before the neuron (as the authors' code computes it):

* temporal ``M_T = sigmoid(MLP_T(avg_{C,H,W} X) + MLP_T(max_{C,H,W} X))``, ``[B, T]``;
* channel ``M_C = sigmoid(MLP_C(avg_{T,H,W} X1) + MLP_C(max_{T,H,W} X1))``, ``[B, C]``;
* spatial ``M_S = sigmoid(conv_k([mean_{T,C} X2; max_{T,C} X2]))``, ``[B, 1, H, W]``;

``X1 = M_T X``, ``X2 = M_C X1``, ``Y = relu(M_S X2)`` (TCSA). The MLPs are bias-free
``n -> n / r -> n`` with a ReLU; one MLP serves both the average and the max branch. Any subset
(T, C, S, TC, TS, CS) is chosen with the flags. On ``[T, B, L]`` (FC layers) only the temporal
part applies, as in the paper. The squeeze / excite layers are plain ``nn.Linear`` / ``nn.Conv2d``
on real-valued pooled membrane input: the energy model counts them as MAC layers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .temporal_attention import _positive_int, check_time_major

__all__ = ["MultiDimensionalAttention"]


def _mlp(width: int, reduction: int) -> nn.Sequential:
    hidden = max(1, width // reduction)
    return nn.Sequential(nn.Linear(width, hidden, bias=False), nn.ReLU(), nn.Linear(hidden, width, bias=False))


class MultiDimensionalAttention(nn.Module):
    """Temporal, channel and spatial attention, ``[T, B, C, H, W] -> [T, B, C, H, W]`` (or
    ``[T, B, L] -> [T, B, L]`` with ``channel=spatial=False``).

    Args:
        T: time steps; C: channels.
        reduction_t, reduction_c: ratios of the temporal and channel MLPs (MA-SNN Gesture: 5, 8).
        kernel_size: odd side of the spatial convolution (``2 -> 1`` channels, no bias).
        temporal, channel, spatial: which attentions to apply, in that order.
        relu: apply the final ReLU of the authors' TCSA (``Y = relu(...)``); the residual
            networks turn it off so the branch added to the shortcut keeps its sign.
    """

    def __init__(self, T: int, C: int, reduction_t: int = 4, reduction_c: int = 8, kernel_size: int = 3,
                 temporal: bool = True, channel: bool = True, spatial: bool = True, relu: bool = True) -> None:
        super().__init__()
        who = type(self).__name__
        self.T, self.C = _positive_int(T, who, "T"), _positive_int(C, who, "C")
        _positive_int(reduction_t, who, "reduction_t")
        _positive_int(reduction_c, who, "reduction_c")
        if _positive_int(kernel_size, who, "kernel_size") % 2 == 0:
            raise ValueError(f"{who}: kernel_size must be odd (same-size output), got {kernel_size}")
        if not (temporal or channel or spatial):
            raise ValueError(f"{who}: at least one of temporal, channel, spatial must be True")
        self.relu = relu
        self.temporal = _mlp(T, reduction_t) if temporal else None
        self.channel = _mlp(C, reduction_c) if channel else None
        self.spatial = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False) if spatial else None

    def temporal_weights(self, x: torch.Tensor) -> torch.Tensor:
        """``M_T`` ``[B, T]`` of ``x`` ``[T, B, ...]``."""
        assert self.temporal is not None
        flat = x.flatten(2)
        avg, mx = flat.mean(-1).transpose(0, 1), flat.amax(-1).transpose(0, 1)
        return torch.sigmoid(self.temporal(avg) + self.temporal(mx))

    def channel_weights(self, x: torch.Tensor) -> torch.Tensor:
        """``M_C`` ``[B, C]`` of ``x`` ``[T, B, C, H, W]``."""
        assert self.channel is not None
        avg, mx = x.mean(dim=(0, 3, 4)), x.amax(dim=(0, 3, 4))
        return torch.sigmoid(self.channel(avg) + self.channel(mx))

    def spatial_weights(self, x: torch.Tensor) -> torch.Tensor:
        """``M_S`` ``[B, 1, H, W]`` of ``x`` ``[T, B, C, H, W]``."""
        assert self.spatial is not None
        pooled = torch.stack([x.mean(dim=(0, 2)), x.amax(dim=(0, 2))], dim=1)  # [B, 2, H, W]
        return torch.sigmoid(self.spatial(pooled))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the enabled attentions in order T -> C -> S (then the ReLU)."""
        who = type(self).__name__
        check_time_major(x, who, self.T if self.temporal is not None else None)
        if x.dim() != 5 and (self.channel is not None or self.spatial is not None):
            raise ValueError(f"{who}: channel and spatial attention need [T, B, C, H, W], got shape "
                             f"{tuple(x.shape)}; use channel=False, spatial=False on [T, B, L]")
        if x.dim() == 5 and x.shape[2] != self.C:
            raise ValueError(f"{who}: expected C = {self.C} channels in dim 2, got shape {tuple(x.shape)}")
        if self.temporal is not None:
            m = self.temporal_weights(x).transpose(0, 1)
            x = x * m.reshape(m.shape + (1,) * (x.dim() - 2))
        if self.channel is not None:
            x = x * self.channel_weights(x)[None, :, :, None, None]
        if self.spatial is not None:
            x = x * self.spatial_weights(x)[None]
        return F.relu(x) if self.relu else x

    def extra_repr(self) -> str:
        parts = [n for n, m in (("T", self.temporal), ("C", self.channel), ("S", self.spatial)) if m is not None]
        return f"T={self.T}, C={self.C}, attention={''.join(parts)}, relu={self.relu}"
