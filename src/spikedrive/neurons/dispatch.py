"""One dispatch table from (neuron kind, backend) to a multi-step implementation.

Every kind has a ``"reference"`` entry (the plain loop of :mod:`.functional`); faster backends
(fused CPU operator, Triton on CUDA) register themselves here with an availability check, and
``backend="auto"`` picks the first available one in :data:`AUTO_ORDER`, falling back to the
reference. Neurons never branch on backends themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from .functional import ilif_reference, lif_reference

__all__ = ["Kernel", "register_kernel", "resolve_kernel", "available_backends", "BACKENDS", "AUTO_ORDER"]

BACKENDS = ("auto", "reference", "cpu", "triton")
AUTO_ORDER = ("triton", "cpu", "reference")


@dataclass(frozen=True)
class Kernel:
    """A multi-step implementation, a predicate ``supports(x, params)`` saying whether it can run
    on input ``x`` with the neuron's keyword arguments ``params``, and optionally ``explain(x,
    params)``, the reason it cannot (for the error when a user names this backend)."""

    fn: Callable[..., tuple[torch.Tensor, torch.Tensor]]
    supports: Callable[[torch.Tensor, dict[str, Any]], bool]
    explain: Callable[[torch.Tensor, dict[str, Any]], str] | None = None


def _always(x: torch.Tensor, params: dict[str, Any]) -> bool:
    return True


_TABLE: dict[tuple[str, str], Kernel] = {}


def register_kernel(
    kind: str, backend: str, fn: Callable[..., tuple[torch.Tensor, torch.Tensor]],
    supports: Callable[[torch.Tensor, dict[str, Any]], bool] = _always,
    explain: Callable[[torch.Tensor, dict[str, Any]], str] | None = None,
) -> None:
    """Register ``fn`` as the ``backend`` implementation of neuron ``kind`` ("lif" or "ilif")."""
    if backend not in BACKENDS or backend == "auto":
        raise ValueError(f"register_kernel: backend must be one of {BACKENDS[1:]}, got {backend!r}")
    _TABLE[(kind, backend)] = Kernel(fn, supports, explain)


def available_backends(kind: str) -> list[str]:
    """Backends registered for ``kind``."""
    return [b for (k, b) in _TABLE if k == kind]


def resolve_kernel(
    kind: str, backend: str, x: torch.Tensor, params: dict[str, Any] | None = None
) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """The implementation to run for ``x`` and the neuron's keyword arguments ``params``: the
    named backend, or the first in :data:`AUTO_ORDER` that supports them when
    ``backend == "auto"``. Raises ``ValueError`` if a named backend is unknown or cannot run on
    them (never a silent fallback when the user asked for one by name)."""
    params = {} if params is None else params
    if backend == "auto":
        for name in AUTO_ORDER:
            kernel = _TABLE.get((kind, name))
            if kernel is not None and kernel.supports(x, params):
                return kernel.fn
        raise LookupError(f"no backend registered for neuron kind {kind!r}")
    kernel = _TABLE.get((kind, backend))
    if kernel is None:
        raise ValueError(
            f"backend={backend!r} is not available for {kind!r} neurons; available: {available_backends(kind)}"
        )
    if not kernel.supports(x, params):
        reason = kernel.explain(x, params) if kernel.explain is not None else (
            f"not on a {x.dtype} tensor on {x.device} with these parameters")
        raise ValueError(f"backend={backend!r} cannot run {kind!r} neurons: {reason}; use backend='auto'")
    return kernel.fn


register_kernel("lif", "reference", lif_reference)
register_kernel("ilif", "reference", ilif_reference)
