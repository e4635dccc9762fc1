"""Checkpoints: everything a run needs to continue bit-identically, written atomically.

A checkpoint is a dict: ``format``, ``model``, ``optimizer``, ``scheduler`` (state dicts),
``epoch`` (epochs completed), ``global_step``, ``best_metric``, ``best_epoch``, ``config`` (the
recipe as a plain dict), ``rng`` (one RNG snapshot per rank) and ``history`` (the per-epoch
metrics so far). It holds only tensors and plain Python values, so it loads with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..models import create_model
from .config import plain_value
from .io import atomic_write

__all__ = [
    "CHECKPOINT_FORMAT", "EXECUTION_FIELDS", "check_compatible", "config_differences", "load_checkpoint",
    "load_model", "save_checkpoint",
]

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
    except Exception as exc:  # torch raises several types for damaged or foreign files
        # A torch archive that fails for another reason than the weights-only refusal of what
        # it holds is damaged; anything else (text, a pickled module) is some other file.
        with path.open("rb") as f:
            archive = f.read(4) == b"PK\x03\x04"
        damaged = archive and not isinstance(exc, pickle.UnpicklingError)
        what = "is unreadable (truncated or corrupt?)" if damaged else "is not a spikedrive checkpoint"
        raise ValueError(f"load_checkpoint: {str(path)!r} {what} (torch.load failed: {_reason(exc)})") from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        if isinstance(state, dict) and "format" not in state:
            keys = list(state)
            shown = f"{keys[:5]}"[:-1] + (", ...]" if len(keys) > 5 else "]")
            found = f"it holds a dict with keys {shown}, not the checkpoint keys {['format', *_REQUIRED]}"
        elif isinstance(state, dict):
            found = f"format {state['format']!r}, expected {CHECKPOINT_FORMAT!r}"
        else:
            found = f"it holds a {type(state).__name__}, not a checkpoint dict"
        raise ValueError(f"load_checkpoint: {str(path)!r} is not a spikedrive checkpoint ({found})")
    missing = [k for k in _REQUIRED if k not in state]
    if missing:
        raise ValueError(f"load_checkpoint: {str(path)!r} lacks {missing}; it cannot be resumed from")
    return state


def _reason(exc: BaseException) -> str:
    """One line of why ``torch.load`` failed. Its ``weights_only`` refusal is a paragraph whose
    cause is on the ``WeightsUnpickler error:`` line; other errors say it on their first line."""
    text = _ANSI.sub("", str(exc))
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    cause = next((l.split(":", 1)[1].strip() for l in lines if l.startswith("WeightsUnpickler error:")),
                 lines[0] if lines else "")
    cause = cause.split(". ")[0].rstrip(".")  # the rest is advice on trusting the file
    return f"{type(exc).__name__}: {cause}" if cause else type(exc).__name__


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


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


#: Config fields that say how a run executes, not what it computes: a run may be continued
#: with other values of these.
EXECUTION_FIELDS = frozenset({"out_dir", "resume", "device", "num_workers", "progress", "neuron_backend",
                              "energy_report", "eval_batch_size", "deterministic"})


def config_differences(saved: dict[str, Any], cfg: Any) -> dict[str, tuple[Any, Any]]:
    """``field -> (saved value, cfg's value)`` for every field that defines a run (all but
    :data:`EXECUTION_FIELDS`) where the checkpoint's config ``saved`` and ``cfg`` differ.

    Compared in YAML round-trip form; a field the saved config lacks (an older checkpoint) is
    not compared.
    """
    current = cfg.to_dict()
    return {key: (saved[key], current[key]) for key in current
            if key not in EXECUTION_FIELDS and key in saved and plain_value(saved[key]) != plain_value(current[key])}


def _restore_pruning_masks(model: nn.Module, weights: dict[str, Any]) -> None:
    """Re-create the masks of a pruned model (``<name>_orig`` / ``<name>_mask`` entries, torch's
    ``nn.utils.prune`` convention) so its state dict loads into a freshly built model."""
    from torch.nn.utils import prune

    modules = dict(model.named_modules())
    for key, mask in weights.items():
        if not key.endswith("_mask"):
            continue
        path, _, param = key[: -len("_mask")].rpartition(".")
        module = modules.get(path)
        if module is not None and f"{key[:-len('_mask')]}_orig" in weights and hasattr(module, param):
            prune.custom_from_mask(module, param, torch.ones_like(mask))


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """The model a checkpoint holds, rebuilt by name from its config, in eval mode: the EMA
    weights when the run kept an EMA (those were validated, selected and tested), else the raw
    ones."""
    return _model_from_state(load_checkpoint(path, map_location=device), path, device)


def _model_from_state(state: dict[str, Any], path: str | os.PathLike, device: str | torch.device) -> nn.Module:
    cfg = state["config"]
    model = create_model(cfg["model"], **cfg.get("model_kwargs", {}))
    weights = state["ema"] if state.get("ema") is not None else state["model"]
    _restore_pruning_masks(model, weights)
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise ValueError(f"checkpoint {str(path)!r} does not fit model {cfg['model']!r} built from its "
                         f"config (was it trained with a model passed to train()?): {exc}") from exc
    return model.to(device).eval()


def load_run(checkpoint: str | os.PathLike, overrides: list[str] | tuple[str, ...] = ()) -> tuple[Any, nn.Module]:
    """``(recipe, model)`` of a checkpoint written by ``train``. ``overrides`` (``key=value``) may
    change how the data is found (``data_root=...``), never the model the checkpoint holds."""
    from .config import apply_overrides, config_from_dict

    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    state = load_checkpoint(path, map_location="cpu")
    cfg = config_from_dict(state["config"])
    if overrides:
        cfg = apply_overrides(cfg, list(overrides))
        check_compatible(state, cfg, path)
    return cfg, _model_from_state(state, path, "cpu")
