"""Models by name: ``create_model(name, **kwargs)``; each family registers its variants."""

from . import digits  # noqa: F401  (registers the demo models)
from .digits import DigitsSNN
from .registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model", "DigitsSNN"]
