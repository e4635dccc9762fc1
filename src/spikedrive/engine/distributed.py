"""torchrun / DDP plumbing, so the same ``train`` runs on one process or many.

``torchrun`` sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; when ``WORLD_SIZE > 1`` the engine
joins the process group (gloo on CPU, NCCL on CUDA), wraps the model in DDP and leaves the group
at the end. Without those variables everything here is a no-op.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

__all__ = ["DistContext", "cleanup_distributed", "resolve_device", "setup_distributed", "unwrap_model"]

R = TypeVar("R")


def resolve_device(preference: str, local_rank: int = 0) -> torch.device:
    """``"auto"`` → ``cuda:<local_rank>`` when CUDA is available, else CPU; ``"cuda"`` →
    ``cuda:<local_rank>``; ``"cpu"`` and ``"cuda:N"`` as given.

    Raises ``ValueError`` (naming the ``device`` field and its value) for a CUDA device on a
    machine without CUDA: a config that does not fit the machine, not a crash.
    """
    if preference == "cpu":
        return torch.device("cpu")
    if preference == "auto":
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError(f"config: device={preference!r} but torch.cuda.is_available() is False on this "
                         "machine; use device=cpu or device=auto")
    if preference == "cuda":
        return torch.device("cuda", local_rank)
    return torch.device(preference)


@dataclass(frozen=True)
class DistContext:
    """Where this process sits: its rank among ``world_size`` processes and its device."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    owns_group: bool = False  # True when setup_distributed created the group (and must destroy it)

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes files and shows progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """More than one process."""
        return self.world_size > 1

    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        """Element-wise sum of ``t`` over ranks, returned on ``t``'s device (``t`` itself when alone)."""
        if not self.distributed:
            return t
        x = t.detach().to(self._comm_device()).clone()
        dist.all_reduce(x, op=dist.ReduceOp.SUM)
        return x.to(t.device)

    def any(self, flag: bool) -> bool:
        """True if ``flag`` is true on any rank (a collective: every rank must call it)."""
        if not self.distributed:
            return flag
        return bool(self.all_reduce_sum(torch.tensor([1.0 if flag else 0.0])).item() > 0)

    def main_first(self, fn: Callable[[], R]) -> R:
        """``fn()`` on rank 0 first, alone; then, once it has returned, on the other ranks (a
        collective: every rank must call it). For work that fills a cache the others then read,
        such as generating a dataset on first use.

        If ``fn`` raises on rank 0, rank 0 re-raises it and the other ranks raise
        ``RuntimeError`` instead of waiting for it (or running ``fn`` themselves).
        """
        if not self.distributed:
            return fn()
        result: Any = None
        error: Exception | None = None
        if self.is_main:
            try:
                result = fn()
            except Exception as exc:  # noqa: BLE001 (re-raised below, once the other ranks know)
                error = exc
        if self.any(error is not None):  # the barrier: the other ranks wait here for rank 0
            if error is not None:
                raise error
            raise RuntimeError(f"rank {self.rank}: stopping because rank 0 failed in work it had to do "
                               "first (see rank 0's error)")
        if not self.is_main:
            result = fn()
        return result

    def gather_objects(self, obj: Any) -> list[Any]:
        """``obj`` of every rank, in rank order (picklable objects; a collective)."""
        if not self.distributed:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def sync_buffers(self, model: nn.Module) -> None:
        """Average floating buffers (batch-norm running statistics) over ranks and copy rank 0's
        other buffers, so every rank evaluates and saves the same model.

        DDP broadcasts buffers before each forward, but the last forward of an epoch updates
        them again locally, so without this the ranks end an epoch with different statistics.
        """
        if not self.distributed:
            return
        for buf in unwrap_model(model).buffers():
            x = buf.detach().to(self._comm_device())
            if buf.is_floating_point():
                dist.all_reduce(x, op=dist.ReduceOp.SUM)
                x /= self.world_size
            else:
                dist.broadcast(x, src=0)
            buf.copy_(x.to(buf.device))

    def wrap(self, model: nn.Module) -> nn.Module:
        """``model`` in DistributedDataParallel when distributed, else unchanged."""
        if not self.distributed:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def _comm_device(self) -> torch.device:
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (the model itself otherwise)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def setup_distributed(device: str = "auto") -> DistContext:
    """Join the process group that ``torchrun`` describes in the environment, if any.

    Reuses a group the caller already initialised (and then leaves it alone at the end).
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if world_size <= 1 and not (dist.is_available() and dist.is_initialized()):
        return DistContext(device=resolve_device(device, local_rank))
    if not dist.is_available():
        raise RuntimeError(f"WORLD_SIZE={world_size} but this torch build has no torch.distributed")
    dev = resolve_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    owns = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
        owns = True
    return DistContext(rank=dist.get_rank(), local_rank=local_rank, world_size=dist.get_world_size(),
                       device=dev, owns_group=owns)


def cleanup_distributed(ctx: DistContext) -> None:
    """Leave the process group if :func:`setup_distributed` created it."""
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()
