"""Autograd glue shared by every fused backend (the CPU operator and the Triton kernels).

A backend provides four functions with one signature each (the ``ops`` argument below):

* ``lif_forward(x, v_init, inv_tau, v_threshold, v_rest, hard_reset, decay_input, need_state)``
  ``-> (spikes, v_final)`` (``v_final`` may be empty when ``need_state`` is false)
* ``lif_backward(grad_spikes, grad_v, x, v_init, inv_tau, v_threshold, v_rest, hard_reset,``
  ``decay_input, detach_reset, surrogate_code, p0, p1, need_grad_inv_tau)``
  ``-> (grad_x, grad_v_init, grad_inv_tau)``
* ``ilif_forward(x, v_init, levels, beta, tau, tau_charge, need_state) -> (spikes, v_final)``
* ``ilif_backward(grad_spikes, grad_v, x, v_init, levels, beta, tau, tau_charge, detach_reset)``
  ``-> (grad_x, grad_v_init)``

``x`` is ``[T, ...]`` contiguous, ``v_init`` / ``v_final`` / ``grad_v`` have ``x[0]``'s number
of elements; ``v_init``, ``grad_spikes`` and ``grad_v`` may be ``None`` (rest, zeros, zeros), and
``grad_v_init`` need not be computed when ``v_init`` is ``None``. Forward saves only the input (which autograd holds anyway) and backward recomputes
the membrane in one pass, so no per-step graph is built.
"""

from __future__ import annotations

from typing import Any

import torch

from .._checks import require_steps
from ..surrogate import Atan, Rectangle, Sigmoid, StraightThrough, Surrogate

__all__ = ["surrogate_code", "lif_supported", "ilif_supported", "fused_lif", "fused_ilif", "MAX_LEVELS"]

#: I-LIF's rounding trick is exact for integers below 2^22 (float32); far beyond any real D.
MAX_LEVELS = 1 << 22


def surrogate_code(surrogate: Surrogate) -> tuple[int, float, float] | None:
    """``(code, p0, p1)`` of a surrogate the kernels implement, or ``None``.

    Matched on the exact type: a subclass may override ``derivative`` and must then run on the
    reference loop."""
    kind = type(surrogate)
    if kind is Sigmoid:
        return 0, surrogate.alpha, 0.0
    if kind is Atan:
        return 1, surrogate.alpha, 0.0
    if kind is Rectangle:
        return 2, surrogate.width, 0.0
    if kind is StraightThrough:
        return 3, surrogate.lo, surrogate.hi
    return None


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, torch.Tensor) or value.dim() == 0


def lif_supported(params: dict[str, Any]) -> bool:
    """Whether the fused kernels implement these LIF parameters: a built-in surrogate and one
    time constant per layer (a float or 0-dim tensor; per-neuron ``inv_tau`` runs on the
    reference loop)."""
    return surrogate_code(params["surrogate"]) is not None and _is_scalar(params["inv_tau"])


def ilif_supported(params: dict[str, Any]) -> bool:
    """Whether the fused kernels implement these I-LIF parameters."""
    return params["charge"] in ("decay", "tau") and 1 <= params["levels"] <= MAX_LEVELS


class _FusedLIF(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, v_init, inv_tau_tensor, ops, inv_tau, v_threshold, v_rest, hard_reset,  # type: ignore[override]
                decay_input, detach_reset, code, need_state):
        spikes, v_final = ops.lif_forward(x, v_init, inv_tau, v_threshold, v_rest, hard_reset, decay_input,
                                          need_state)
        # An unused output's gradient stays None instead of a tensor of zeros to read.
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(x, v_init)
        ctx.ops = ops
        ctx.args = (inv_tau, v_threshold, v_rest, hard_reset, decay_input, detach_reset, *code)
        return spikes, v_final

    @staticmethod
    def backward(ctx, grad_spikes, grad_v):  # type: ignore[override]
        x, v_init = ctx.saved_tensors
        need_tau = ctx.needs_input_grad[2]
        grad_x, grad_v_init, grad_tau = ctx.ops.lif_backward(
            grad_spikes, grad_v, x, v_init, *ctx.args, need_tau
        )
        return (
            grad_x,
            grad_v_init.view(v_init.shape) if ctx.needs_input_grad[1] else None,
            grad_tau if need_tau else None,  # autograd casts it to tau's dtype
            *([None] * 9),
        )


class _FusedILIF(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, v_init, ops, levels, beta, tau, tau_charge, detach_reset, need_state):  # type: ignore[override]
        spikes, v_final = ops.ilif_forward(x, v_init, levels, beta, tau, tau_charge, need_state)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(x, v_init)
        ctx.ops = ops
        ctx.args = (levels, beta, tau, tau_charge, detach_reset)
        return spikes, v_final

    @staticmethod
    def backward(ctx, grad_spikes, grad_v):  # type: ignore[override]
        x, v_init = ctx.saved_tensors
        grad_x, grad_v_init = ctx.ops.ilif_backward(grad_spikes, grad_v, x, v_init, *ctx.args)
        return grad_x, grad_v_init.view(v_init.shape) if ctx.needs_input_grad[1] else None, *([None] * 7)


def _prepare(x: torch.Tensor, v_init: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None, bool]:
    """``x`` ``[T, ...]`` and ``v_init`` contiguous in the order the kernels walk, and whether they
    were permuted: ``x`` ``[T, B, C, H, W]`` whose steps are channels-last (and not also
    contiguous) is taken as the ``[T, B, H, W, C]`` it is in memory (a time axis of stride 0, one
    step expanded over ``T``, is gathered once in that order); :func:`_restore` permutes back.

    The kernels walk ``[T, N]`` in memory order, so this lets a neuron return channels-last spikes
    with no copy to NCHW (that the next channels-last conv would copy back, and that makes a
    max-pool or a batch norm backward several times slower on CPU). Other dense permutations
    (attention's head splits) are still copied to the standard layout: passed on, they reach
    convolutions as layouts oneDNN runs up to 10x slower (a 1x1 backward at 360 channels)."""
    step = x[0] if x.dim() == 5 else None
    channels_last = (step is not None and not step.is_contiguous()
                     and step.is_contiguous(memory_format=torch.channels_last))
    if channels_last:
        x = x.permute(0, 1, 3, 4, 2)
        v_init = None if v_init is None else v_init.permute(0, 2, 3, 1)
    x = x.contiguous()
    if v_init is not None:
        v_init = v_init.to(x.dtype).contiguous()
    return x, v_init, channels_last


def _restore(spikes: torch.Tensor, v: torch.Tensor | None, channels_last: bool
             ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Undo :func:`_prepare`'s permutation: spikes ``[T, B, C, H, W]`` and ``v`` in channels-last memory."""
    if not channels_last:
        return spikes, v
    return spikes.permute(0, 1, 4, 2, 3), None if v is None else v.permute(0, 3, 1, 2)


def fused_lif(
    ops: Any,
    x: torch.Tensor,
    *,
    inv_tau: float | torch.Tensor,
    v_threshold: float,
    v_reset: float | None,
    decay_input: bool,
    detach_reset: bool,
    surrogate: Surrogate,
    v_init: torch.Tensor | None = None,
    need_state: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Multi-step LIF over ``x`` ``[T, ...]`` on a fused backend; arguments and result exactly as
    :func:`spikedrive.neurons.functional.lif_reference` (``(spikes [T, ...], v [...])``), but the
    membrane is ``None`` when ``need_state`` is false (not written at all). ``T = 0`` is a
    ``ValueError``, as in the reference."""
    require_steps(x, "fused LIF")
    code = surrogate_code(surrogate)
    if code is None:
        raise ValueError(f"fused LIF kernels do not implement the surrogate {surrogate!r}")
    x, v_init, channels_last = _prepare(x, v_init)
    tau_tensor = inv_tau if isinstance(inv_tau, torch.Tensor) else None
    inv_tau_value = float(inv_tau.detach()) if tau_tensor is not None else float(inv_tau)
    v_rest = 0.0 if v_reset is None else float(v_reset)
    spikes, v_final = _FusedLIF.apply(
        x, v_init, tau_tensor, ops, inv_tau_value, float(v_threshold), v_rest, v_reset is not None,
        bool(decay_input), bool(detach_reset), code, bool(need_state),
    )
    return _restore(spikes, v_final.view(x.shape[1:]) if need_state else None, channels_last)


def fused_ilif(
    ops: Any,
    x: torch.Tensor,
    *,
    levels: int,
    beta: float,
    charge: str = "decay",
    tau: float = 2.0,
    detach_reset: bool = True,
    v_init: torch.Tensor | None = None,
    need_state: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Multi-step I-LIF on a fused backend; arguments and result as
    :func:`spikedrive.neurons.functional.ilif_reference` (membrane ``None`` without
    ``need_state``)."""
    require_steps(x, "fused I-LIF")
    if charge not in ("decay", "tau"):
        raise ValueError(f"I-LIF: charge must be 'decay' or 'tau', got {charge!r}")
    x, v_init, channels_last = _prepare(x, v_init)
    spikes, v_final = _FusedILIF.apply(
        x, v_init, ops, int(levels), float(beta), float(tau), charge == "tau", bool(detach_reset), bool(need_state)
    )
    return _restore(spikes, v_final.view(x.shape[1:]) if need_state else None, channels_last)
