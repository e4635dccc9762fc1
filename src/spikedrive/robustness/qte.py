"""QTE, RSC-SNN's accuracy-robustness trade-off score.

METHODS.md ("RSC-SNN", from a secondary source): the trapezoid area under accuracy vs attack
strength over ``[eta_a, eta_b]``, ``QTE = (eta_b - eta_a) (A(eta_b) + A(eta_a)) / 2``. That is
one trapezoid through the two end points; :func:`qte` computes it (``composite=False``) and,
optionally, the composite trapezoid through every measured point in between (the area under the
measured curve), which is what the one-trapezoid formula approximates.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["qte"]


def qte(eps: Sequence[float], acc: Sequence[float], eta_a: float | None = None, eta_b: float | None = None,
        composite: bool = False) -> float:
    """Area under accuracy vs attack strength between ``eta_a`` and ``eta_b``.

    Args:
        eps: attack strengths (increasing), e.g. L-inf budgets in intensity units.
        acc: accuracy at each strength (fractions or percent: the result has the same unit x eps).
        eta_a, eta_b: interval (default: the first and last ``eps``); accuracies there are linearly
            interpolated from the measured points.
        composite: ``False``: METHODS.md's single trapezoid through the end points; ``True``: the
            composite trapezoid through every measured point in ``[eta_a, eta_b]``.
    """
    e = np.asarray(eps, dtype=float)
    a = np.asarray(acc, dtype=float)
    if e.ndim != 1 or e.shape != a.shape or e.size < 2:
        raise ValueError(f"qte: eps and acc must be 1-D of the same length >= 2, got {e.shape} and {a.shape}")
    if np.any(np.diff(e) <= 0):
        raise ValueError(f"qte: eps must be strictly increasing, got {list(e)}")
    lo = float(e[0]) if eta_a is None else float(eta_a)
    hi = float(e[-1]) if eta_b is None else float(eta_b)
    if not e[0] <= lo < hi <= e[-1]:
        raise ValueError(f"qte: need eps[0] <= eta_a < eta_b <= eps[-1] = [{e[0]}, {e[-1]}], got eta_a={lo}, eta_b={hi}")
    a_lo, a_hi = float(np.interp(lo, e, a)), float(np.interp(hi, e, a))
    if not composite:
        return (hi - lo) * (a_hi + a_lo) / 2.0
    inside = (e > lo) & (e < hi)
    xs = np.concatenate([[lo], e[inside], [hi]])
    ys = np.concatenate([[a_lo], a[inside], [a_hi]])
    return float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2.0))
