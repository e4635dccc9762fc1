"""Neuron dynamics as pure functions over a whole sequence ``[T, ...]``.

These are the *reference* implementations: one plain Python loop over time, autograd through
every step. They define what every neuron means; faster backends registered in
:mod:`spikedrive.neurons.dispatch` must agree with them (spikes equal, gradients to float
tolerance).

Charge equations (``V`` the membrane after the previous step, ``X`` the input current):

* LIF, ``decay_input=True``:  ``H = V + (X - (V - V_reset)) * inv_tau``
* LIF, ``decay_input=False``: ``H = V - (V - V_reset) * inv_tau + X``
  (with ``V_reset = 0`` and ``inv_tau = 1 - decay`` this is the "decay" form
  ``H = decay * V + X`` of MA-SNN, TA-SNN, ASA-SNN)
* IF: ``inv_tau = 0`` with ``decay_input=False``: ``H = V + X``

Fire ``S = surrogate(H - V_th)``; reset hard ``V = H (1 - S) + V_reset S`` or, with
``v_reset=None``, soft ``V = H - V_th S``. ``detach_reset`` cuts the gradient through ``S`` in the
reset only.

I-LIF (integer LIF, SpikeYOLO): ``H = beta V + X`` ("decay" charge) or ``H = V + (X - V) / tau``
("tau" charge, the Gen1 variant); ``S = round(clamp(H, 0, D))`` (round half to even, as
``torch.round``); soft reset ``V = H - S``; straight-through gradient 1 on ``[0, D]``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._checks import require_steps
from .surrogate import Surrogate, heaviside

__all__ = ["lif_reference", "lif_charges", "ilif_reference", "quantize_integer", "expand_integer_spikes"]


def lif_reference(
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
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-step LIF / IF over ``x`` of shape ``[T, ...]``.

    Args:
        x: input current, ``[T, ...]`` (any trailing shape).
        inv_tau: ``1 / tau`` (a float, or a tensor broadcastable to ``x[0]`` for learnable tau);
            ``0`` with ``decay_input=False`` gives the IF neuron.
        v_threshold: firing threshold ``V_th``.
        v_reset: hard-reset potential, or ``None`` for soft reset (subtract ``V_th``).
        decay_input: whether the input is scaled by ``inv_tau`` (SpikingJelly's convention).
        detach_reset: stop the gradient through the spike in the reset term.
        surrogate: the spike function's surrogate gradient.
        v_init: membrane at ``t = -1``, ``x[0]``'s shape; defaults to ``v_reset`` (or 0). It is
            cast to ``x``'s dtype (differentiably), as every backend does.
        need_state: whether the caller uses the final membrane. Part of every kernel's
            signature: fused kernels return ``None`` for it when ``False``; this loop has it
            anyway and always returns it.

    Returns:
        ``(spikes [T, ...] in {0, 1}, final membrane [...])``.

    Raises:
        ValueError: if ``x`` has no time step (``T = 0``).
    """
    require_steps(x, "lif_reference")
    spikes, _, v = _lif_loop(x, inv_tau, v_threshold, v_reset, decay_input, v_init, surrogate, detach_reset)
    return torch.stack(spikes), v


def lif_charges(
    x: torch.Tensor,
    *,
    inv_tau: float | torch.Tensor,
    v_threshold: float,
    v_reset: float | None,
    decay_input: bool,
    v_init: torch.Tensor | None = None,
) -> torch.Tensor:
    """The charged membrane ``H [T, ...]`` of the LIF / IF neuron driven by ``x [T, ...]``: the
    potential each step compares with ``V_th``, before the reset.

    :func:`lif_reference` returns only the spikes and the final membrane, and after a hard reset
    ``H`` cannot be recovered from them; analyses of the membrane (the spiking pruning criterion)
    take it from here. Same equations and arguments as :func:`lif_reference` (the spike is the
    Heaviside step; no surrogate is involved, and no graph is needed).

    Raises:
        ValueError: if ``x`` has no time step (``T = 0``).
    """
    require_steps(x, "lif_charges")
    _, charges, _ = _lif_loop(x, inv_tau, v_threshold, v_reset, decay_input, v_init, heaviside, False,
                              keep_charges=True)
    return torch.stack(charges)


def _lif_loop(x: torch.Tensor, inv_tau: float | torch.Tensor, v_threshold: float, v_reset: float | None,
              decay_input: bool, v_init: torch.Tensor | None, fire: Callable[[torch.Tensor], torch.Tensor],
              detach_reset: bool, keep_charges: bool = False,
              ) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
    """The LIF loop over ``x [T, ...]``: per-step spikes ``fire(H - V_th)``, the charges ``H``
    (when ``keep_charges``) and the final membrane. The fused kernels reproduce its operation
    order bit for bit; keep it."""
    rest = 0.0 if v_reset is None else v_reset
    v = torch.full_like(x[0], rest) if v_init is None else v_init.to(x.dtype)
    spikes, charges = [], []
    for t in range(x.shape[0]):
        if decay_input:
            h = v + (x[t] - (v - rest)) * inv_tau
        else:
            h = v - (v - rest) * inv_tau + x[t]
        s = fire(h - v_threshold)
        s_reset = s.detach() if detach_reset else s
        if v_reset is None:
            v = h - v_threshold * s_reset
        else:
            v = h * (1.0 - s_reset) + v_reset * s_reset
        spikes.append(s)
        if keep_charges:
            charges.append(h)
    return spikes, charges, v


class _StraightThroughQuantize(torch.autograd.Function):
    """``round(clamp(h, 0, D))`` forward; gradient 1 on ``[0, D]`` backward."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, levels: int) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(h)
        ctx.levels = levels
        return torch.round(torch.clamp(h, 0, levels))

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        (h,) = ctx.saved_tensors
        inside = (h >= 0) & (h <= ctx.levels)
        return grad_out * inside.to(grad_out.dtype), None


def quantize_integer(h: torch.Tensor, levels: int) -> torch.Tensor:
    """I-LIF's spike function: integers ``round(clamp(h, 0, levels))``, straight-through on
    ``[0, levels]``. Any shape; output in ``h``'s dtype."""
    if not torch.is_grad_enabled() or not h.requires_grad:
        return torch.round(torch.clamp(h, 0, levels))
    return _StraightThroughQuantize.apply(h, levels)


def ilif_reference(
    x: torch.Tensor,
    *,
    levels: int,
    beta: float,
    charge: str = "decay",
    tau: float = 2.0,
    detach_reset: bool = True,
    v_init: torch.Tensor | None = None,
    need_state: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-step I-LIF over ``x`` ``[T, ...]``; returns ``(integer spikes [T, ...] in 0..levels,
    final membrane [...])``. See the module docstring for the equations; ``v_init`` and
    ``need_state`` as in :func:`lif_reference`. Raises ``ValueError`` if ``T = 0``."""
    require_steps(x, "ilif_reference")
    v = torch.zeros_like(x[0]) if v_init is None else v_init.to(x.dtype)
    spikes = []
    for t in range(x.shape[0]):
        if charge == "decay":
            h = beta * v + x[t]
        elif charge == "tau":
            h = v + (x[t] - v) / tau
        else:
            raise ValueError(f"ilif_reference: charge must be 'decay' or 'tau', got {charge!r}")
        s = quantize_integer(h, levels)
        v = h - (s.detach() if detach_reset else s)
        spikes.append(s)
    return torch.stack(spikes), v


class _ThermometerExpand(torch.autograd.Function):
    """Thermometer code forward; backward gives each integer the mean of its ``D`` steps' gradients.

    A synaptic layer sums the ``D`` binary maps of a step with the same weights, so each map's
    gradient equals the gradient the integer would get in the integer model: their mean is that
    gradient exactly (straight through the expansion, whose sum is the integer)."""

    @staticmethod
    def forward(ctx, s: torch.Tensor, levels: int) -> torch.Tensor:  # type: ignore[override]
        ctx.levels = levels
        k = torch.arange(levels, device=s.device, dtype=s.dtype).view(1, levels, *([1] * (s.dim() - 1)))
        return (s.unsqueeze(1) > k).to(s.dtype).flatten(0, 1)  # [T * D, B, ...]

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return grad.unflatten(0, (-1, ctx.levels)).mean(dim=1), None


def expand_integer_spikes(s: torch.Tensor, levels: int) -> torch.Tensor:
    """Integer spikes ``[T, B, ...]`` in ``0..levels`` → binary ``[T * levels, B, ...]``.

    Each integer ``v`` becomes ``v`` ones followed by ``levels - v`` zeros (a thermometer code),
    laid out time-major: virtual step ``t * levels + k`` holds ``s[t] > k``. Summing the
    ``levels`` maps of one step gives back the integer, and the code commutes with max-pooling.

    Differentiable: the gradient of ``s[t]`` is the mean of the gradients of its ``levels``
    virtual steps, which is exact when a synaptic layer sums them (as after
    :func:`spikedrive.to_spike_driven`), so a converted model can still be trained or attacked.
    A max-pool between the expansion and the synapse breaks ties per virtual step, so there the
    gradient is routed to possibly different (equally maximal) positions than in integer mode.
    """
    if s.dim() < 2:
        raise ValueError(f"expand_integer_spikes: expected [T, B, ...], got shape {tuple(s.shape)}")
    return _ThermometerExpand.apply(s, int(levels))
