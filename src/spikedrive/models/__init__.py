"""Models by name: ``create_model(name, **kwargs)``; each family registers its variants."""

from . import small  # noqa: F401  (registers the demo models)
from .small import SmallSpikingCNN
from .registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model", "SmallSpikingCNN"]
