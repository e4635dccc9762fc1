"""``prune_model``: one call for the common case, any criterion, global or per layer."""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn
from torch.nn.utils import prune

from .criteria import CRITERIA, LayerStats, magnitude_scores, measure_spiking_stats, spiking_scores
from .methods import MagnitudePruning, PrunableLayer, RandomPruning, SpikingPruning, prunable_layers, prune_count

__all__ = ["prune_model", "SCOPES"]

SCOPES = ("global", "layer")


def prune_model(model: nn.Module, amount: float | int, criterion: str = "magnitude", scope: str = "global",
                data: Iterable[Any] | None = None, *, seed: int = 0, keep_magnitude: bool = True,
                stats: dict[str, LayerStats] | None = None) -> nn.Module:
    """Prune ``amount`` of the still-unpruned synaptic weights of ``model`` in place.

    Masks go through ``torch.nn.utils.prune`` (``weight_orig``, ``weight_mask``, a forward
    pre-hook), combined with any earlier mask, so calling this once per round with
    ``amount=0.25`` prunes 25% of the remaining weights each time. Biases and norm layers are
    never pruned.

    Args:
        model: a model whose weight layers are ``Synapse`` (or bare conv / linear) layers.
        amount: fraction in ``[0, 1]`` of the unpruned weights to prune (on a dense model, the
            resulting sparsity), or an absolute count.
        criterion: ``"magnitude"`` (smallest ``|w|``), ``"random"``, or ``"spiking"`` (Yao et al.'s
            ``P``, see :mod:`spikedrive.pruning.criteria`; needs ``data``). Under ``"spiking"`` the
            encoding layer and the classifier keep magnitude (SF-IMP-1) when ``keep_magnitude``.
        scope: ``"global"`` (one ranking over all layers) or ``"layer"`` (``amount`` of each layer).
            Global spiking pruning removes from the encoding layer and the classifier exactly the
            weights global magnitude pruning would remove there, and ranks the rest of the count
            by ``P`` over the other layers; the total pruned is the same as magnitude's.
        data: batches (model inputs, or ``(x, y)`` pairs) for the spiking criterion's statistics.
        seed: seed of the random criterion.
        keep_magnitude: whether the spiking criterion leaves the encoding layer and the
            classifier to magnitude.
        stats: precomputed statistics (:func:`measure_spiking_stats`) instead of ``data``.

    Returns:
        ``model``, pruned.

    Raises:
        ValueError: an unknown criterion or scope, an amount out of range, or the spiking
            criterion without data or with a layer that feeds no spiking neuron.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"prune_model: criterion={criterion!r}; expected one of {CRITERIA}")
    if scope not in SCOPES:
        raise ValueError(f"prune_model: scope={scope!r}; expected one of {SCOPES}")
    layers = prunable_layers(model)
    remaining = sum(int(layer.mask.sum()) for layer in layers)
    prune_count(amount, remaining if scope == "global" else min(int(l.mask.sum()) for l in layers),
                "prune_model: amount")
    if criterion == "magnitude":
        _by_method(layers, amount, scope, MagnitudePruning, {})
    elif criterion == "random":
        _by_method(layers, amount, scope, RandomPruning, {"seed": seed})
    else:
        if stats is None:
            if data is None:
                raise ValueError("prune_model: criterion='spiking' needs data= (training batches) for its "
                                 "firing-rate and membrane statistics")
            stats = measure_spiking_stats(model, data, layers)
        _spiking(layers, amount, scope, stats, keep_magnitude)
    return model


def _by_method(layers: list[PrunableLayer], amount: float | int, scope: str, method: type, kwargs: dict) -> None:
    if scope == "global":
        prune.global_unstructured([(layer.module, "weight") for layer in layers], pruning_method=method,
                                  amount=amount, **kwargs)
        return
    for i, layer in enumerate(layers):
        extra = {"seed": kwargs["seed"] + i} if "seed" in kwargs else {}
        method.apply(layer.module, "weight", amount=amount, **extra)


def _spiking(layers: list[PrunableLayer], amount: float | int, scope: str, stats: dict[str, LayerStats],
             keep_magnitude: bool) -> None:
    exempt = [l for l in layers if keep_magnitude and (l.encoding or l.classifier)]
    scored = [l for l in layers if l not in exempt]
    missing = [l.name for l in scored if l.name not in stats]
    if missing:
        raise ValueError(f"prune_model: criterion='spiking' found no spiking neuron fed by {missing} (through an "
                         "optional batch norm), so P is undefined there")
    raw = {l.name: spiking_scores(l, stats[l.name]) for l in scored}
    if scope == "layer":
        scores = {l.name: _lexicographic_rank([raw[l.name]], [magnitude_scores(l)])[0] for l in scored}
    else:
        ranks = _lexicographic_rank([raw[l.name] for l in scored], [magnitude_scores(l) for l in scored])
        scores = {l.name: r for l, r in zip(scored, ranks)}
    if scope == "layer":
        for l in exempt:
            MagnitudePruning.apply(l.module, "weight", amount=amount)
        for l in scored:
            SpikingPruning.apply(l.module, "weight", amount=amount, importance_scores=scores[l.name])
        return
    counts = _global_magnitude_counts(layers, amount)
    for l in exempt:
        MagnitudePruning.apply(l.module, "weight", amount=counts[l.name])
    if scored:
        k = sum(counts[l.name] for l in scored)
        prune.global_unstructured([(l.module, "weight") for l in scored], pruning_method=SpikingPruning, amount=k,
                                  importance_scores={(l.module, "weight"): scores[l.name] for l in scored})


def _lexicographic_rank(primary: list[torch.Tensor], secondary: list[torch.Tensor]) -> list[torch.Tensor]:
    """Rank (0 = least important) of every entry by ``primary`` and, among equal ``primary``,
    by ``secondary``; one float64 tensor per input, same shapes. The spiking score is exactly 0
    for every weight of a silent input channel or of a channel whose membrane never varies, and
    a tie broken by position would prune arbitrary weights; magnitude breaks it instead."""
    p = torch.cat([t.reshape(-1).double() for t in primary])
    s = torch.cat([t.reshape(-1).double().to(p.device) for t in secondary])
    order = torch.argsort(s, stable=True)
    order = order[torch.argsort(p[order], stable=True)]
    rank = torch.empty_like(p)
    rank[order] = torch.arange(p.numel(), dtype=torch.float64, device=p.device)
    out, start = [], 0
    for t in primary:
        out.append(rank[start:start + t.numel()].view(t.shape))
        start += t.numel()
    return out


def _global_magnitude_counts(layers: list[PrunableLayer], amount: float | int) -> dict[str, int]:
    """How many unpruned weights of each layer global magnitude pruning of ``amount`` removes."""
    values = [magnitude_scores(l)[l.mask.bool()] for l in layers]
    flat = torch.cat([v.reshape(-1) for v in values])
    k = prune_count(amount, flat.numel(), "prune_model: amount")
    hit = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    if k:
        hit[torch.topk(flat, k, largest=False).indices] = True
    counts, start = {}, 0
    for l, v in zip(layers, values):
        counts[l.name] = int(hit[start:start + v.numel()].sum())
        start += v.numel()
    return counts
