"""Checkpoints: everything a run needs to continue bit-identically, written atomically.

A checkpoint is a dict: ``format``, ``model``, ``optimizer``, ``scheduler`` (state dicts),
``epoch`` (epochs completed), ``global_step``, ``best_metric``, ``best_epoch``, ``config`` (the
recipe as a plain dict), ``rng`` (one RNG snapshot per rank) and ``history`` (the per-epoch
metrics so far). It holds only tensors and plain Python values, so it loads with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..models import create_model
from .config import plain_value
from .io import atomic_write

__all__ = ["CHECKPOINT_FORMAT", "check_compatible", "load_checkpoint", "load_model", "save_checkpoint"]

CHECKPOINT_FORMAT = "spikedrive.checkpoint/1"
_REQUIRED = ("model", "optimizer", "scheduler", "epoch", "global_step", "config", "rng", "history")


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Atomically write ``state`` (see the module docstring) to ``path``."""
    missing = [k for k in _REQUIRED if k not in state]
    if missing:
        raise ValueError(f"save_checkpoint: state is missing {missing}")
    payload = {"format": CHECKPOINT_FORMAT, **state}
    return atomic_write(path, lambda f: torch.save(payload, f))


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises ``FileNotFoundError`` if absent and ``ValueError`` if the file is truncated, corrupt
    or not a spikedrive checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_checkpoint: no checkpoint at {str(path)!r}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for damaged archives
        raise ValueError(f"load_checkpoint: {str(path)!r} is unreadable (truncated or corrupt?): {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"load_checkpoint: {str(path)!r} is not a spikedrive checkpoint "
                         f"(format {found!r}, expected {CHECKPOINT_FORMAT!r})")
    missing = [k for k in _REQUIRED if k not in state]
    if missing:
        raise ValueError(f"load_checkpoint: {str(path)!r} lacks {missing}; it cannot be resumed from")
    return state


def check_compatible(state: dict[str, Any], cfg: Any, path: str | os.PathLike) -> None:
    """Raise ``ValueError`` unless the checkpoint was trained with ``cfg``'s task and model
    (name and keyword arguments): resuming another model's weights is never what was meant.

    Values are compared in their YAML round-trip form (:func:`~.config.plain_value`), so a
    checkpoint holding ``(8, 16)`` matches the run's own ``config.yaml``, which reads ``[8, 16]``.
    """
    saved = state["config"]
    for key in ("task", "model", "model_kwargs"):
        if plain_value(saved.get(key)) != plain_value(getattr(cfg, key)):
            raise ValueError(
                f"checkpoint {str(path)!r} was trained with {key}={saved.get(key)!r}, but the config has "
                f"{key}={getattr(cfg, key)!r}; use the run's own config or a new out_dir")


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """The model a checkpoint holds, rebuilt by name from its config, in eval mode."""
    state = load_checkpoint(path, map_location=device)
    cfg = state["config"]
    model = create_model(cfg["model"], **cfg.get("model_kwargs", {}))
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise ValueError(f"checkpoint {str(path)!r} does not fit model {cfg['model']!r} built from its "
                         f"config (was it trained with a model passed to train()?): {exc}") from exc
    return model.to(device).eval()
