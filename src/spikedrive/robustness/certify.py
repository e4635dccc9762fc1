"""Randomized-smoothing certificates with Cohen et al.'s interface (ICML 2019, Algorithms 1-2).

``Smooth(model, num_classes, sigma, noise)`` is the smoothed classifier ``g(x) = argmax_c
P(f(noise(x)) = c)`` of a base classifier ``f = model``:

* ``noise="gaussian"``, ``T=None``: ``f(x + sigma e)``, ``e ~ N(0, I)``, ``f`` takes images
  ``[B, C, H, W]`` (an ANN, a direct-coded SNN: RSC-I is this smoother). L2 radius
  ``sigma * Phi^-1(p_lower)``.
* ``noise="gaussian"``, ``T=t``: ``f`` takes ``[t, B, C, H, W]`` of ``t`` fresh draws (RSC-II).
  A shift ``delta`` of ``x`` moves all ``t`` copies, an L2 shift of ``sqrt(t) |delta|`` of the
  joint Gaussian, so the radius is ``sigma * Phi^-1(p_lower) / sqrt(t)``.
* ``noise="bernoulli"``, ``T=t``: ``f`` takes ``[t, B, ...]`` rate-coded spikes ``s ~
  Bernoulli(x)``, ``x`` in ``[0, 1]``; ``sigma`` must be 0 (the code's own variance is
  ``x (1 - x)``). L1 radius ``(p_lower - 1/2) / t``. Mukhoty et al. (ICLR 2024,
  https://openreview.net/forum?id=5bNYf0CqxY; their code, ``utils.py`` ``certify``, computes
  ``l1_rad = p_A - 0.5`` with the same Clopper-Pearson bound) state ``p_lower - 1/2``; that is
  the bound for one Bernoulli draw per pixel. With ``t`` independent draws the coupling of the
  two codes (same uniforms) differs with probability at most ``t |delta|_1``, and it is tight
  near ``x = 0``: one pixel at 0 moved to ``delta`` fires at least once in ``t`` steps with
  probability ``1 - (1 - delta)^t``. So ``p_lower - 1/2`` is sound only for ``t = 1``; we divide
  by ``t`` (``tests/test_robustness.py`` has the counterexample).

``p_lower`` is the one-sided ``1 - alpha`` Clopper-Pearson lower bound on the top class's
probability, ``Beta(alpha; k, n - k + 1)`` quantile; the classifier abstains
(:attr:`Smooth.ABSTAIN`) when ``p_lower <= 1/2``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..layers.weights import eval_mode

__all__ = ["Smooth", "clopper_pearson_lower", "certified_accuracy", "plot_certified_accuracy"]

NOISES = ("gaussian", "bernoulli")


def _scipy_stats():
    try:
        from scipy import stats
    except ImportError as exc:  # scipy ships with the bench extra; certification needs it
        raise ImportError("spikedrive.robustness certification needs scipy (pip install scipy)") from exc
    return stats


def clopper_pearson_lower(k: int, n: int, alpha: float) -> float:
    """One-sided ``1 - alpha`` Clopper-Pearson lower confidence bound on a binomial proportion
    from ``k`` successes in ``n`` trials: the ``alpha`` quantile of ``Beta(k, n - k + 1)``
    (0 when ``k = 0``)."""
    if not (isinstance(n, int) and n >= 1 and isinstance(k, int) and 0 <= k <= n):
        raise ValueError(f"clopper_pearson_lower: need integers 0 <= k <= n, n >= 1, got k={k!r}, n={n!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"clopper_pearson_lower: alpha must be in (0, 1), got {alpha!r}")
    if k == 0:
        return 0.0
    return float(_scipy_stats().beta.ppf(alpha, k, n - k + 1))


class Smooth:
    """A randomized-smoothing classifier around ``model`` (see the module docstring).

    Args:
        model: the base classifier, returning logits ``[B, num_classes]`` (run in eval mode).
        num_classes: number of classes.
        sigma: Gaussian noise level in intensity units (``> 0`` for ``gaussian``, ``0`` for
            ``bernoulli``).
        noise: ``"gaussian"`` or ``"bernoulli"``.
        T: independent draws per sample: ``None`` (gaussian only: ``f`` takes ``[B, ...]``) or
            ``t >= 1`` (``f`` takes ``[t, B, ...]``); required for ``bernoulli``.
        seed: seed of the noise (a ``torch.Generator`` on the model's device).
    """

    ABSTAIN = -1

    def __init__(self, model: nn.Module, num_classes: int, sigma: float, noise: str = "gaussian",
                 T: int | None = None, seed: int = 0) -> None:
        if noise not in NOISES:
            raise ValueError(f"Smooth: noise must be one of {NOISES}, got {noise!r}")
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"Smooth: num_classes must be an integer >= 2, got {num_classes!r}")
        if T is not None and (not isinstance(T, int) or T < 1):
            raise ValueError(f"Smooth: T must be None or an integer >= 1, got {T!r}")
        if noise == "gaussian" and not (isinstance(sigma, (int, float)) and sigma > 0 and math.isfinite(sigma)):
            raise ValueError(f"Smooth: sigma must be a finite noise level > 0 for gaussian noise, got {sigma!r}")
        if noise == "bernoulli":
            if sigma not in (0, 0.0, None):
                raise ValueError(f"Smooth: sigma={sigma!r} has no meaning for bernoulli coding (its variance is "
                                 "x(1-x)); pass sigma=0")
            if T is None:
                raise ValueError("Smooth: bernoulli coding needs T (the Bernoulli draws per pixel), got T=None")
        self.model, self.num_classes, self.noise, self.T = model, num_classes, noise, T
        self.sigma = float(sigma or 0.0)
        self.seed = seed
        self._generator: torch.Generator | None = None

    def _draw(self, x: torch.Tensor, num: int) -> torch.Tensor:
        """``num`` noisy copies of one input ``x`` ``[C, H, W]``: ``[num, C, H, W]`` or
        ``[T, num, C, H, W]``."""
        if self._generator is None or self._generator.device != x.device:
            self._generator = torch.Generator(device=x.device).manual_seed(self.seed)
        shape = (num, *x.shape) if self.T is None else (self.T, num, *x.shape)
        if self.noise == "gaussian":
            return x + self.sigma * torch.randn(shape, generator=self._generator, device=x.device, dtype=x.dtype)
        if x.numel() and (float(x.min()) < 0 or float(x.max()) > 1):
            raise ValueError(f"Smooth: bernoulli coding needs x in [0, 1], got range [{float(x.min()):.3g}, "
                             f"{float(x.max()):.3g}]")
        u = torch.rand(shape, generator=self._generator, device=x.device, dtype=x.dtype)
        return (u < x).to(x.dtype)

    @torch.no_grad()
    def sample_counts(self, x: torch.Tensor, num: int, batch_size: int) -> np.ndarray:
        """How often the base classifier predicts each class on ``num`` noisy copies of ``x``
        ``[C, H, W]``: int64 ``[num_classes]``."""
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"Smooth: batch_size must be an integer >= 1, got {batch_size!r}")
        counts = torch.zeros(self.num_classes, dtype=torch.long)
        with eval_mode(self.model):
            left = num
            while left > 0:
                this = min(batch_size, left)
                logits = self.model(self._draw(x, this))
                counts += torch.bincount(logits.argmax(-1).cpu(), minlength=self.num_classes)[: self.num_classes]
                left -= this
        return counts.numpy()

    def radius(self, p_lower: float) -> float:
        """Certified radius for a lower bound ``p_lower > 1/2`` on the top class's probability:
        L2 ``sigma Phi^-1(p) / sqrt(T)`` (gaussian) or L1 ``(p - 1/2) / T`` (bernoulli)."""
        if self.noise == "gaussian":
            return self.sigma * float(_scipy_stats().norm.ppf(p_lower)) / math.sqrt(self.T or 1)
        return (p_lower - 0.5) / (self.T or 1)

    def predict(self, x: torch.Tensor, n: int, alpha: float, batch_size: int) -> int:
        """Cohen et al.'s PREDICT: the top class of ``n`` noisy samples of ``x`` ``[C, H, W]``,
        or :attr:`ABSTAIN` when a two-sided binomial test of the top two counts at level
        ``alpha`` cannot tell them apart (then the answer is wrong with probability <= alpha)."""
        counts = self.sample_counts(x, n, batch_size)
        top2 = counts.argsort()[::-1][:2]
        n_a, n_b = int(counts[top2[0]]), int(counts[top2[1]])
        if _scipy_stats().binomtest(n_a, n_a + n_b, 0.5).pvalue > alpha:
            return Smooth.ABSTAIN
        return int(top2[0])

    def certify(self, x: torch.Tensor, n0: int, n: int, alpha: float, batch_size: int) -> tuple[int, float]:
        """Cohen et al.'s CERTIFY: guess the class from ``n0`` samples, bound its probability
        from ``n`` fresh samples; ``(class, radius)``, or ``(ABSTAIN, 0.0)`` when ``p_lower <=
        1/2``. With probability ``>= 1 - alpha`` the smoothed classifier returns ``class`` within
        ``radius`` of ``x`` (L2 for gaussian, L1 for bernoulli, intensity units)."""
        c_a = int(self.sample_counts(x, n0, batch_size).argmax())
        counts = self.sample_counts(x, n, batch_size)
        p_lower = clopper_pearson_lower(int(counts[c_a]), n, alpha)
        if p_lower <= 0.5:
            return Smooth.ABSTAIN, 0.0
        return c_a, self.radius(p_lower)


def certified_accuracy(predictions: Sequence[int], radii: Sequence[float], labels: Sequence[int],
                       grid: Sequence[float]) -> list[float]:
    """Fraction of samples certified correct at each radius of ``grid``: prediction equals label
    (an abstention never does) and certified radius ``>= r`` (Cohen et al.'s curve)."""
    p, r, y = (np.asarray(v) for v in (predictions, radii, labels))
    if not (p.shape == r.shape == y.shape) or p.ndim != 1:
        raise ValueError(f"certified_accuracy: predictions, radii and labels must be 1-D of one length, "
                         f"got {p.shape}, {r.shape}, {y.shape}")
    correct = (p == y) & (p != Smooth.ABSTAIN)
    return [float(np.mean(correct & (r >= g))) if len(p) else float("nan") for g in grid]


def plot_certified_accuracy(curves: dict[str, tuple[Sequence[float], Sequence[float]]], path: str | Path,
                            xlabel: str = "radius", title: str = "certified accuracy") -> Path:
    """Write a PNG of certified accuracy vs radius, one line per ``name -> (grid, accuracy)``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, (grid, acc) in curves.items():
        ax.plot(grid, [100 * a for a in acc], label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("certified accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
