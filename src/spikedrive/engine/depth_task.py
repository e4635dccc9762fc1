"""Registers the depth task (``task: depth``) and holds the bodies of ``spikedrive depth
train|eval|predict``.

The task lives in :mod:`spikedrive.depth`, below the engine, so it cannot register itself; this
small engine module does. ``predict`` writes, per sample, a PNG with the events, the predicted
depth and the ground truth side by side (the same colour map and range for both depths).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..depth import DepthTask, from_log_depth
from .task import register_task

__all__ = ["build_depth_task", "depth_train", "depth_eval", "depth_predict", "save_depth_png"]


def build_depth_task(cfg: Any) -> DepthTask:
    """The depth task of a recipe (MVSEC's ``d_max = 80 m``, ``alpha = 3.7``; loss weights default)."""
    return DepthTask()


register_task("depth", build_depth_task)


def depth_train(args: argparse.Namespace) -> int:
    """``spikedrive depth train --config C [--resume] [key=value ...]``: train a depth recipe."""
    from .config import load_config
    from .trainer import train

    cfg = load_config(args.config, list(args.overrides))
    if cfg.task != "depth":
        raise ValueError(f"depth train: --config {args.config!r} has task {cfg.task!r}, expected 'depth'")
    if getattr(args, "resume", False):
        cfg.resume = True
    result = train(cfg)
    if os.environ.get("RANK", "0") == "0":
        for split, values in (("val", result.val_metrics), ("test", result.test_metrics)):
            print(f"{split}: " + "  ".join(f"{k} {v:.4f}" for k, v in values.items()))
        print(f"run folder {result.out_dir}")
    return 0


def _load(args: argparse.Namespace) -> tuple[Any, torch.nn.Module]:
    from .checkpoint import load_run

    cfg, model = load_run(args.checkpoint, tuple(getattr(args, "overrides", ()) or ()))
    if cfg.task != "depth":
        raise ValueError(f"depth: checkpoint {args.checkpoint!r} is a {cfg.task!r} run, expected 'depth'")
    return cfg, model


def depth_eval(args: argparse.Namespace) -> int:
    """``spikedrive depth eval CHECKPOINT [key=value ...]``: the MVSEC metrics on val and test."""
    from .data import build_datasets, make_eval_loader
    from .distributed import resolve_device
    from .loop import evaluate

    cfg, model = _load(args)
    _, val_set, test_set = build_datasets(cfg)
    device = resolve_device(cfg.device)
    model = model.to(device)
    for split, dataset in (("val", val_set), ("test", test_set)):
        metrics = evaluate(model, build_depth_task(cfg), make_eval_loader(dataset, cfg), device)
        print(f"{split}: " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    return 0


def save_depth_png(path: str | os.PathLike[str], pred_m: np.ndarray, gt_m: np.ndarray,
                   frames: np.ndarray | None = None, d_max: float = 80.0, title: str = "") -> Path:
    """Write ``[events |] predicted | ground-truth`` depth as one PNG.

    Args:
        pred_m, gt_m: depth ``[H, W]`` in metres (NaN in ``gt_m`` drawn as the background).
        frames: optional event frames ``[T, C, H, W]`` (the last step, polarities summed, is shown).
        d_max: top of the colour range, metres (both depths share the range 0..``d_max``).
        title: figure title.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = ([("events (last step)", np.asarray(frames)[-1].sum(0), "gray", None)] if frames is not None else [])
    panels += [("predicted depth (m)", pred_m, "magma_r", d_max), ("ground truth (m)", gt_m, "magma_r", d_max)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4))
    image = None
    for ax, (name, img, cmap, top) in zip(np.atleast_1d(axes), panels):
        shown = ax.imshow(np.ma.masked_invalid(img), cmap=cmap, vmin=0 if top else None, vmax=top)
        if top:
            image = shown
        ax.set_title(name)
        ax.axis("off")
    if image is not None:
        fig.colorbar(image, ax=list(np.atleast_1d(axes)), shrink=0.8)
    if title:
        fig.suptitle(title)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def depth_predict(args: argparse.Namespace) -> int:
    """``spikedrive depth predict CHECKPOINT --out DIR [--split test] [--samples N] [key=value ...]``:
    colour-mapped predicted depth beside the ground truth, one PNG per sample."""
    from .data import build_datasets, make_eval_loader

    cfg, model = _load(args)
    split = getattr(args, "split", "test")
    splits = dict(zip(("train", "val", "test"), build_datasets(cfg)))
    if split not in splits:
        raise ValueError(f"depth predict: --split must be one of {sorted(splits)}, got {split!r}")
    task = build_depth_task(cfg)
    limit = int(getattr(args, "samples", 4))
    written = 0
    model.eval()
    with torch.no_grad():
        for raw in make_eval_loader(splits[split], cfg):
            frames, depth, _ = task.to_device(raw, torch.device("cpu"))
            pred = from_log_depth(model(frames), task.d_max, task.alpha)
            for b in range(pred.shape[0]):
                if written >= limit:
                    break
                path = save_depth_png(Path(args.out) / f"{split}_{written:04d}.png", pred[b, 0].numpy(),
                                      depth[b, 0].numpy(), frames[:, b].numpy(), task.d_max, f"{cfg.model} {split} #{written}")
                print(path)
                written += 1
            if written >= limit:
                break
    return 0
