"""ASA-SNN's advance spatial attention (Yao et al., ICCV 2023), with the release's quirks fixed.

On ``X [T, B, C, H, W]`` after conv -> BN (-> pool), before the neuron:

1. ``F = 0.5 (avg_{H,W} X + max_{H,W} X) + a avg + b max``, ``[T, B, C]`` (``a``, ``b`` learnable
   scalars, init 0.5).
2. Score ``M`` = a bias-free MLP along T for each (sample, channel), ``T -> T/r -> T``, no sigmoid.
3. Split, ``K_c = int(split C)``, ``K_t = int(split T)``: ``mask_c`` marks each (t, b)'s top-K_c
   channels, ``mask_t`` each (b, c)'s top-K_t steps; important ``I = mask_c XOR mask_t`` (as
   released; ``combine="and"`` / ``"or"`` are offered), sub-important ``1 - I``.
4. Two spatial attentions with their own 3x3 convolutions (``2 -> 1``, no bias):
   ``A_1 = sigmoid(conv([mean_C(I X) / split; max_C(I X)]))``, ``A_2`` likewise on ``(1 - I) X``
   with ``1 - split``; ``Y = A_1 (I X) + A_2 ((1 - I) X)``.

Quirks of the release, fixed here (METHODS.md asks for both):

* **Batch-wide mask.** The release takes the union of top-k sets over the batch, so one
  sample's choice leaks into another's. Here every mask is computed per sample.
* **No gradient through top-k.** The release's hard mask gives the scoring MLP (and ``a``,
  ``b``) no gradient, so the scores never learn. Here the mask is a straight-through gate:
  ``I_st = I + g - stop_grad(g)`` with ``g = sigmoid(M)``. The forward value is exactly the
  hard mask ``I`` (outputs equal the released computation's, per sample), and the backward
  pass sends ``dL/dI`` to the scores through ``sigmoid'(M)``.

``a``, ``b`` are scales with no synaptic work (``nonsynaptic_weights = True``); the MLP and the
convolutions are plain real-valued layers the energy model counts as MACs.
"""

from __future__ import annotations

import torch
from torch import nn

from .md_attention import _mlp
from .temporal_attention import _positive_int, check_time_major

__all__ = ["AdvanceSpatialAttention"]

_COMBINE = ("xor", "and", "or")


def _top_k_mask(score: torch.Tensor, k: int, dim: int) -> torch.Tensor:
    """0/1 mask of the ``k`` largest entries of ``score`` along ``dim`` (all zeros for ``k = 0``)."""
    mask = torch.zeros_like(score)
    if k > 0:
        mask.scatter_(dim, score.topk(k, dim=dim).indices, 1.0)
    return mask


class AdvanceSpatialAttention(nn.Module):
    """``[T, B, C, H, W] -> [T, B, C, H, W]``: important / sub-important split, two spatial
    attentions (see the module docs for the fixed quirks).

    Args:
        T: time steps; C: channels.
        reduction: ratio of the scoring MLP along T (the paper: 1, 4 or 8).
        split: ``lambda`` in ``(0, 1)``, the fraction of channels and of steps taken as top-k.
        kernel_size: odd side of the two spatial convolutions.
        combine: how ``mask_c`` and ``mask_t`` make the important set: ``"xor"`` (released),
            ``"and"`` or ``"or"``.
    """

    nonsynaptic_weights = True  # a, b: scalar mixing weights, no synaptic work

    def __init__(self, T: int, C: int, reduction: int = 4, split: float = 0.5, kernel_size: int = 3,
                 combine: str = "xor") -> None:
        super().__init__()
        who = type(self).__name__
        self.T, self.C = _positive_int(T, who, "T"), _positive_int(C, who, "C")
        _positive_int(reduction, who, "reduction")
        if not 0.0 < float(split) < 1.0:
            raise ValueError(f"{who}: split must be in (0, 1) (the important fraction lambda), got {split!r}")
        if _positive_int(kernel_size, who, "kernel_size") % 2 == 0:
            raise ValueError(f"{who}: kernel_size must be odd (same-size output), got {kernel_size}")
        if combine not in _COMBINE:
            raise ValueError(f"{who}: combine must be one of {_COMBINE}, got {combine!r}")
        self.split, self.combine = float(split), combine
        self.k_c, self.k_t = int(self.split * C), int(self.split * T)
        self.score_mlp = _mlp(T, reduction)
        self.a = nn.Parameter(torch.tensor(0.5))
        self.b = nn.Parameter(torch.tensor(0.5))
        self.important_conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.sub_conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``M`` ``[T, B, C]`` of ``x`` ``[T, B, C, H, W]``."""
        avg, mx = x.mean(dim=(3, 4)), x.amax(dim=(3, 4))
        f = 0.5 * (avg + mx) + self.a * avg + self.b * mx  # [T, B, C]
        t, b, c = f.shape
        m = self.score_mlp(f.permute(1, 2, 0).reshape(b * c, t))  # one MLP along T per (b, c)
        return m.reshape(b, c, t).permute(2, 0, 1)

    def important_mask(self, m: torch.Tensor) -> torch.Tensor:
        """Hard 0/1 important set ``[T, B, C]`` of the scores ``m``, per sample."""
        mask_c = _top_k_mask(m, self.k_c, dim=2).bool()
        mask_t = _top_k_mask(m, self.k_t, dim=0).bool()
        if self.combine == "xor":
            mask = mask_c ^ mask_t
        elif self.combine == "and":
            mask = mask_c & mask_t
        else:
            mask = mask_c | mask_t
        return mask.to(m.dtype)

    @staticmethod
    def _spatial(conv: nn.Conv2d, x: torch.Tensor, scale: float) -> torch.Tensor:
        flat = x.flatten(0, 1)  # [T*B, C, H, W]
        pooled = torch.cat([flat.mean(1, keepdim=True) / scale, flat.amax(1, keepdim=True)], dim=1)
        return torch.sigmoid(conv(pooled)).unflatten(0, x.shape[:2])  # [T, B, 1, H, W]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[T, B, C, H, W] -> [T, B, C, H, W]``."""
        who = type(self).__name__
        check_time_major(x, who, self.T)
        if x.dim() != 5 or x.shape[2] != self.C:
            raise ValueError(f"{who}: expected [T={self.T}, B, C={self.C}, H, W], got shape {tuple(x.shape)}")
        m = self.scores(x)
        gate = torch.sigmoid(m)
        important = self.important_mask(m.detach()) + gate - gate.detach()  # straight-through
        important = important[..., None, None]
        xi, xs = important * x, (1.0 - important) * x
        a1 = self._spatial(self.important_conv, xi, self.split)
        a2 = self._spatial(self.sub_conv, xs, 1.0 - self.split)
        return a1 * xi + a2 * xs

    def extra_repr(self) -> str:
        return f"T={self.T}, C={self.C}, split={self.split:g}, k_c={self.k_c}, k_t={self.k_t}, combine={self.combine!r}"
