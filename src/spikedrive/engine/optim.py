"""Optimizer and learning-rate schedule from a recipe.

The schedule is stepped once per optimizer step (not per epoch), so warm-up works for short
runs; its state is a step counter, saved and restored with the checkpoint.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

__all__ = ["WarmupCosine", "apply_schedule", "build_optimizer", "build_scheduler", "param_groups"]


def param_groups(model: nn.Module, weight_decay: float, no_weight_decay: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Optimizer parameter groups of ``model``'s trainable parameters: ``[decayed, not decayed]``.

    Weight decay applies to tensors of two or more dimensions (weights, kernels) only: decaying
    biases and norm scales pulls them toward zero for no regularisation benefit. Parameters
    whose name matches a pattern of ``no_weight_decay`` (``fnmatch``, against the names of
    ``model.named_parameters()``, e.g. ``"*.pos_embed"``, ``"*.alpha"``) are not decayed either.
    Each group holds ``params``, ``weight_decay`` and ``param_names`` (the names, in order);
    an empty group is left out.
    """
    decay: tuple[list[str], list[nn.Parameter]] = ([], [])
    keep: tuple[list[str], list[nn.Parameter]] = ([], [])
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        excluded = p.dim() < 2 or any(fnmatch.fnmatchcase(name, pat) for pat in no_weight_decay)
        names, params = keep if excluded else decay
        names.append(name)
        params.append(p)
    groups = [{"params": decay[1], "param_names": decay[0], "weight_decay": weight_decay},
              {"params": keep[1], "param_names": keep[0], "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def build_optimizer(model: nn.Module, cfg: Any) -> torch.optim.Optimizer:
    """``cfg.optimizer`` over :func:`param_groups` of ``model`` (``cfg.weight_decay``,
    ``cfg.no_weight_decay``)."""
    groups = param_groups(model, cfg.weight_decay, getattr(cfg, "no_weight_decay", ()))
    if not groups:
        raise ValueError("build_optimizer: the model has no trainable parameters")
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    if cfg.optimizer == "adam":
        # Adam's weight decay is L2 in the gradient (coupled); AdamW's is decoupled.
        return torch.optim.Adam(groups, lr=cfg.lr)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    if cfg.optimizer == "lamb":
        from timm.optim import Lamb

        # Lamb clips the global gradient norm to 1 by default: off, so clip_grad is the one clip.
        return Lamb(groups, lr=cfg.lr, max_grad_norm=None)
    raise ValueError(f"config: optimizer={cfg.optimizer!r} is invalid; expected 'adamw', 'adam', 'sgd' or 'lamb'")


class WarmupCosine:
    """LR factor at optimizer step ``s``: linear warm-up over ``warmup_steps`` from ``start``
    (``None``: ``1 / warmup_steps``) to 1, then cosine from 1 to ``floor`` at ``total_steps``
    (``cosine=True``) or constant 1.

    A small class rather than a closure so ``LambdaLR.state_dict`` can save it.
    """

    def __init__(self, total_steps: int, warmup_steps: int = 0, cosine: bool = True, start: float | None = None,
                 floor: float = 0.0) -> None:
        if total_steps < 1 or not 0 <= warmup_steps <= total_steps:
            raise ValueError(
                f"WarmupCosine: need total_steps >= 1 and 0 <= warmup_steps <= total_steps, "
                f"got total_steps={total_steps}, warmup_steps={warmup_steps}")
        self.total_steps, self.warmup_steps, self.cosine = total_steps, warmup_steps, cosine
        self.start, self.floor = start, floor

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            if self.start is None:
                return (step + 1) / self.warmup_steps
            return self.start + (1.0 - self.start) * step / self.warmup_steps
        if not self.cosine:
            return 1.0
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return self.floor + (1.0 - self.floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: Any, steps_per_epoch: int) -> LambdaLR:
    """Per-step schedule for ``cfg.epochs * steps_per_epoch`` steps with ``cfg.warmup_epochs``."""
    total = cfg.epochs * steps_per_epoch
    warmup = min(total, round(cfg.warmup_epochs * steps_per_epoch))
    start = cfg.warmup_lr / cfg.lr if cfg.warmup_lr > 0 else None
    return LambdaLR(optimizer, WarmupCosine(total, warmup, cosine=cfg.scheduler == "cosine", start=start,
                                            floor=cfg.min_lr / cfg.lr))


def apply_schedule(scheduler: LambdaLR) -> None:
    """Set each param group's ``lr`` to what ``scheduler`` gives at its current position.

    ``LambdaLR`` writes the lr into the optimizer only when it steps, so after restoring a
    position (``load_state_dict``) into a schedule of another shape (a finished run extended to
    more epochs) the groups would keep the lr the checkpoint ended with for one step. The
    expression is ``LambdaLR.get_lr``'s, so the values equal an uninterrupted run's bit for bit.
    """
    step = scheduler.last_epoch
    lrs = [base * fn(step) for base, fn in zip(scheduler.base_lrs, scheduler.lr_lambdas, strict=True)]
    for group, lr in zip(scheduler.optimizer.param_groups, lrs, strict=True):
        group["lr"] = lr
    scheduler._last_lr = list(lrs)  # what get_last_lr() reports; LambdaLR keeps no public setter
