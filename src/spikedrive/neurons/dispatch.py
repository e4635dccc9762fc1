"""One dispatch table from (neuron kind, backend) to a multi-step implementation.

Every kind has a ``"reference"`` entry (the plain loop of :mod:`.functional`); faster backends
(fused CPU operator, Triton on CUDA) register themselves here with an availability check, and
``backend="auto"`` picks the first available one in :data:`AUTO_ORDER`, falling back to the
reference. Neurons never branch on backends themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .functional import ilif_reference, lif_reference

__all__ = ["Kernel", "register_kernel", "resolve_kernel", "available_backends", "BACKENDS", "AUTO_ORDER"]

BACKENDS = ("auto", "reference", "cpu", "triton")
AUTO_ORDER = ("triton", "cpu", "reference")


@dataclass(frozen=True)
class Kernel:
    """A multi-step implementation and a predicate saying whether it can run on an input."""

    fn: Callable[..., tuple[torch.Tensor, torch.Tensor]]
    supports: Callable[[torch.Tensor], bool]


_TABLE: dict[tuple[str, str], Kernel] = {}


def register_kernel(
    kind: str, backend: str, fn: Callable[..., tuple[torch.Tensor, torch.Tensor]],
    supports: Callable[[torch.Tensor], bool] = lambda x: True,
) -> None:
    """Register ``fn`` as the ``backend`` implementation of neuron ``kind`` ("lif" or "ilif")."""
    if backend not in BACKENDS or backend == "auto":
        raise ValueError(f"register_kernel: backend must be one of {BACKENDS[1:]}, got {backend!r}")
    _TABLE[(kind, backend)] = Kernel(fn, supports)


def available_backends(kind: str) -> list[str]:
    """Backends registered for ``kind``."""
    return [b for (k, b) in _TABLE if k == kind]


def resolve_kernel(kind: str, backend: str, x: torch.Tensor) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """The implementation to run for ``x``: the named backend, or the first that supports ``x``
    when ``backend == "auto"``. Raises ``ValueError`` if a named backend is unknown or cannot
    run on ``x`` (never a silent fallback when the user asked for one by name)."""
    if backend == "auto":
        for name in AUTO_ORDER:
            kernel = _TABLE.get((kind, name))
            if kernel is not None and kernel.supports(x):
                return kernel.fn
        raise LookupError(f"no backend registered for neuron kind {kind!r}")
    kernel = _TABLE.get((kind, backend))
    if kernel is None:
        raise ValueError(
            f"backend={backend!r} is not available for {kind!r} neurons; available: {available_backends(kind)}"
        )
    if not kernel.supports(x):
        raise ValueError(
            f"backend={backend!r} cannot run on a {x.dtype} tensor on {x.device}; use backend='auto'"
        )
    return kernel.fn


register_kernel("lif", "reference", lif_reference)
register_kernel("ilif", "reference", ilif_reference)
