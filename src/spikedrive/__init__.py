"""spikedrive: spike-driven deep learning on PyTorch.

Tensors are time-major (``[T, B, ...]``); neurons are multi-step modules that keep no state
between calls; models are created by name.
"""

from .layers import to_integer, to_spike_driven
from .models import create_model, list_models, register_model

__version__ = "0.1.0"
__all__ = ["create_model", "list_models", "register_model", "to_spike_driven", "to_integer", "__version__"]
