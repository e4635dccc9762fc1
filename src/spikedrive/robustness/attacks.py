"""White-box attacks through spiking models: FGSM, PGD (L-inf, L2, random start), EOT-PGD.

Every attack works on intensities ``x`` ``[B, C, H, W]`` in ``bounds`` (``[0, 1]``) with labels
``y`` ``[B]`` int64 and a model returning logits ``[B, classes]``; budgets ``eps`` are in
intensity units (``8/255`` on CIFAR). Spiking models are differentiable through their surrogate
gradients; stochastic coders need two more things, or the attack is gradient-masked and
overstates robustness (Athalye et al. 2018):

* a straight-through estimator for Bernoulli sampling (``make_coder("poisson")`` has one), since
  ``rand < x`` passes no gradient;
* expectation over transformation: ``eot`` gradients, each through a fresh coding draw, averaged.

PGD on a deterministic model keeps, per sample, the first iterate the model misclassifies, else
its last iterate: with a fixed ``step_size`` and ``generator`` seed, more steps then never raise
the accuracy under attack. On a stochastic model it returns the last iterate (Madry et al.;
torchattacks' EOTPGD): a first "fooled" iterate is judged on a few coding draws and sits on the
decision boundary, so a fresh draw classifies it correctly about half the time (measured on
digits, a Poisson SNN at eps 0.2: 68% accuracy with the first fooled iterate, weaker than FGSM's
57%; the last iterate is at or below FGSM: tests/test_robustness.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..layers.weights import eval_mode

__all__ = ["NORMS", "eval_mode", "fgsm", "pgd", "loss_and_grad", "predict", "accuracy"]

NORMS = ("linf", "l2")


def _check(x: torch.Tensor, y: torch.Tensor, eps: float, norm: str, eot: int, who: str) -> None:
    if x.dim() < 2 or not x.is_floating_point():
        raise ValueError(f"{who}: x must be a float batch [B, ...], got {x.dtype} of shape {tuple(x.shape)}")
    if y.shape != x.shape[:1]:
        raise ValueError(f"{who}: y must be labels [B] = [{x.shape[0]}], got shape {tuple(y.shape)}")
    if not isinstance(eps, (int, float)) or math.isnan(eps) or eps < 0:
        raise ValueError(f"{who}: eps must be a budget >= 0 (math.inf: unbounded), got {eps!r}")
    if norm not in NORMS:
        raise ValueError(f"{who}: norm must be one of {NORMS}, got {norm!r}")
    if not isinstance(eot, int) or eot < 1:
        raise ValueError(f"{who}: eot must be an integer >= 1 (coding samples per gradient), got {eot!r}")


def loss_and_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eot: int = 1
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-sample cross-entropy ``[B]``, its gradient in ``x`` (same shape as ``x``) and the
    logits ``[B, classes]``, each averaged over ``eot`` forward passes (fresh coding draws).

    A model whose output does not depend on ``x`` differentiably (a Bernoulli coder without a
    straight-through estimator) gets a zero gradient: that is the masking attacks must avoid.
    """
    x = x.detach().requires_grad_(True)
    grad = torch.zeros_like(x)
    loss_sum = torch.zeros(x.shape[0], device=x.device)
    logits_sum: torch.Tensor | None = None
    for _ in range(eot):
        logits = model(x)
        loss = F.cross_entropy(logits.float(), y, reduction="none")
        if loss.requires_grad:
            (g,) = torch.autograd.grad(loss.sum(), x, allow_unused=True)
            if g is not None:
                grad += g
        loss_sum += loss.detach()
        logits_sum = logits.detach() if logits_sum is None else logits_sum + logits.detach()
    assert logits_sum is not None
    return loss_sum / eot, grad / eot, logits_sum / eot


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, samples: int = 1, batch_size: int = 256) -> torch.Tensor:
    """Predicted classes ``[B]``: argmax of the logits averaged over ``samples`` forward passes
    (coding draws), in eval mode, in batches of ``batch_size``."""
    out = []
    with eval_mode(model):
        for chunk in x.split(batch_size):
            logits = sum(model(chunk) for _ in range(samples))
            out.append(logits.argmax(-1))  # type: ignore[union-attr]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long, device=x.device)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, samples: int = 1, batch_size: int = 256) -> float:
    """Fraction of ``x`` ``[B, ...]`` classified as ``y`` ``[B]`` (see :func:`predict`)."""
    return float((predict(model, x, samples, batch_size) == y).float().mean()) if len(y) else float("nan")


def _flat_norm(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (t.dim() - 1)))


def _project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    if math.isinf(eps):
        return delta
    if norm == "linf":
        return delta.clamp(-eps, eps)
    return delta * (eps / _flat_norm(delta)).clamp(max=1.0)


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, eot: int = 1,
         bounds: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
    """Fast gradient sign method (Goodfellow et al. 2015): ``clip(x + eps sign(grad))``.

    Args:
        model: images ``[B, ...]`` → logits ``[B, classes]`` (run in eval mode here).
        x: clean intensities ``[B, ...]`` in ``bounds``; y: labels ``[B]``.
        eps: L-inf budget in intensity units (finite).
        eot: coding samples averaged per gradient (> 1 for stochastic coders).
    Returns:
        Adversarial images, same shape as ``x``, detached.
    """
    _check(x, y, eps, "linf", eot, "fgsm")
    if math.isinf(eps):
        raise ValueError("fgsm: eps must be finite (a single signed step of size eps)")
    with eval_mode(model):
        _, grad, _ = loss_and_grad(model, x, y, eot)
    return (x + eps * grad.sign()).clamp(*bounds).detach()


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int = 10,
        step_size: float | None = None, norm: str = "linf", random_start: bool = True, eot: int = 1,
        generator: torch.Generator | None = None, bounds: tuple[float, float] = (0.0, 1.0),
        on_step: Callable[[int, torch.Tensor], None] | None = None, keep: str = "auto") -> torch.Tensor:
    """Projected gradient descent (Madry et al. 2018), L-inf or L2, with EOT for stochastic codes.

    Args:
        model: images ``[B, ...]`` → logits ``[B, classes]`` (run in eval mode here).
        x: clean intensities ``[B, ...]`` in ``bounds``; y: labels ``[B]``.
        eps: budget in intensity units (L-inf: per pixel; L2: per image); ``math.inf`` for an
            unbounded attack (then ``step_size`` must be given).
        steps: gradient steps (>= 0; 0 returns the random start).
        step_size: step length; default ``2.5 * eps / steps`` (Madry et al.).
        norm: ``"linf"`` (signed steps) or ``"l2"`` (normalized-gradient steps).
        random_start: start uniformly in the L-inf ball, or at a uniformly random radius along a
            Gaussian direction in the L2 ball.
        eot: coding samples whose gradients (and logits) are averaged at each step.
        generator: random source of the start (the coders draw from their own).
        on_step: called as ``on_step(i, loss [B])`` with the EOT loss at iterate ``i``.
        keep: ``"first_fooled"`` (per sample, the first misclassified iterate, else the last),
            ``"last"`` (the last iterate), or ``"auto"``: ``first_fooled`` for deterministic
            models, ``last`` for models with a stochastic coder (see the module docstring).
    Returns:
        Adversarial images, same shape as ``x``, within ``eps`` of ``x`` and inside ``bounds``.
    """
    _check(x, y, eps, norm, eot, "pgd")
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"pgd: steps must be an integer >= 0, got {steps!r}")
    if step_size is None:
        if math.isinf(eps):
            raise ValueError("pgd: an unbounded attack (eps=inf) needs an explicit finite step_size")
        step_size = 2.5 * eps / max(steps, 1)
    if not math.isfinite(step_size) or step_size < 0:
        raise ValueError(f"pgd: step_size must be finite and >= 0, got {step_size!r}")
    if keep not in ("auto", "first_fooled", "last"):
        raise ValueError(f"pgd: keep must be 'auto', 'first_fooled' or 'last', got {keep!r}")
    if keep == "auto":
        from ..models.coded import is_stochastic

        keep = "last" if is_stochastic(model) else "first_fooled"
    lo, hi = bounds
    x = x.detach()
    delta = torch.zeros_like(x)
    if random_start and eps > 0:
        r = min(eps, hi - lo) if norm == "linf" else eps
        if norm == "linf":
            delta = (torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) * 2 - 1) * r
        else:
            d = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            u = torch.rand((x.shape[0],), generator=generator, device=x.device, dtype=x.dtype)
            radius = u.view(-1, *([1] * (x.dim() - 1))) * (r if math.isfinite(r) else (hi - lo))
            delta = d / _flat_norm(d) * radius
    adv = (x + delta).clamp(lo, hi)
    best = adv.clone()
    fooled = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    with eval_mode(model):
        for i in range(steps + 1):
            if i == steps:
                # The last iterate is judged too; it needs no gradient.
                with torch.no_grad():
                    logits = sum(model(adv) for _ in range(eot)) / eot  # type: ignore[operator]
                loss = F.cross_entropy(logits.float(), y, reduction="none")
                grad = None
            else:
                loss, grad, logits = loss_and_grad(model, adv, y, eot)
            if on_step is not None:
                on_step(i, loss)
            newly = (logits.argmax(-1) != y) & ~fooled if keep == "first_fooled" else torch.zeros_like(fooled)
            best[newly] = adv[newly]
            fooled |= newly
            if grad is None:
                break
            if norm == "linf":
                step = step_size * grad.sign()
            else:
                step = step_size * grad / _flat_norm(grad)
            adv = (x + _project(adv + step - x, eps, norm)).clamp(lo, hi).detach()
    best[~fooled] = adv[~fooled]
    return best.detach()
