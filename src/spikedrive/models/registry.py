"""The model registry: model files register one function per variant.

A variant may also say what input it takes, as the registered dataset it was made for
(:class:`ModelInput`), so tools can measure it on real data without a recipe:

>>> @register_model(default_input=ModelInput("digits"))
... def digits_snn(num_classes: int = 10, T: int = 4, **kwargs) -> SmallSpikingCNN: ...
"""

from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar, overload

from torch import nn

from .._registry import Registry, did_you_mean

__all__ = ["ModelInput", "accepted_arguments", "create_model", "list_models", "model_default_input", "register_model"]

_MODELS: Registry[Callable[..., nn.Module]] = Registry("model")
_INPUTS: dict[str, "ModelInput"] = {}
F = TypeVar("F", bound=Callable[..., nn.Module])


@dataclass(frozen=True)
class ModelInput:
    """The input a model takes, named by the data it was made for.

    Models sit below the engine, so this only *names* the data; the engine's dataset registry
    builds it (``build_datasets`` with ``dataset``, ``dataset_kwargs``) and the task ``task``
    turns a batch into the model's input (``task.model_input(batch)``), e.g. ``[B, 1, 8, 8]``
    digits or time-major event frames ``[T, B, 2, 34, 34]``.

    Attributes:
        dataset: name of a registered dataset (``"digits"``, ``"ndigits"``, ...).
        dataset_kwargs: keyword arguments of that dataset's builder (e.g. ``{"T": 8}`` frames).
        task: the registered task that feeds the model (``"classification"``).
    """

    dataset: str
    dataset_kwargs: dict[str, Any] = field(default_factory=dict)
    task: str = "classification"


@overload
def register_model(fn: F) -> F: ...
@overload
def register_model(*, default_input: ModelInput | None = None) -> Callable[[F], F]: ...


def register_model(fn: F | None = None, *, default_input: ModelInput | None = None) -> Any:
    """Decorator: register ``fn`` under its name; ``create_model(name, **kwargs)`` calls it.

    Use bare (``@register_model``) or with the input the model takes
    (``@register_model(default_input=ModelInput("digits"))``).
    """
    def add(f: F) -> F:
        _MODELS.add(f.__name__, f)
        if default_input is not None:
            _INPUTS[f.__name__] = default_input
        return f

    return add(fn) if fn is not None else add


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of the registered models matching a shell-style ``pattern``."""
    return _MODELS.names(pattern)


def model_default_input(name: str) -> ModelInput | None:
    """The input the registered model ``name`` declared, or ``None`` if it declared none.

    Raises ``ValueError`` (with close names) when ``name`` is not registered.
    """
    _MODELS.get(name)
    return _INPUTS.get(name)


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name`` with keyword arguments (e.g. ``num_classes``, ``T``).

    Raises ``ValueError`` for an unknown name and ``TypeError`` for an argument the model does
    not take, each naming close matches (``digits_snn: unknown argument 'chanels'; did you mean
    'channels'?``).
    """
    fn = _MODELS.get(name)
    accepted = accepted_arguments(fn)
    if accepted is not None:
        for key in kwargs:
            if key not in accepted:
                # One suggestion: a typo has one intended name, and more would read as a menu.
                hint = did_you_mean(key, accepted, n=1) or f"it accepts {sorted(accepted)}"
                raise TypeError(f"{name}: unknown argument {key!r}; {hint}")
    return fn(**kwargs)


def accepted_arguments(fn: Callable[..., Any]) -> set[str] | None:
    """Keyword names ``fn`` accepts; ``None`` when that cannot be known.

    Model functions forward ``**kwargs`` to the class they return, so the class named by the
    return annotation (``-> SmallSpikingCNN``) adds its constructor's parameters. Without such a
    class, or when the class takes ``**kwargs`` too, anything may be accepted.
    """
    params = inspect.signature(fn).parameters.values()
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    if not any(p.kind is p.VAR_KEYWORD for p in params):
        return names
    try:
        target = typing.get_type_hints(fn).get("return")
    except Exception:  # an annotation that does not resolve says nothing about the arguments
        return None
    if not isinstance(target, type):
        return None
    try:
        init = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in init):
        return None
    return names | {p.name for p in init if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
