"""Models by name: ``create_model(name, **kwargs)``; each family registers its variants."""

from . import small  # noqa: F401  (registers the demo models)
from .small import SmallSpikingCNN
from .registry import ModelInput, create_model, list_models, model_default_input, register_model

__all__ = ["create_model", "list_models", "register_model", "ModelInput", "model_default_input", "SmallSpikingCNN"]
from . import trevsnn  # noqa: F401
from . import resnet19  # noqa: F401
from . import resnet, attention_nets  # noqa: F401
