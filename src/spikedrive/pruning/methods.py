"""Pruning methods on ``torch.nn.utils.prune`` and the layers they act on.

Each criterion is a :class:`~torch.nn.utils.prune.BasePruningMethod`, so a pruned model keeps
torch's conventions: ``weight_orig`` (a parameter) and ``weight_mask`` (a buffer) in the
``state_dict``, ``weight = weight_orig * weight_mask`` recomputed by a forward pre-hook, and
:func:`torch.nn.utils.prune.remove` to make the zeros permanent. Because the effective weight is
recomputed from the mask at every forward, momentum and weight decay (which act on
``weight_orig``) can never revive a pruned weight, and no optimizer hook is needed.

Only weight matrices and kernels of synaptic layers are prunable; biases and norm parameters
never are (the issue's and the protocol's rule).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import prune

from ..layers import SYNAPTIC_TYPES, Synapse

__all__ = [
    "RankedPruning", "MagnitudePruning", "RandomPruning", "SpikingPruning", "PrunableLayer",
    "prunable_layers", "prune_count", "get_masks", "apply_masks", "make_permanent", "is_pruned",
]


def prune_count(amount: float | int, n: int, who: str = "amount") -> int:
    """How many of ``n`` entries ``amount`` prunes: a fraction in ``[0, 1]`` (rounded to the
    nearest count, as torch does) or an absolute count in ``[0, n]``."""
    if isinstance(amount, bool) or not isinstance(amount, (int, float)):
        raise TypeError(f"{who}: expected a fraction in [0, 1] or an integer count, got {type(amount).__name__}")
    if isinstance(amount, int):
        if not 0 <= amount <= n:
            raise ValueError(f"{who}={amount}: an integer count must be in [0, {n}] (the unpruned entries)")
        return amount
    if not 0.0 <= amount <= 1.0:
        raise ValueError(f"{who}={amount}: a fraction must be in [0, 1]")
    return int(round(amount * n))


class RankedPruning(prune.BasePruningMethod):
    """Unstructured pruning of the ``amount`` lowest-scoring entries among those still unpruned.

    ``amount`` is a fraction of the unpruned entries (or an absolute count), as in torch's own
    methods: applied again to a pruned tensor, torch's ``PruningContainer`` hands
    :meth:`compute_mask` only the remaining entries, so "25% of the remaining" is ``amount=0.25``
    at every round. Subclasses define :meth:`score` (higher = more important).
    """

    PRUNING_TYPE = "unstructured"

    def __init__(self, amount: float | int) -> None:
        prune_count(amount, 1 << 62, type(self).__name__ + ": amount")  # type check only
        self.amount = amount

    def score(self, t: torch.Tensor) -> torch.Tensor:
        """Importance of every entry of ``t`` (same shape)."""
        raise NotImplementedError

    def compute_mask(self, t: torch.Tensor, default_mask: torch.Tensor) -> torch.Tensor:
        """``default_mask`` with the ``amount`` lowest-scoring entries of ``t`` set to 0."""
        k = prune_count(self.amount, t.numel(), f"{type(self).__name__}: amount")
        mask = default_mask.clone(memory_format=torch.contiguous_format)
        if k:
            lowest = torch.topk(self.score(t).reshape(-1), k, largest=False).indices
            mask.view(-1)[lowest] = 0
        return mask


class MagnitudePruning(RankedPruning):
    """Prune the smallest ``|w|`` (IMP's criterion)."""

    def score(self, t: torch.Tensor) -> torch.Tensor:
        return t.abs()


class RandomPruning(RankedPruning):
    """Prune a uniformly random subset; ``seed`` makes the draw reproducible."""

    def __init__(self, amount: float | int, seed: int = 0) -> None:
        super().__init__(amount)
        self.seed = int(seed)

    def score(self, t: torch.Tensor) -> torch.Tensor:
        # A seed rather than a Generator object: pruning methods live in the module's hooks and
        # must deep-copy (the engine copies the model to test the best weights).
        g = torch.Generator().manual_seed(self.seed)
        return torch.rand(t.shape, generator=g).to(t.device)


class SpikingPruning(RankedPruning):
    """Prune the lowest spiking score ``P`` (Yao et al. 2023): pass ``P`` as torch's
    ``importance_scores``; see :func:`spikedrive.pruning.criteria.spiking_scores`."""

    def score(self, t: torch.Tensor) -> torch.Tensor:
        return t


@dataclass(frozen=True)
class PrunableLayer:
    """A weight tensor that may be pruned: ``module.<"weight">``, named ``name`` in the model.

    ``module`` is the bare ``nn.Conv*d`` / ``nn.Linear`` (a ``Synapse``'s inner layer), ``owner``
    the module the model calls (the ``Synapse``, or the bare layer itself); ``encoding`` marks the
    encoding layer and ``classifier`` the last synaptic layer, the two layers the spiking
    criterion leaves to magnitude."""

    name: str
    module: nn.Module
    owner: nn.Module
    encoding: bool = False
    classifier: bool = False

    @property
    def weight(self) -> torch.Tensor:
        """The effective (masked) weight."""
        if is_pruned(self.module):
            return self.module.weight_orig * self.module.weight_mask
        return self.module.weight

    @property
    def mask(self) -> torch.Tensor:
        """The current 0/1 mask (all ones when unpruned), in the weight's dtype."""
        if is_pruned(self.module):
            return self.module.weight_mask
        return torch.ones_like(self.module.weight)


def is_pruned(module: nn.Module) -> bool:
    """Whether ``module.weight`` is reparametrised by a pruning mask."""
    return hasattr(module, "weight_mask") and hasattr(module, "weight_orig")


def prunable_layers(model: nn.Module) -> list[PrunableLayer]:
    """Every synaptic weight of ``model`` in module order: each ``Synapse``'s inner layer and
    every bare conv / transposed conv / linear not inside a ``Synapse``.

    The encoding layer is the ``Synapse`` marked ``encoding=True`` (the first prunable layer when
    none is marked); the classifier is the last prunable layer. Biases and norm layers are never
    included.
    """
    wrapped = {id(m.module): name for name, m in model.named_modules() if isinstance(m, Synapse)}
    found: list[tuple[str, nn.Module, nn.Module, bool]] = []
    for name, m in model.named_modules():
        if isinstance(m, Synapse):
            found.append((name, m.module, m, bool(m.encoding)))
        elif isinstance(m, SYNAPTIC_TYPES) and id(m) not in wrapped:
            found.append((name, m, m, False))
    if not found:
        raise ValueError(f"prunable_layers: {type(model).__name__} has no synaptic layer (Synapse, nn.Conv*d, "
                         "nn.Linear) to prune")
    marked = any(enc for *_, enc in found)
    last = len(found) - 1
    return [PrunableLayer(name or "(model)", inner, owner, enc if marked else i == 0, i == last)
            for i, (name, inner, owner, enc) in enumerate(found)]


def get_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """``layer name -> 0/1 mask`` (a CPU copy) of every prunable layer (ones when unpruned)."""
    return {layer.name: layer.mask.detach().to("cpu", copy=True) for layer in prunable_layers(model)}


def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> nn.Module:
    """Prune ``model`` in place with the given masks (``prune.custom_from_mask``, combined with any
    mask already there); every prunable layer must be named. Returns ``model``."""
    layers = prunable_layers(model)
    names = {layer.name for layer in layers}
    if set(masks) != names:
        missing, extra = sorted(names - set(masks)), sorted(set(masks) - names)
        raise ValueError(f"apply_masks: masks must name every prunable layer of {type(model).__name__}; "
                         f"missing {missing}, unknown {extra}")
    for layer in layers:
        mask = masks[layer.name]
        if tuple(mask.shape) != tuple(layer.module.weight.shape):
            raise ValueError(f"apply_masks: mask of {layer.name!r} has shape {tuple(mask.shape)}, expected "
                             f"{tuple(layer.module.weight.shape)}")
        prune.custom_from_mask(layer.module, "weight", mask.to(layer.module.weight.device))
    return model


def make_permanent(model: nn.Module) -> nn.Module:
    """``prune.remove`` on every pruned layer: ``weight`` becomes a plain parameter holding the
    zeros, and ``weight_orig`` / ``weight_mask`` disappear. Returns ``model``."""
    for layer in prunable_layers(model):
        if is_pruned(layer.module):
            prune.remove(layer.module, "weight")
    return model
