"""The common shell of every spiking neuron module."""

from __future__ import annotations

import torch
from torch import nn

from ._checks import require_steps
from .dispatch import BACKENDS

__all__ = ["SpikingNeuron", "check_sequence", "set_neuron_backend"]


def check_sequence(x: torch.Tensor, who: str) -> None:
    """Raise a clear error unless ``x`` is a floating ``[T, B, ...]`` tensor with ``T >= 1``.

    Every neuron's entry point calls this before any backend runs, so they all refuse the same
    inputs with the same message."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{who}: expected a torch.Tensor of shape [T, B, ...], got {type(x).__name__}")
    if x.dim() < 2:
        raise ValueError(f"{who}: expected input of shape [T, B, ...], got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{who}: expected a floating-point input, got {x.dtype}")
    require_steps(x, who)


class SpikingNeuron(nn.Module):
    """Base class: a multi-step neuron ``[T, B, ...] -> [T, B, ...]``.

    The membrane lives only inside one ``forward`` call, so there is nothing to reset between
    batches. Streaming inference passes the state explicitly through :meth:`forward_with_state`.

    Subclasses implement :meth:`_run` returning ``(spikes, final_membrane)``; with
    ``need_state=False`` the membrane may be ``None`` (a fused kernel then skips writing it).
    """

    #: Key of this neuron's implementations in the dispatch table.
    kind: str = ""

    @property
    def levels(self) -> int:
        """The largest value one output entry can take per time step (1 for binary neurons)."""
        return 1

    @property
    def expanded(self) -> bool:
        """Whether the output holds ``levels`` binary virtual steps per time step
        (``[T * levels, B, ...]``) instead of one value per step."""
        return False

    def __init__(self, backend: str = "auto") -> None:
        super().__init__()
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.backend = backend

    def _run(
        self, x: torch.Tensor, v_init: torch.Tensor | None, need_state: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Spikes ``[T, B, ...]`` for input current ``x`` ``[T, B, ...]``, starting from rest."""
        check_sequence(x, type(self).__name__)
        return self._run(x, None, need_state=False)[0]

    def forward_with_state(
        self, x: torch.Tensor, v_init: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Streaming form: ``(spikes [T, B, ...], membrane after the last step [B, ...])``,
        starting from ``v_init`` (``[B, ...]``, rest if ``None``).

        The state follows the input: ``v_init`` is cast to ``x``'s dtype (differentiably, so a
        float64 state still receives its gradient) on every backend, and both outputs are in
        ``x``'s dtype."""
        who = type(self).__name__
        check_sequence(x, who)
        if v_init is not None:
            if not isinstance(v_init, torch.Tensor):
                raise TypeError(f"{who}: v_init must be a torch.Tensor of shape [B, ...] or None, "
                                f"got {type(v_init).__name__}")
            if v_init.shape != x.shape[1:]:
                raise ValueError(f"{who}: v_init must have shape {tuple(x.shape[1:])}, got {tuple(v_init.shape)}")
            v_init = v_init.to(x.dtype)
        spikes, v = self._run(x, v_init, need_state=True)
        assert v is not None
        return spikes, v


def set_neuron_backend(module: nn.Module, backend: str) -> int:
    """Set ``backend`` (``"auto" | "reference" | "cpu" | "triton"``) on every spiking neuron in
    ``module``; returns how many neurons were changed. Useful to compare backends on one model or
    to debug a kernel against the reference loop."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    count = 0
    for sub in module.modules():
        if isinstance(sub, SpikingNeuron):
            sub.backend = backend
            count += 1
    return count
