"""The inner loops: one training epoch, and evaluation. Task-agnostic: a task object does the
batch handling, the loss and the metrics (see :mod:`.task`)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from timm.utils import dispatch_clip_grad
from tqdm.auto import tqdm

from ..analysis import evaluating
from .distributed import DistContext, unwrap_model
from .task import Task

__all__ = ["TrainingDiverged", "autocast", "check_finite_weights", "evaluate", "train_one_epoch"]


class TrainingDiverged(RuntimeError):
    """The loss (or the weights) became non-finite; training stopped without saving.

    Attributes:
        epoch: 1-based epoch in which it happened.
        step: 1-based step within that epoch (``None`` if found after the epoch, in the weights).
        global_step: optimizer steps completed before the bad step.
        value: the offending loss (NaN / inf) when known.
    """

    def __init__(self, message: str, *, epoch: int, step: int | None, global_step: int,
                 value: float | None = None) -> None:
        super().__init__(message)
        self.epoch, self.step, self.global_step, self.value = epoch, step, global_step, value


def autocast(amp: str, device: torch.device | str) -> contextlib.AbstractContextManager:
    """The forward-pass precision context of ``amp``: ``"none"`` (a no-op), ``"bf16"`` or
    ``"fp16"`` (``torch.autocast`` on ``device``'s type with that dtype)."""
    if amp == "none":
        return contextlib.nullcontext()
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16}
    if amp not in dtypes:
        raise ValueError(f"autocast: amp={amp!r} is invalid; expected 'none', 'bf16' or 'fp16'")
    return torch.autocast(device_type=torch.device(device).type, dtype=dtypes[amp])


def steps_per_epoch(batches: int, grad_accum: int, max_steps: int | None = None) -> int:
    """Optimizer steps in an epoch of ``batches`` batches, ``grad_accum`` batches per step, at most
    ``max_steps``; a ``ValueError`` when not even one step fits."""
    steps = batches // grad_accum
    if steps == 0:
        raise ValueError(f"config: grad_accum={grad_accum} is more than the {batches} batch(es) per epoch "
                         "on each rank; lower grad_accum or batch_size")
    return steps if not max_steps else min(steps, max_steps)


def train_one_epoch(
    model: nn.Module, task: Task, loader: DataLoader, optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler, *, ctx: DistContext, epoch: int, epochs: int,
    global_step: int, clip_grad: float | None = None, clip_mode: str = "norm", max_steps: int | None = None,
    progress: bool = True, on_diverge: Callable[[str], str] = lambda msg: msg, grad_accum: int = 1,
    amp: str = "none", scaler: torch.amp.GradScaler | None = None, ema: nn.Module | None = None,
) -> tuple[dict[str, float], int]:
    """Train ``model`` over one pass of ``loader`` (at most ``max_steps`` optimizer steps).

    Each optimizer step sums the gradients of ``grad_accum`` consecutive batches (each loss
    scaled by ``1 / grad_accum``; under DDP only the last of them all-reduces), clips their
    gradients to ``clip_grad`` (``clip_mode``: global norm, AGC or value), steps the optimizer (through ``scaler`` for fp16), the
    scheduler, and ``ema.update(model, step=global_step)`` (a ``timm.utils.ModelEmaV3``).
    Forward passes run under :func:`autocast` of ``amp``. Batches left over that do not fill a
    step are skipped.

    Returns ``(means, global_step)``: the mean over batches (and ranks) of the loss and of every
    number the task logs (a task must log the same keys on every rank), and the updated global
    step count. The non-finite check happens *before* each backward pass, so a bad batch never
    reaches the weights; ``on_diverge`` may extend the error message (e.g. with where the last
    good checkpoint is).

    Raises:
        TrainingDiverged: the loss is NaN or infinite on any rank.
        ValueError: the loader has fewer than ``grad_accum`` batches.
    """
    model.train()
    steps = steps_per_epoch(len(loader), grad_accum, max_steps)
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    bar = tqdm(total=steps, desc=f"epoch {epoch}/{epochs}", leave=False, dynamic_ncols=True,
               disable=None if progress and ctx.is_main else True)  # None: no bar when not a TTY
    batches = iter(loader)
    try:
        for step in range(1, steps + 1):
            optimizer.zero_grad(set_to_none=True)
            losses = []
            for micro in range(grad_accum):
                batch = task.to_device(next(batches), ctx.device)
                # Only the last micro-batch all-reduces gradients (DDP); the others accumulate locally.
                sync = (model.no_sync() if micro < grad_accum - 1 and isinstance(model, DistributedDataParallel)
                        else contextlib.nullcontext())
                with sync:
                    with autocast(amp, ctx.device):
                        loss, logs = task.training_loss(model, batch)
                    value = float(loss.detach())
                    # Collective, so every rank stops together instead of hanging in the next all-reduce.
                    if ctx.any(not math.isfinite(value)):
                        what = f"is {value}" if not math.isfinite(value) else "is non-finite on another rank"
                        message = (f"training diverged: the loss {what} at epoch {epoch}, step {step} "
                                   f"(global step {global_step + 1}); stopped before the update, nothing was "
                                   "saved. Try a lower lr, a longer warm-up or clip_grad.")
                        raise TrainingDiverged(on_diverge(message), epoch=epoch, step=step,
                                               global_step=global_step, value=value)
                    scaled = loss / grad_accum if grad_accum > 1 else loss
                    (scaler.scale(scaled) if scaler is not None else scaled).backward()
                losses.append(value)
                for key, v in {"loss": value, **{k: float(v) for k, v in logs.items()}}.items():
                    sums[key] = sums.get(key, 0.0) + v
                    counts[key] = counts.get(key, 0) + 1
            if scaler is not None:
                scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
            if clip_grad is not None:
                dispatch_clip_grad(list(model.parameters()), clip_grad, mode=clip_mode)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            scheduler.step()
            global_step += 1
            if ema is not None:
                ema.update(unwrap_model(model), step=global_step)
            bar.update(1)
            bar.set_postfix(loss=f"{sum(losses) / len(losses):.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}",
                            refresh=False)
    finally:
        bar.close()
    keys = sorted(sums)
    means = torch.tensor([sums[k] / counts[k] for k in keys], dtype=torch.float64)
    means = ctx.all_reduce_sum(means) / ctx.world_size
    return dict(zip(keys, means.tolist())), global_step


def check_finite_weights(model: nn.Module) -> list[str]:
    """Names of parameters and floating buffers holding NaN or inf (empty when all finite)."""
    module = unwrap_model(model)
    named = list(module.named_parameters()) + [(n, b) for n, b in module.named_buffers() if b.is_floating_point()]
    return [name for name, t in named if not bool(torch.isfinite(t).all())]


def evaluate(model: nn.Module, task: Task, loader: DataLoader, device: torch.device | str, *,
             all_reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
             progress: bool = False, desc: str = "eval", amp: str = "none") -> dict[str, float]:
    """Metrics of ``model`` over ``loader`` as ``task`` defines them, e.g. ``{"accuracy": ...}``.

    The model runs in eval mode without gradients, its forward under :func:`autocast` of
    ``amp``; afterwards every submodule is back in its own previous mode (a deliberately
    frozen, eval-mode batch norm stays frozen). Under DDP pass this rank's shard as ``loader``
    and ``all_reduce`` (element-wise sum over ranks): the result is then the metric over the
    whole set, on every rank.
    """
    module = unwrap_model(model)  # DDP's forward would sync buffers; evaluation needs no collective
    device = torch.device(device)
    metrics = task.new_metrics()
    with evaluating(module):
        for batch in tqdm(loader, desc=desc, leave=False, dynamic_ncols=True, disable=None if progress else True):
            batch = task.to_device(batch, device)
            with autocast(amp, device):
                output = task.forward(module, batch)
            metrics.update(output, batch)
    metrics.reduce(all_reduce if all_reduce is not None else (lambda t: t))
    return {k: float(v) for k, v in metrics.compute().items()}
