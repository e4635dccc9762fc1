"""Bodies of ``spikedrive attack`` and ``spikedrive certify``.

Each takes a parsed-arguments object (an ``argparse.Namespace`` or anything with the same
attributes) so the CLI only declares the arguments. Both load a checkpoint written by ``train``,
take the first ``samples`` items of its recipe's **test** split and work in intensity space
``[0, 1]`` (a dataset's normalization is undone: CIFAR, ImageNet).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data.images import CIFAR_STATS
from ..data.images.builders import IMAGENET_MEAN, IMAGENET_STD
from ..engine import build_datasets, load_run
from ..encoding import PoissonEncoder, RSCEncoder
from .attacks import accuracy, fgsm, pgd
from .certify import Smooth, certified_accuracy, plot_certified_accuracy
from ..models.coded import CodedModel, PixelInput, is_stochastic
from .qte import qte

__all__ = ["run_attack", "run_certify", "load_for_attack", "smooth_for"]

def _normalization(cfg: Any) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    if cfg.dataset in ("cifar10", "cifar100"):
        mean, std = CIFAR_STATS[cfg.dataset]
        return tuple(mean), tuple(std)
    if cfg.dataset == "imagenet":
        return IMAGENET_MEAN, IMAGENET_STD
    return None


def load_for_attack(checkpoint: str, overrides: list[str] | None = None, samples: int = 500
                    ) -> tuple[Any, nn.Module, torch.Tensor, torch.Tensor]:
    """``(recipe, model on intensities, x [N, C, H, W] in [0, 1], y [N])`` from a checkpoint and
    the first ``samples`` items of its test split. ``overrides`` may say where the data is
    (``data_root=...``), never change the model."""
    cfg, model = load_run(checkpoint, tuple(overrides or ()))
    test = build_datasets(cfg)[2]
    n = min(samples, len(test))
    if n < 1:
        raise ValueError(f"the test split of {cfg.dataset!r} is empty; nothing to attack")
    items = [test[i] for i in range(n)]
    x = torch.stack([torch.as_tensor(item[0], dtype=torch.float32) for item in items])
    y = torch.as_tensor([int(item[1]) for item in items], dtype=torch.long)
    if x.dim() != 4:
        raise ValueError(f"attacks take images [N, C, H, W]; the test split of {cfg.dataset!r} gives "
                         f"{tuple(x.shape)} (time-major event data is not supported)")
    norm = _normalization(cfg)
    if isinstance(model, CodedModel) and model.normalized:
        x = model.to_pixels(x)
        wrapped: nn.Module = PixelInput(model)
    elif norm is not None:
        mean, std = (torch.tensor(v).view(-1, 1, 1) for v in norm)
        x = x * std + mean
        wrapped = PixelInput(model, *norm)
    else:
        wrapped = PixelInput(model)
    return cfg, wrapped.eval(), x.clamp(0.0, 1.0), y


def run_attack(args: Any) -> int:
    """``spikedrive attack``: accuracy under FGSM or PGD over an ``eps`` sweep, with QTE.

    Reads ``args.checkpoint``, ``args.attack`` (``fgsm`` | ``pgd``), ``args.norm`` (``linf`` |
    ``l2``), ``args.eps`` (budgets in intensity units, e.g. ``0 0.01 0.03``), ``args.steps``,
    ``args.step_size`` (``None``: ``2.5 eps / steps``), ``args.eot`` (``None``: 8 for a stochastic
    coder, else 1), ``args.samples``, ``args.batch_size``, ``args.seed``, ``args.out`` (JSON path or
    ``None``) and ``args.overrides``. Prints one line per budget.
    """
    cfg, model, x, y = load_for_attack(args.checkpoint, list(getattr(args, "overrides", []) or []), args.samples)
    eps_list = sorted(float(e) for e in args.eps)
    stochastic = is_stochastic(model)
    eot = args.eot if args.eot is not None else (8 if stochastic else 1)
    if args.attack not in ("fgsm", "pgd"):
        raise ValueError(f"--attack must be 'fgsm' or 'pgd', got {args.attack!r}")
    if args.attack == "fgsm" and args.norm != "linf":
        raise ValueError(f"--norm {args.norm!r}: FGSM is an L-inf attack; use --attack pgd for l2")
    torch.manual_seed(args.seed)
    accs = []
    for eps in eps_list:
        advs = []
        for i, (xb, yb) in enumerate(zip(x.split(args.batch_size), y.split(args.batch_size))):
            if eps == 0:
                advs.append(xb)
            elif args.attack == "fgsm":
                advs.append(fgsm(model, xb, yb, eps, eot=eot))
            else:
                g = torch.Generator().manual_seed(args.seed + i)
                advs.append(pgd(model, xb, yb, eps, steps=args.steps, step_size=args.step_size, norm=args.norm,
                                eot=eot, generator=g))
        accs.append(accuracy(model, torch.cat(advs), y, batch_size=args.batch_size))
        print(f"{args.attack} {args.norm} eps {eps:.4g}: accuracy {100 * accs[-1]:.2f}% ({len(y)} test samples)")
    score = qte(eps_list, accs) if len(eps_list) >= 2 else float("nan")
    if len(eps_list) >= 2:
        print(f"QTE over [{eps_list[0]:.4g}, {eps_list[-1]:.4g}]: {score:.5f} (accuracy fraction x eps)")
    if getattr(args, "out", None):
        record = {"checkpoint": str(args.checkpoint), "model": cfg.model, "dataset": cfg.dataset,
                  "attack": args.attack, "norm": args.norm, "steps": args.steps, "eot": eot,
                  "samples": len(y), "eps": eps_list, "accuracy": accs, "qte": score}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(record, indent=2))
    return 0


def smooth_for(model: nn.Module, num_classes: int, sigma: float | None = None, seed: int = 0) -> Smooth:
    """The smoothed classifier a model's own coder defines, on intensities ``[C, H, W]``.

    A :class:`CodedModel` with RSC-I → Gaussian (``sigma`` of the coder) around the base model
    directly coded; RSC-II → Gaussian with ``T`` draws; Poisson → Bernoulli with ``T`` draws.
    Any other model (ANN, direct coding) needs ``sigma`` and is smoothed with Gaussian noise.
    """
    inner = model.model if isinstance(model, PixelInput) else model
    if isinstance(inner, CodedModel):
        coder, base = inner.coder, inner.model
        if isinstance(coder, PoissonEncoder):
            return Smooth(base, num_classes, 0.0, noise="bernoulli", T=coder.T, seed=seed)
        if isinstance(coder, RSCEncoder) and coder.sigma > 0:
            if coder.mode == "II":
                return Smooth(base, num_classes, sigma or coder.sigma, noise="gaussian", T=coder.T, seed=seed)
            direct = CodedModel(type(coder)(coder.T, 0.0, "I"), base)
            return Smooth(direct, num_classes, sigma or coder.sigma, noise="gaussian", seed=seed)
    if sigma is None or sigma <= 0:
        raise ValueError("this model has no stochastic coder, so certification needs --sigma > 0 "
                         "(Gaussian noise added to its input)")
    if isinstance(inner, CodedModel):
        return Smooth(PixelInput(inner), num_classes, sigma, seed=seed)
    return Smooth(model, num_classes, sigma, seed=seed)


def run_certify(args: Any) -> int:
    """``spikedrive certify``: Cohen et al.'s CERTIFY on test samples and the certified-accuracy
    curve.

    Reads ``args.checkpoint``, ``args.n0``, ``args.n``, ``args.alpha``, ``args.batch_size``,
    ``args.samples``, ``args.sigma`` (``None``: the coder's), ``args.radii`` (grid of the curve),
    ``args.seed``, ``args.out`` (JSON path or ``None``), ``args.plot`` (PNG or ``None``) and
    ``args.overrides``.
    """
    cfg, model, x, y = load_for_attack(args.checkpoint, list(getattr(args, "overrides", []) or []), args.samples)
    num_classes = int(cfg.model_kwargs.get("num_classes", 10))
    smooth = smooth_for(model, num_classes, args.sigma, args.seed)
    preds, radii = [], []
    for xi in x:
        c, r = smooth.certify(xi, args.n0, args.n, args.alpha, args.batch_size)
        preds.append(c)
        radii.append(r)
    grid = sorted(float(r) for r in args.radii)
    curve = certified_accuracy(preds, radii, y.tolist(), grid)
    norm = "L1" if smooth.noise == "bernoulli" else "L2"
    abstain = sum(p == Smooth.ABSTAIN for p in preds) / len(preds)
    print(f"{smooth.noise} smoothing (sigma {smooth.sigma:g}, T {smooth.T}), n0 {args.n0}, n {args.n}, "
          f"alpha {args.alpha}: abstained on {100 * abstain:.1f}% of {len(preds)} test samples")
    for g, a in zip(grid, curve):
        print(f"  {norm} radius {g:.4g}: certified accuracy {100 * a:.2f}%")
    if getattr(args, "plot", None):
        print(f"plot: {plot_certified_accuracy({cfg.model: (grid, curve)}, args.plot, xlabel=f'{norm} radius')}")
    if getattr(args, "out", None):
        record = {"checkpoint": str(args.checkpoint), "noise": smooth.noise, "sigma": smooth.sigma, "T": smooth.T,
                  "n0": args.n0, "n": args.n, "alpha": args.alpha, "samples": len(preds), "norm": norm,
                  "predictions": preds, "radii": radii, "labels": y.tolist(), "grid": grid,
                  "certified_accuracy": curve, "abstain_rate": abstain}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(record, indent=2))
    if any(math.isnan(a) for a in curve):
        return 1
    return 0
