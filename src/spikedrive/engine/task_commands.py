"""The shared bodies of the task commands (``spikedrive depth|detect train|eval``): train a recipe
of one task, load a checkpoint of one task, evaluate it on its val and test splits."""

from __future__ import annotations

import argparse
import os
from typing import Any, Callable

import torch

__all__ = ["print_metrics", "train_task_recipe", "load_task_run", "load_task_split", "eval_task_splits"]


def print_metrics(split: str, values: dict[str, float]) -> None:
    """One line ``split: name value  name value ...`` (4 decimals)."""
    print(f"{split}: " + "  ".join(f"{k} {v:.4f}" for k, v in values.items()))


def train_task_recipe(args: argparse.Namespace, task: str, who: str) -> int:
    """``spikedrive <who> --config C [--resume] [key=value ...]``: train a recipe whose ``task:``
    must be ``task``; prints the val and test metrics and the run folder (rank 0 only)."""
    from .config import load_config
    from .trainer import train

    cfg = load_config(args.config, list(args.overrides))
    if cfg.task != task:
        raise ValueError(f"{who}: --config {args.config!r} has task {cfg.task!r}, expected {task!r}")
    if getattr(args, "resume", False):
        cfg.resume = True
    result = train(cfg)
    if os.environ.get("RANK", "0") == "0":
        print_metrics("val", result.val_metrics)
        print_metrics("test", result.test_metrics)
        print(f"run folder {result.out_dir}")
    return 0


def load_task_run(args: argparse.Namespace, task: str, who: str) -> tuple[Any, torch.nn.Module]:
    """The recipe and model of ``args.checkpoint`` (with ``args.overrides``), refused unless the
    run's task is ``task``."""
    from .checkpoint import load_run

    cfg, model = load_run(args.checkpoint, tuple(getattr(args, "overrides", ()) or ()))
    if cfg.task != task:
        raise ValueError(f"{who}: checkpoint {args.checkpoint!r} is a {cfg.task!r} run, expected {task!r}")
    return cfg, model


def load_task_split(args: argparse.Namespace, task: str, who: str) -> tuple[Any, torch.nn.Module, str, Any]:
    """The checkpoint's recipe and model (as :func:`load_task_run`) and ``--split`` (default
    ``"test"``) with its dataset: ``(cfg, model, split, dataset)``; an unknown split is a
    ``ValueError`` naming ``who``."""
    from .data import build_datasets

    names = ("train", "val", "test")
    split = getattr(args, "split", "test")
    if split not in names:  # before opening any dataset
        raise ValueError(f"{who}: --split must be one of {sorted(names)}, got {split!r}")
    cfg, model = load_task_run(args, task, who)
    return cfg, model, split, dict(zip(names, build_datasets(cfg)))[split]


def eval_task_splits(args: argparse.Namespace, task: str, who: str, build_task: Callable[[Any], Any]) -> int:
    """``spikedrive <who> CHECKPOINT [key=value ...]``: the task's metrics on val and test."""
    from .data import build_datasets, make_eval_loader
    from .distributed import resolve_device
    from .loop import evaluate

    cfg, model = load_task_run(args, task, who)
    _, val_set, test_set = build_datasets(cfg)
    device = resolve_device(cfg.device)
    model = model.to(device)
    for split, dataset in (("val", val_set), ("test", test_set)):
        print_metrics(split, evaluate(model, build_task(cfg), make_eval_loader(dataset, cfg), device))
    return 0
