"""Models by name: ``create_model(name, **kwargs)``; each family registers its variants."""

# Importing a family's file registers its variants.
from . import attention_nets, coded, depth, resnet, resnet19, sdt, sdt_v2, small, spikeyolo, trevsnn  # noqa: F401
from .registry import ModelInput, create_model, list_models, model_default_input, register_model
from .small import SmallSpikingCNN

__all__ = ["create_model", "list_models", "register_model", "ModelInput", "model_default_input", "SmallSpikingCNN"]
