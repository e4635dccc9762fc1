"""Activation memory: the bytes autograd keeps for backward, the figure a training step's peak
memory grows with (parameters and optimizer state aside)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

__all__ = ["saved_bytes_for_backward"]


def saved_bytes_for_backward(fn: Callable[[], Any], exclude: Sequence[torch.Tensor] = ()) -> int:
    """Bytes of the distinct storages autograd saves for backward while ``fn()`` runs (counted
    with ``torch.autograd.graph.saved_tensors_hooks``), leaving out ``exclude`` (e.g. the model's
    parameters, which exist whether or not a graph is kept). Returns ``fn``'s bytes; the graph
    is dropped."""
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        try:
            storage = t.untyped_storage()
        except (RuntimeError, NotImplementedError):  # tensors without storage (functional wrappers)
            return t
        if storage.data_ptr() not in skip:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    del out
    return sum(seen.values())
