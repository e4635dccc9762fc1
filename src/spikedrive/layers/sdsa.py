"""Spike-driven self-attention: SDT v1's SDSA (two variants) and SDT v2's ``Q (Kᵀ V)`` attention.

Both take the *membrane* stream (v1: tokens ``[T, B, N, C]``; v2: maps ``[T, B, C, H, W]``) (real values: the residual sum of a
membrane-shortcut network) and return a real-valued branch of the same shape to be added to it.
Every synaptic layer inside receives spikes: a LIF on the input feeds the Q, K, V projections,
and each product of two spike tensors is a module from :mod:`.spike_products`, so the analysis
counts it and :func:`spikedrive.analysis.assert_spike_driven` checks its operands.

v1 (Yao et al., NeurIPS 2023) [code: ``module/ms_conv.py`` of BICLab/Spike-Driven-Transformer]:
``Q, K, V = LIF(BN(linear(LIF(x))))`` over tokens ``[T, B, N, C]``; per head (``C / heads``
channels each)

* ``variant="code"`` (the release): ``Q ⊙ SN(sum_tokens(K ⊙ V))``;
* ``variant="paper"`` (the paper's Eq.): ``SN(sum_channels(Q ⊙ K)) ⊙ V``;

with SN a LIF of threshold 0.5; then ``BN(linear)`` (with bias). Both are linear in tokens.
The release also builds an unused ``talking_heads`` Conv1d (heads x heads weights); it is left
out (64 parameters per block for 8 heads; the parameter counts here match the paper without it).

v2 (Yao et al., ICLR 2024) [code: ``classification/models.py`` of Spike-Driven-Transformer-V2]:
``Q, K, V = LIF(BN(RepConv(LIF(x))))``; ``LIF_0.5(Q (Kᵀ V) * 0.125)``; ``BN(RepConv(.))``.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..neurons import LIF, SpikingNeuron
from .folding import FusedConv, fold_pw_dw_pw, pad_with_bn_zero
from .cpu_kernels import batch_norm_rows
from .readout import MaxPool2d
from .spike_products import SpikeLinearAttention, SpikeProduct
from .time_distributed import BatchNorm2d, Linear

__all__ = ["sdt_lif", "BatchNormLast", "SpikeDrivenSelfAttention", "RepConv", "SpikeDrivenAttentionV2"]

NeuronFactory = Callable[..., SpikingNeuron]


def sdt_lif(v_threshold: float = 1.0) -> LIF:
    """SDT's neuron [code]: LIF ``tau = 2`` (input scaled by ``1/tau``), hard reset to 0,
    detached reset, sigmoid surrogate ``alpha = 4``; the fused kernel where one is available."""
    return LIF(tau=2.0, v_threshold=v_threshold, v_reset=0.0, decay_input=True, detach_reset=True)


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``[T, B, C, H, W] -> [T, B, heads, N, C / heads]`` (tokens ``N = H W``)."""
    t, b, c, h, w = x.shape
    return x.reshape(t, b, heads, c // heads, h * w).transpose(-1, -2)


def _merge(x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """``[T, B, heads, N, d] -> [T, B, heads * d, H, W]`` (inverse of :func:`_heads`)."""
    t, b, heads, n, d = x.shape
    return x.transpose(-1, -2).reshape(t, b, heads * d, *hw)


def _check_heads(dim: int, heads: int, who: str) -> None:
    if heads < 1 or dim % heads:
        raise ValueError(f"{who}: dim must be divisible by num_heads, got dim={dim}, num_heads={heads}")


class BatchNormLast(nn.Module):
    """Batch norm over the last dim of ``[T, B, ..., C]`` (tokens ``[T, B, N, C]``), statistics
    shared across time and tokens: one ``nn.BatchNorm1d`` call on ``[T * B * ..., C]``, no copy."""

    def __init__(self, num_features: int, **kwargs) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(num_features, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[..., C] -> [..., C]``."""
        rows = x.reshape(-1, x.shape[-1])
        return batch_norm_rows(self.bn, rows).view(x.shape)


class SpikeDrivenSelfAttention(nn.Module):
    """SDT v1's SDSA over tokens: membrane ``[T, B, N, C]`` -> branch ``[T, B, N, C]``.

    Token-major (channels last), so Q, K, V and the output projection are linear layers over
    ``[T * B * N, C]`` (the release's 1x1 convs, the same weights) and the code variant needs no
    head reshapes at all: ``sum_N(K ⊙ V)`` is per channel, and heads group channels.

    Args:
        dim: channels ``C``; num_heads: heads (``C`` divisible by it).
        variant: ``"code"`` (``Q ⊙ SN(sum_N(K ⊙ V))``, the release) or ``"paper"``
            (``SN(sum_C(Q ⊙ K)) ⊙ V``, channel sums within each head); see the module docs.
        attn_threshold: threshold of SN (0.5 in the release).
        erode: DVS mode of the release: a 3x3 spatial max-pool (stride 1) on K, V and the
            attention output, which keeps spikes binary (needs ``hw`` in :meth:`forward`). The
            release also pools ``K ⊙ V`` over its (token, channel) axes before the sum; that quirk
            is not reproduced.
        neuron: factory ``neuron(v_threshold=...)`` (default :func:`sdt_lif`).
    """

    def __init__(self, dim: int, num_heads: int = 8, variant: str = "code", attn_threshold: float = 0.5,
                 erode: bool = False, neuron: NeuronFactory | None = None) -> None:
        super().__init__()
        _check_heads(dim, num_heads, type(self).__name__)
        if variant not in ("code", "paper"):
            raise ValueError(f"SpikeDrivenSelfAttention: variant must be 'code' or 'paper', got {variant!r}")
        make = neuron or sdt_lif
        self.num_heads, self.variant = num_heads, variant
        self.input_lif = make()
        self.q = nn.Sequential(Linear(dim, dim, bias=False), BatchNormLast(dim), make())
        self.k = nn.Sequential(Linear(dim, dim, bias=False), BatchNormLast(dim), make())
        self.v = nn.Sequential(Linear(dim, dim, bias=False), BatchNormLast(dim), make())
        self.first_product = SpikeProduct()
        self.attn_lif = make(v_threshold=attn_threshold)
        self.second_product = SpikeProduct()
        self.erode = MaxPool2d(3, 1, 1) if erode else None
        self.proj = nn.Sequential(Linear(dim, dim, bias=True), BatchNormLast(dim))

    def _pool(self, x: torch.Tensor, hw: tuple[int, int] | None) -> torch.Tensor:
        if self.erode is None:
            return x
        if hw is None or hw[0] * hw[1] != x.shape[2]:
            raise ValueError(f"SpikeDrivenSelfAttention(erode=True): hw must give the token grid (H, W) with "
                             f"H * W = {x.shape[2]} tokens, got {hw!r}")
        t, b, n, c = x.shape
        grid = x.transpose(2, 3).reshape(t, b, c, *hw)
        return self.erode(grid).flatten(3).transpose(2, 3)

    def forward(self, x: torch.Tensor, hw: tuple[int, int] | None = None) -> torch.Tensor:
        """Membrane ``[T, B, N, C]`` -> attention branch ``[T, B, N, C]`` (real); ``hw``: the
        token grid, needed only with ``erode``."""
        if x.dim() != 4:
            raise ValueError(f"SpikeDrivenSelfAttention: expected tokens [T, B, N, C], got shape {tuple(x.shape)}")
        s = self.input_lif(x)
        q, k, v = self.q(s), self._pool(self.k(s), hw), self._pool(self.v(s), hw)
        if self.variant == "code":
            kv = self.first_product(k, v).sum(dim=2, keepdim=True)  # [T, B, 1, C]: column sums over tokens
            out = self.second_product(q, self.attn_lif(kv))
        else:
            t, b, n, c = q.shape
            qk = self.first_product(q, k).view(t, b, n, self.num_heads, -1).sum(-1, keepdim=True)  # [T, B, N, h, 1]
            out = self.second_product(self.attn_lif(qk), v.view(t, b, n, self.num_heads, -1)).view(t, b, n, c)
        return self.proj(self._pool(out, hw))


class RepConv(nn.Module):
    """SDT v2's re-parameterisable conv, ``[T, B, C_in, H, W]`` spikes -> ``[T, B, C_out, H, W]``.

    Training (and ``fuse=False``): ``1x1 (C_in -> C_in) -> BN`` padded by one pixel with the
    value BN gives a zero input (so the branch equals zero-padding the input) ``-> 3x3
    depthwise (no padding) -> 1x1 (C_in -> C_out) -> BN`` [code]. The inner layers then see
    real values, so in eval mode the branch — all linear — is folded into one 3x3 conv with bias
    (exact, recomputed on every eval call from the current weights and BN statistics) that
    receives the spikes directly: the spike-driven form the name promises. The energy model
    charges that fused conv (``9 C_in C_out`` per output), as an accelerator running the fused
    network would execute it.
    """

    def __init__(self, c_in: int, c_out: int, fuse: bool = True) -> None:
        super().__init__()
        self.pw1 = nn.Conv2d(c_in, c_in, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_in)
        self.dw = nn.Conv2d(c_in, c_in, 3, groups=c_in, bias=False)
        self.pw2 = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.fuse = fuse
        self.fused = FusedConv(c_in, c_out, 3, bias=True)

    def fused_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The single 3x3 conv (weight ``[C_out, C_in, 3, 3]``, bias ``[C_out]``) equal to the
        branch with eval-mode BN statistics."""
        return fold_pw_dw_pw(self.pw1.weight[:, :, 0, 0], self.bn1, self.dw.weight[:, 0],
                             self.pw2.weight[:, :, 0, 0], self.bn2)

    def _branch(self, x: torch.Tensor) -> torch.Tensor:
        """The unfused branch on ``[N, C_in, H, W]``."""
        # The release fills the border with BN's image of zero from the running statistics,
        # detached, also while training [code: BNAndPadLayer].
        y = pad_with_bn_zero(self.bn1(self.pw1(x)), self.bn1)
        return self.bn2(self.pw2(self.dw(y)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Spikes ``[T, B, C_in, H, W]`` -> ``[T, B, C_out, H, W]``."""
        if self.fuse and not self.training:
            weight, bias = self.fused_weight()
            self.fused.module.weight, self.fused.module.bias = weight, bias
            return self.fused(x)
        t, b = x.shape[:2]
        return self._branch(x.flatten(0, 1)).unflatten(0, (t, b))


class SpikeDrivenAttentionV2(nn.Module):
    """SDT v2's spike-driven attention over ``[T, B, C, H, W]`` membrane input -> branch.

    ``S = LIF(x)``; ``Q, K, V = LIF(BN(RepConv(S)))``; per head ``LIF_0.5(Q (Kᵀ V) * scale)``
    (one :class:`SpikeLinearAttention`); ``BN(RepConv(.))`` [code].

    Args:
        dim: channels; num_heads: heads (8 in every released size); scale: 0.125 [code].
        attn_threshold: threshold of the attention-output LIF (0.5 [code]).
        neuron: factory ``neuron(v_threshold=...)`` (default :func:`sdt_lif`).
        fuse: fold each RepConv into one 3x3 conv in eval mode (see :class:`RepConv`).
    """

    def __init__(self, dim: int, num_heads: int = 8, scale: float = 0.125, attn_threshold: float = 0.5,
                 neuron: NeuronFactory | None = None, fuse: bool = True) -> None:
        super().__init__()
        _check_heads(dim, num_heads, type(self).__name__)
        make = neuron or sdt_lif
        self.num_heads = num_heads
        self.input_lif = make()
        # The release stacks a BN after RepConv's own final BN; kept for parameter parity.
        self.q = nn.Sequential(RepConv(dim, dim, fuse), BatchNorm2d(dim), make())
        self.k = nn.Sequential(RepConv(dim, dim, fuse), BatchNorm2d(dim), make())
        self.v = nn.Sequential(RepConv(dim, dim, fuse), BatchNorm2d(dim), make())
        self.attention = SpikeLinearAttention(scale)
        self.attn_lif = make(v_threshold=attn_threshold)
        self.proj = nn.Sequential(RepConv(dim, dim, fuse), BatchNorm2d(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Membrane ``[T, B, C, H, W]`` -> attention branch ``[T, B, C, H, W]`` (real)."""
        hw = (x.shape[-2], x.shape[-1])
        s = self.input_lif(x)
        q, k, v = (_heads(f(s), self.num_heads) for f in (self.q, self.k, self.v))
        out = self.attention(q, k, v)  # [T, B, h, N, d]
        return self.proj(self.attn_lif(_merge(out, hw)))
