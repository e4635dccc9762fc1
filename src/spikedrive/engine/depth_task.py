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
from .task_commands import eval_task_splits, load_task_split, train_task_recipe

__all__ = ["build_depth_task", "depth_train", "depth_eval", "depth_predict", "predict_pngs", "save_depth_png"]

_TASK_KEYS = ("d_max", "alpha", "lam", "grad_weight", "scales")


def build_depth_task(cfg: Any) -> DepthTask:
    """The depth task of a recipe: :class:`~spikedrive.depth.DepthTask` with the recipe's
    ``task_kwargs`` (``d_max``, ``alpha``, ``lam`` = scale-invariance weight, ``grad_weight`` =
    gradient-matching weight, ``scales``); MVSEC's 80 m / 3.7 and weights 0.5 / 0.5 by default."""
    kwargs = dict(getattr(cfg, "task_kwargs", None) or {})
    for key in kwargs:
        if key not in _TASK_KEYS:
            raise ValueError(f"depth task: task_kwargs has unknown key {key!r}, expected some of {_TASK_KEYS}")
    return DepthTask(**kwargs)


register_task("depth", build_depth_task)


def depth_train(args: argparse.Namespace) -> int:
    """``spikedrive depth train --config C [--resume] [key=value ...]``: train a depth recipe."""
    return train_task_recipe(args, "depth", "depth train")


def depth_eval(args: argparse.Namespace) -> int:
    """``spikedrive depth eval CHECKPOINT [key=value ...]``: the MVSEC metrics on val and test."""
    return eval_task_splits(args, "depth", "depth eval", build_depth_task)


def save_depth_png(path: str | os.PathLike[str], pred_m: np.ndarray, gt_m: np.ndarray,
                   frames: np.ndarray | None = None, d_max: float = 80.0, title: str = "",
                   d_min: float = 2.0) -> Path:
    """Write ``[events |] predicted | ground-truth`` depth as one PNG.

    Args:
        pred_m, gt_m: depth ``[H, W]`` in metres (NaN in ``gt_m`` drawn as the background).
        frames: optional event frames ``[T, C, H, W]`` (the last step, polarities summed, is shown).
        d_max, d_min: the colour range, metres; both depths share it, on a log scale (so near
            depths, where the metrics weigh most, are not squeezed into one colour).
        title: figure title.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    panels = ([("events (last step)", np.asarray(frames)[-1].sum(0), "gray", None)] if frames is not None else [])
    panels += [("predicted depth (m)", pred_m, "magma_r", d_max), ("ground truth (m)", gt_m, "magma_r", d_max)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4))
    image = None
    for ax, (name, img, cmap, top) in zip(np.atleast_1d(axes), panels):
        norm = LogNorm(vmin=d_min, vmax=top, clip=True) if top else None
        shown = ax.imshow(np.ma.masked_invalid(img), cmap=cmap, norm=norm)
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


def predict_pngs(model: torch.nn.Module, task: DepthTask, samples: Any, out: str | os.PathLike[str],
                 split: str = "test", limit: int = 4, batch_size: int = 4, title: str | None = None) -> list[Path]:
    """Write ``<out>/<split>_NNNN.png`` (events | predicted depth | ground truth) for the first
    ``limit`` samples.

    Args:
        model: frames ``[T, B, C, H, W]`` -> normalised log depth ``[B, 1, H, W]``; run on the CPU.
        task: the depth task (its ``d_max`` and ``alpha`` turn the output into metres).
        samples: a dataset of ``(frames [T, C, H, W], depth [H, W] metres)``.
        out: output folder; split: file-name prefix; limit: number of PNGs.
        batch_size: samples per forward pass; title: figure title (default: ``<split> #N``).

    Returns:
        The paths written, in order.
    """
    from ..data.images import time_major_dense_collate

    written: list[Path] = []
    model = model.eval()
    n = min(int(limit), len(samples))
    with torch.no_grad():
        for lo in range(0, n, batch_size):
            raw = time_major_dense_collate([samples[i] for i in range(lo, min(lo + batch_size, n))])
            frames, depth, _ = task.to_device(raw, torch.device("cpu"))
            pred = from_log_depth(model(frames), task.d_max, task.alpha)
            for b in range(pred.shape[0]):
                name = Path(out) / f"{split}_{len(written):04d}.png"
                written.append(save_depth_png(name, pred[b, 0].numpy(), depth[b, 0].numpy(), frames[:, b].numpy(),
                                              task.d_max, title or f"{split} #{len(written)}"))
    return written


def depth_predict(args: argparse.Namespace) -> int:
    """``spikedrive depth predict CHECKPOINT --out DIR [--split test] [--samples N] [key=value ...]``:
    colour-mapped predicted depth beside the ground truth, one PNG per sample."""
    cfg, model, split, dataset = load_task_split(args, "depth", "depth predict")
    for path in predict_pngs(model.cpu(), build_depth_task(cfg), dataset, args.out, split,
                             int(getattr(args, "samples", 4)), title=None):
        print(path)
    return 0
