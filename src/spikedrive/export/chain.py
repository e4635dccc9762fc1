"""A model as the flat chain of per-step modules that NIR and the streaming wrapper walk."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..encoding import direct_encode
from ..layers.readout import MeanOverTime
from ..models.small import SmallSpikingCNN

__all__ = ["Step", "ModelChain", "model_chain"]


@dataclass(frozen=True)
class Step:
    """One module of the chain and its dotted path in the model (for error messages)."""

    path: str
    module: nn.Module


@dataclass(frozen=True)
class ModelChain:
    """``steps`` run in order on ``[T, B, ...]``; ``readout`` is ``"mean"`` when the model's
    output is the mean over time of the last step's output, ``"none"`` when it is that output."""

    steps: tuple[Step, ...]
    readout: str

    def sequence(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """The ``[T, B, ...]`` sequence the first step receives for the model input ``x``."""
        if isinstance(model, SmallSpikingCNN) and x.dim() == 4:
            return direct_encode(x, model.T)
        return x


def _flatten(module: nn.Module, prefix: str) -> list[Step]:
    if isinstance(module, nn.Sequential):
        out: list[Step] = []
        for name, child in module.named_children():
            out += _flatten(child, f"{prefix}.{name}" if prefix else name)
        return out
    return [Step(prefix or type(module).__name__, module)]


def model_chain(model: nn.Module) -> ModelChain:
    """The chain of ``model``: a :class:`~spikedrive.models.small.SmallSpikingCNN` (features then
    classifier, mean over time) or an ``nn.Sequential`` over ``[T, B, ...]`` (a trailing
    :class:`~spikedrive.layers.MeanOverTime` becomes the ``"mean"`` readout).

    Raises:
        TypeError: any other container, naming its type: its ``forward`` may do more than run its
            children in order, so the chain would not be the model.
    """
    if isinstance(model, SmallSpikingCNN):
        steps = _flatten(model.features, "features") + _flatten(model.classifier, "classifier")
        return ModelChain(tuple(steps), "mean")
    if isinstance(model, nn.Sequential):
        steps = _flatten(model, "")
        readout = "none"
        if steps and isinstance(steps[-1].module, MeanOverTime):
            steps, readout = steps[:-1], "mean"
        return ModelChain(tuple(steps), readout)
    raise TypeError(
        f"model must be a SmallSpikingCNN or an nn.Sequential over [T, B, ...] whose forward runs its "
        f"children in order, got {type(model).__name__}")
