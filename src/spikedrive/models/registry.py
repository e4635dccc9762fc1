"""The model registry: model files register one function per variant."""

from __future__ import annotations

from typing import Callable, TypeVar

from torch import nn

from .._registry import Registry

__all__ = ["register_model", "create_model", "list_models"]

_MODELS: Registry[Callable[..., nn.Module]] = Registry("model")
F = TypeVar("F", bound=Callable[..., nn.Module])


def register_model(fn: F) -> F:
    """Decorator: register ``fn`` under its name; ``create_model(name, **kwargs)`` calls it."""
    _MODELS.add(fn.__name__, fn)
    return fn


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of the registered models matching a shell-style ``pattern``."""
    return _MODELS.names(pattern)


def create_model(name: str, **kwargs) -> nn.Module:
    """Build the registered model ``name`` with keyword arguments (e.g. ``num_classes``, ``T``)."""
    return _MODELS.get(name)(**kwargs)
