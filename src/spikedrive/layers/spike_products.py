"""Products of two spike tensors as modules, so hooks and the conversion see them.

Attention multiplies spikes by spikes (SDSA's ``Q ⊙ K``, spike-driven ``Q Kᵀ`` or ``Kᵀ V``). With
binary inputs such a product is an AND and its sums are accumulates. I-LIF's spike-driven form
feeds ``D`` binary virtual steps per time step; the product of the two integers ``a b`` is then
the sum over all ``D x D`` pairs of virtual steps ``sum_i sum_j a_i b_j`` — *not* the product of
matching steps (``sum_i a_i b_i = min(a, b)`` for thermometer codes). These modules compute the
pairs, and :func:`spikedrive.to_spike_driven` sets how many virtual steps each input carries.

:class:`SpikeLinearAttention` is SDT v2's ``Q (Kᵀ V)``: three spike operands in one module (the
intermediate ``Kᵀ V`` holds integers and feeds only the ``Q`` selection), binary LIF only.

All three declare ``spike_inputs = True`` (the spike-driven check requires binary inputs),
count their operations for the energy model (``count_sops``: products of two ones; ``count_macs``:
the dense products an ANN executes in one time step) and return real-time outputs ``[T, ...]``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["SpikeProduct", "SpikeMatmul", "SpikeLinearAttention"]


def _pairs(x: torch.Tensor, steps: int) -> torch.Tensor:
    """``[T * steps, ...] -> [T, steps, ...]`` (``steps = 1`` adds the pair dim)."""
    if steps == 1:
        return x.unsqueeze(1)
    if x.dim() < 1 or x.shape[0] % steps:
        raise ValueError(f"expected [T*{steps}, ...] virtual steps, got shape {tuple(x.shape)}")
    return x.unflatten(0, (x.shape[0] // steps, steps))


class _SpikePair(nn.Module):
    spike_inputs = True

    def __init__(self) -> None:
        super().__init__()
        #: Virtual steps per time step of each input, set by the spike-driven conversion.
        self.input_virtual_steps: tuple[int, int] = (1, 1)

    def _integers(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs with their virtual steps summed back: ``[T, ...]`` integers."""
        da, db = self.input_virtual_steps
        return _pairs(a, da).sum(1), _pairs(b, db).sum(1)

    def extra_repr(self) -> str:
        return f"input_virtual_steps={self.input_virtual_steps}"


class SpikeProduct(_SpikePair):
    """Elementwise product of two spike tensors ``a ⊙ b``, broadcasting as ``torch.mul``.

    ``a``: ``[T, B, ...]`` (or ``[T * Da, B, ...]`` binary virtual steps), ``b`` likewise;
    returns ``[T, B, ...]``, equal to the product of the integers the inputs encode.
    """

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``[T(*D), B, ...] x [T(*D), B, ...] -> [T, B, ...]``."""
        da, db = self.input_virtual_steps
        if da == db == 1:
            return a * b
        pa, pb = _pairs(a, da), _pairs(b, db)  # [T, Da, ...], [T, Db, ...]
        # Every pair (i, j) of virtual steps: [T, Da, Db, ...] summed over both pair dims.
        return (pa.unsqueeze(2) * pb.unsqueeze(1)).sum(dim=(1, 2))

    def count_sops(self, a: torch.Tensor, b: torch.Tensor) -> float:
        """Products of two ones executed: ``sum(a_int * b_int)`` over the call."""
        ia, ib = self._integers(a, b)
        return float((ia * ib).sum(dtype=torch.float64))

    def count_macs(self, a: torch.Tensor, b: torch.Tensor) -> float:
        """Dense products of one time step (the ANN's work): elements of one step of the output."""
        ia, ib = self._integers(a, b)
        return float(torch.broadcast_shapes(ia.shape, ib.shape)[1:].numel())


class SpikeMatmul(_SpikePair):
    """Matrix product of two spike tensors ``a @ b`` over their last two dims, as ``torch.matmul``.

    ``a``: ``[T, ..., N, K]``, ``b``: ``[T, ..., K, M]`` (time may carry ``D`` virtual steps);
    returns ``[T, ..., N, M]``, equal to the product of the integer matrices.
    """

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``[T(*D), ..., N, K] @ [T(*D), ..., K, M] -> [T, ..., N, M]``."""
        da, db = self.input_virtual_steps
        if da == db == 1:
            return a @ b
        pa, pb = _pairs(a, da), _pairs(b, db)
        return (pa.unsqueeze(2) @ pb.unsqueeze(1)).sum(dim=(1, 2))

    def count_sops(self, a: torch.Tensor, b: torch.Tensor) -> float:
        """Products of two ones: ``sum_{n,k,m} a_nk b_km = sum_k (sum_n a_nk)(sum_m b_km)``."""
        ia, ib = self._integers(a, b)
        return float((ia.sum(-2) * ib.sum(-1)).sum(dtype=torch.float64))

    def count_macs(self, a: torch.Tensor, b: torch.Tensor) -> float:
        """Dense multiply-accumulates of one time step: ``batch x N x K x M``."""
        ia, ib = self._integers(a, b)
        batch = torch.broadcast_shapes(ia.shape[1:-2], ib.shape[1:-2])
        return float(math.prod(batch) * ia.shape[-2] * ia.shape[-1] * ib.shape[-1])


class SpikeLinearAttention(nn.Module):
    """Spike-driven linear attention ``Q (Kᵀ V) * scale`` of three spike tensors (SDT v2).

    ``q, k, v``: binary ``[T, B, heads, N, d]``; returns ``[T, B, heads, N, d]`` real values (the
    integers ``Q (Kᵀ V)`` times ``scale``). ``Kᵀ V`` is taken first so the cost is linear in the
    tokens ``N``. ``Kᵀ V`` is a product of two spike tensors (ANDs summed over tokens); ``Q`` then
    selects and adds rows of that integer matrix, so every operation is an accumulate driven by a
    spike. The three operands are one module so the spike-driven check sees all of them binary
    (the intermediate ``Kᵀ V`` holds integers and is never fed to a synapse).

    There is no I-LIF virtual-step expansion here (SDT v2 uses binary LIF): the module has no
    ``input_virtual_steps``, so :func:`spikedrive.to_spike_driven` refuses it by name.

    Args:
        scale: multiplies the result (the authors' code uses 0.125 for every width).
    """

    spike_inputs = True

    def __init__(self, scale: float = 0.125) -> None:
        super().__init__()
        self.scale = float(scale)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``[T, B, h, N, d]`` x3 -> ``[T, B, h, N, d]``."""
        if not (q.dim() >= 2 and q.shape == k.shape == v.shape):
            raise ValueError(f"SpikeLinearAttention: q, k, v must share one shape [T, B, heads, N, d], got "
                             f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
        return (q @ (k.transpose(-2, -1) @ v)) * self.scale

    def count_sops(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> float:
        """Accumulates executed: ``Kᵀ V`` costs one per pair of ones sharing a token,
        ``sum_n (sum_c k_nc)(sum_m v_nm)``; ``Q`` then adds a row of ``d`` integers per spike."""
        kv_ops = (k.sum(-1) * v.sum(-1)).sum(dtype=torch.float64)
        q_ops = q.sum(dtype=torch.float64) * q.shape[-1]
        return float(kv_ops + q_ops)

    def count_macs(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> float:
        """Dense multiply-accumulates of one time step: ``2 x batch x heads x N x d²``."""
        n, d = q.shape[-2], q.shape[-1]
        return float(2 * math.prod(q.shape[1:-2]) * n * d * d)

    def extra_repr(self) -> str:
        return f"scale={self.scale}"
