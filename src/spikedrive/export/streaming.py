"""Streaming inference: a model run window by window with its neurons' state kept between calls."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

__all__ = ["StreamingModel"]


def _stateful(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every submodule with a membrane to carry: spiking neurons and leaky integrators (any module
    with ``forward_with_state(x, v_init) -> (out, v)``), outermost first."""
    found = []
    for name, module in model.named_modules():
        if callable(getattr(module, "forward_with_state", None)):
            found.append((name or type(module).__name__, module))
    return found


class StreamingModel:
    """Run ``model`` on consecutive windows ``[T_w, B, ...]`` as if on their concatenation.

    Each call runs the model's own ``forward`` on one window, but every neuron starts from the
    membrane it ended the previous window with (through its ``forward_with_state``), so the
    per-step outputs over all windows equal one multi-step forward over the whole sequence.
    :meth:`reset` starts a new sequence. The wrapped model is left unchanged between calls.

    Args:
        model: any spikedrive model whose forward maps a ``[T, B, ...]`` sequence step by step
            (stateless layers, neurons; a final mean over time is allowed, see ``readout``). Each
            neuron must be called once per forward.
        readout: ``"none"``: a call returns the model's output on the window. ``"mean"``: the
            model's output is a mean over the window's steps (SmallSpikingCNN's logits); a call
            returns the running mean over every step since :meth:`reset`, i.e. the model's
            output on the whole sequence so far.
    """

    def __init__(self, model: nn.Module, readout: str = "none") -> None:
        if readout not in ("none", "mean"):
            raise ValueError(f"StreamingModel: readout must be 'none' or 'mean', got {readout!r}")
        self.model, self.readout = model, readout
        self._neurons = _stateful(model)
        if not self._neurons:
            raise ValueError(f"StreamingModel: {type(model).__name__} has no stateful neuron; nothing to stream")
        self.reset()

    def reset(self) -> None:
        """Forget every membrane and the running readout: the next window starts a new sequence."""
        self._state: dict[int, torch.Tensor] = {}
        self._sum: torch.Tensor | None = None
        self.steps = 0

    @property
    def state(self) -> dict[str, torch.Tensor]:
        """Membrane ``[B, ...]`` of each neuron after the last window, by module path."""
        return {name: self._state[id(m)] for name, m in self._neurons if id(m) in self._state}

    @contextmanager
    def _carrying(self) -> Iterator[None]:
        calls: dict[int, int] = {}

        def make(name: str, module: nn.Module):
            def forward(x: torch.Tensor) -> torch.Tensor:
                key = id(module)
                calls[key] = calls.get(key, 0) + 1
                if calls[key] > 1:
                    raise RuntimeError(f"StreamingModel: neuron {name!r} is called more than once per forward; "
                                       "one carried state per neuron cannot stream such a model")
                prev = self._state.get(key)
                if prev is not None and prev.shape != x.shape[1:]:
                    raise ValueError(f"StreamingModel: neuron {name!r} carries state of shape {tuple(prev.shape)} "
                                     f"but the window gives {tuple(x.shape[1:])}; call reset() before a new batch")
                out, v = module.forward_with_state(x, prev)
                self._state[key] = v.detach()
                return out
            return forward

        for name, module in self._neurons:
            module.forward = make(name, module)  # an instance attribute shadows the class's forward
        try:
            yield
        finally:
            for _, module in self._neurons:
                del module.forward

    @torch.no_grad()
    def __call__(self, window: torch.Tensor) -> torch.Tensor:
        """Output for one window ``[T_w, B, ...]`` (``T_w >= 1``; one time step is ``T_w = 1``).

        ``readout="none"``: the model's output on the window (e.g. ``[T_w, B, classes]``);
        ``"mean"``: ``[B, ...]``, the mean over all steps since :meth:`reset`."""
        if not isinstance(window, torch.Tensor) or window.dim() < 2 or window.shape[0] < 1:
            shape = tuple(window.shape) if isinstance(window, torch.Tensor) else type(window).__name__
            raise ValueError(f"StreamingModel: window must be a tensor [T_w >= 1, B, ...], got {shape}")
        with self._carrying():
            out = self.model(window)
        steps = window.shape[0]
        self.steps += steps
        if self.readout == "none":
            return out
        self._sum = out * steps if self._sum is None else self._sum + out * steps
        return self._sum / self.steps
