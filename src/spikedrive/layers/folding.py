"""Eval-mode batch norm as an affine map, and the fold of a ``1x1 -> BN -> depthwise -> 1x1 -> BN``
branch into one convolution (the re-parameterisable convs of SDT v2 and SpikeYOLO)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .time_distributed import Synapse, TimeDistributed

__all__ = ["bn_affine", "pad_with_bn_zero", "fold_pw_dw_pw", "FusedConv"]


def bn_affine(norm: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode batch norm (plain or time-distributed) as ``y = a x + b`` per channel: ``(a, b)``,
    each ``[C]``, from the running statistics."""
    m = norm.module if isinstance(norm, TimeDistributed) else norm
    a = m.weight / torch.sqrt(m.running_var + m.eps)
    return a, m.bias - m.running_mean * a


def pad_with_bn_zero(y: torch.Tensor, norm: nn.Module, pad: int = 1) -> torch.Tensor:
    """``y`` (``norm``'s output ``[..., C, H, W]``) padded by ``pad`` pixels, each channel's border
    filled with what ``norm`` maps 0 to (running statistics, detached, in training too, as the
    releases' BN-and-pad layers do): ``[..., C, H + 2 pad, W + 2 pad]``. A 0/1 border mask keeps
    the interior bit-exact (no ``y - fill + fill`` round trip)."""
    fill = bn_affine(norm)[1].detach().view(-1, 1, 1)
    border = F.pad(y.new_zeros(y.shape[-2:]), [pad] * 4, value=1.0)
    return F.pad(y, [pad] * 4) + border * fill


class FusedConv(Synapse):
    """A ``k x k`` (same-size) conv ``C_in -> C_out`` whose weight (and bias) are plain tensors set
    from the unfused layers on each eval call, so no parameter is counted twice."""

    def __init__(self, c_in: int, c_out: int, k: int, bias: bool) -> None:
        conv = nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=bias)
        del conv.weight, conv.bias
        conv.weight = torch.empty(c_out, c_in, k, k)  # type: ignore[assignment]
        conv.bias = torch.empty(c_out) if bias else None  # type: ignore[assignment]
        super().__init__(conv)


def fold_pw_dw_pw(w1: torch.Tensor, bn1: nn.Module, wd: torch.Tensor, w2: torch.Tensor,
                  bn2: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """The one ``k x k`` conv equal to ``1x1 (w1 [M, C]) -> BN1 -> depthwise (wd [M, k, k]) ->
    1x1 (w2 [O, M]) -> BN2`` in eval mode, the depthwise conv unpadded after BN1's image of zero
    was padded in: ``(weight [O, C, k, k], bias [O])``."""
    a1, b1 = bn_affine(bn1)
    a2, b2 = bn_affine(bn2)
    # out[o] = a2[o] * sum_m w2[o,m] * sum_k wd[m,k] * (a1[m] * (w1[m] . x_k) + b1[m]) + b2[o]
    weight = torch.einsum("om,mij,m,mc->ocij", w2, wd, a1, w1) * a2[:, None, None, None]
    bias = a2 * (w2 @ (b1 * wd.sum(dim=(1, 2)))) + b2
    return weight, bias
