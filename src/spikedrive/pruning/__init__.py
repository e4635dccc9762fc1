"""Pruning and lottery tickets: masks through ``torch.nn.utils.prune``, the magnitude, random and
spiking (Yao et al. 2023) criteria, iterative pruning with rewinding on the engine, the random
re-initialisation control, per-layer sparsity and the energy of sparse networks.

>>> prune_model(model, 0.25, criterion="spiking", scope="global", data=train_batches)
>>> print(sparsity_report(model))
"""

from .api import SCOPES, prune_model
from .criteria import CRITERIA, LayerStats, magnitude_scores, measure_spiking_stats, spiking_scores
from .imp import ImpResult, PruneConfig, RoundResult, load_prune_config, round_amounts, run_imp
from .methods import (
    MagnitudePruning, PrunableLayer, RandomPruning, RankedPruning, SpikingPruning, apply_masks, get_masks,
    is_pruned, make_permanent, prunable_layers, prune_count,
)
from .report import LayerSparsity, SparsityReport, sparse_energy_report, sparsity_report

__all__ = [
    "prune_model", "CRITERIA", "SCOPES",
    "RankedPruning", "MagnitudePruning", "RandomPruning", "SpikingPruning",
    "PrunableLayer", "prunable_layers", "prune_count", "get_masks", "apply_masks", "make_permanent", "is_pruned",
    "LayerStats", "measure_spiking_stats", "spiking_scores", "magnitude_scores",
    "PruneConfig", "RoundResult", "ImpResult", "run_imp", "load_prune_config", "round_amounts",
    "SparsityReport", "LayerSparsity", "sparsity_report", "sparse_energy_report",
]
