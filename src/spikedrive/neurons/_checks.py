"""Argument checks shared by the neuron constructors and the reference functions.

Every message names who complains, the argument, the value and what was expected, e.g.
``LIF: tau must be a finite number >= 1 (time steps), got inf``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch

from .surrogate import Surrogate

__all__ = ["require_steps", "real", "finite", "at_least", "surrogate_instance", "integer_at_least"]


def require_steps(x: torch.Tensor, who: str) -> None:
    """Raise ``ValueError`` unless ``x`` (``[T, ...]``) has at least one time step.

    An empty sequence has no final membrane to return, and the backends would disagree on it
    (an index error in the loop, empty spikes from a kernel)."""
    if x.dim() == 0 or x.shape[0] == 0:
        raise ValueError(
            f"{who}: expected at least one time step (T >= 1) in [T, B, ...], got shape {tuple(x.shape)}"
        )


def real(value: Any, who: str, name: str) -> float:
    """``value`` as a Python float; ``TypeError`` unless it is a real number (a bool is not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{who}: {name} must be a real number, got {value!r} ({type(value).__name__})")
    return float(value)


def finite(value: Any, who: str, name: str, expected: str = "a finite number") -> float:
    """``value`` as a float; ``ValueError`` if it is NaN or infinite."""
    number = real(value, who, name)
    if not math.isfinite(number):
        raise ValueError(f"{who}: {name} must be {expected}, got {number}")
    return number


def at_least(value: Any, who: str, name: str, low: float, *, strict: bool = False, unit: str = "") -> float:
    """``value`` as a finite float ``>= low`` (``> low`` when ``strict``)."""
    suffix = f" ({unit})" if unit else ""
    expected = f"a finite number {'>' if strict else '>='} {low:g}{suffix}"
    number = finite(value, who, name, expected)
    if number < low or (strict and number == low):
        raise ValueError(f"{who}: {name} must be {expected}, got {number}")
    return number


def integer_at_least(value: Any, who: str, name: str, low: int) -> int:
    """``value`` as a Python int ``>= low``; ``TypeError`` for a bool or a non-integer."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{who}: {name} must be an integer >= {low} (not a bool), got {value!r} ({type(value).__name__})"
        )
    number = int(value)
    if number < low:
        raise ValueError(f"{who}: {name} must be an integer >= {low}, got {number}")
    return number


def surrogate_instance(value: Any, who: str) -> Surrogate:
    """``value`` unless it is not a :class:`Surrogate` instance (a name, a class, a function)."""
    if isinstance(value, Surrogate):
        return value
    expected = f"{who}: surrogate must be a Surrogate instance from spikedrive.neurons"
    if isinstance(value, type) and issubclass(value, Surrogate):
        raise TypeError(f"{expected}, got the class {value.__name__}; pass an instance: surrogate={value.__name__}()")
    raise TypeError(
        f"{expected}, got {value!r} ({type(value).__name__}); pass one such as surrogate=Atan() or Sigmoid(alpha=4.0)"
    )
