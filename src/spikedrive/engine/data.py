"""Datasets by name, and the DataLoaders the engine iterates.

The order of an epoch depends only on ``(seed, epoch)``, never on what ran before, so a resumed
run draws the same batches as an uninterrupted one. Under DDP each rank reads its own shard:
``DistributedSampler`` for training (equal step counts on every rank), a padding-free strided
shard for evaluation (so no sample is counted twice in the all-reduced metrics).
"""

from __future__ import annotations

import difflib
import random
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from ..data.digits import load_digits_split
from ..data.ndigits import load_ndigits_frames

__all__ = [
    "ShardSampler",
    "build_datasets",
    "epoch_seed",
    "list_datasets",
    "make_eval_loader",
    "make_train_loader",
    "register_dataset",
    "set_loader_epoch",
]

DatasetBuilder = Callable[..., tuple[Dataset, Dataset]]
_DATASETS: dict[str, DatasetBuilder] = {}


def register_dataset(name: str, builder: DatasetBuilder) -> None:
    """Make ``dataset: <name>`` build ``builder(root, **dataset_kwargs) -> (train, val)``.

    ``root`` is the recipe's ``data_root`` (``None`` for embedded data). Each rank calls the
    builder itself, so it must return the same split in every process (seed it, don't shuffle).
    """
    if name in _DATASETS:
        raise ValueError(f"register_dataset: a dataset named {name!r} is already registered")
    _DATASETS[name] = builder


def list_datasets() -> list[str]:
    """Sorted names of the registered datasets."""
    return sorted(_DATASETS)


def build_datasets(cfg: Any) -> tuple[Dataset, Dataset]:
    """``(train, val)`` for ``cfg.dataset`` with ``cfg.data_root`` and ``cfg.dataset_kwargs``."""
    if cfg.dataset not in _DATASETS:
        close = difflib.get_close_matches(cfg.dataset, _DATASETS, n=3)
        hint = f"did you mean {close}?" if close else f"known datasets: {list_datasets()}"
        raise ValueError(f"config: dataset={cfg.dataset!r} is not registered; {hint}")
    return _DATASETS[cfg.dataset](cfg.data_root, **cfg.dataset_kwargs)


def epoch_seed(seed: int, epoch: int) -> int:
    """A 63-bit seed mixing ``seed`` and ``epoch`` (both >= 0; ``SeedSequence`` keeps nearby
    pairs apart, unlike ``seed + epoch``)."""
    state = np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1, dtype=np.uint64)[0]
    return int(state) & 0x7FFF_FFFF_FFFF_FFFF


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world, rank + 2 world, ...`` of ``range(length)``: disjoint shards
    covering every sample once (shards may differ in length by one)."""

    def __init__(self, length: int, rank: int, world_size: int) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"ShardSampler: rank must be in [0, {world_size}), got {rank}")
        self.length, self.rank, self.world_size = length, rank, world_size

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.length, self.world_size))

    def __len__(self) -> int:
        return len(range(self.rank, self.length, self.world_size))


def _seed_worker(worker_id: int) -> None:
    # torch seeds each worker from the loader's generator; carry that seed to Python and NumPy
    # so augmentations drawn with them are reproducible too.
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def _per_rank(global_batch: int, world_size: int, field: str) -> int:
    if global_batch % world_size:
        raise ValueError(
            f"config: {field}={global_batch} is the global batch and must be divisible by the "
            f"{world_size} processes (ranks); use a multiple of {world_size}")
    return global_batch // world_size


def _collate(dataset: Dataset) -> Callable[[list[Any]], Any] | None:
    """A dataset may say how its samples batch (e.g. time-major sequences ``[T, B, ...]``)."""
    return getattr(dataset, "collate_fn", None)


def make_train_loader(dataset: Dataset, cfg: Any, rank: int = 0, world_size: int = 1,
                      pin_memory: bool = False) -> DataLoader:
    """Shuffled loader of ``batch_size / world_size`` samples per batch; the last partial batch
    is dropped (a batch of one breaks batch norm). Call :func:`set_loader_epoch` before each epoch."""
    batch = _per_rank(cfg.batch_size, world_size, "batch_size")
    sampler = None
    if world_size > 1:
        sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True,
                                     seed=cfg.seed, drop_last=False)
    loader = DataLoader(
        dataset, batch_size=batch, shuffle=sampler is None, sampler=sampler, drop_last=True,
        num_workers=cfg.num_workers, pin_memory=pin_memory, generator=torch.Generator(),
        worker_init_fn=_seed_worker if cfg.num_workers else None, collate_fn=_collate(dataset),
    )
    if len(loader) == 0:
        raise ValueError(
            f"config: batch_size={cfg.batch_size} is larger than the training set's share per rank "
            f"({len(sampler) if sampler is not None else len(dataset)} samples): no full batch to train on")
    return loader


def make_eval_loader(dataset: Dataset, cfg: Any, rank: int = 0, world_size: int = 1,
                     pin_memory: bool = False) -> DataLoader:
    """In-order loader over this rank's shard of ``dataset``, every sample exactly once overall."""
    global_batch = cfg.eval_batch_size or cfg.batch_size
    batch = max(1, global_batch // world_size)
    sampler = ShardSampler(len(dataset), rank, world_size) if world_size > 1 else None
    # A private generator: iterating must not draw from (and so shift) the global torch RNG.
    generator = torch.Generator().manual_seed(cfg.seed)
    return DataLoader(dataset, batch_size=batch, shuffle=False, sampler=sampler,
                      num_workers=cfg.num_workers, pin_memory=pin_memory, generator=generator,
                      worker_init_fn=_seed_worker if cfg.num_workers else None, collate_fn=_collate(dataset))


def set_loader_epoch(loader: DataLoader, seed: int, epoch: int) -> None:
    """Make ``loader``'s next pass the order of ``epoch``, independent of earlier passes."""
    if loader.generator is not None:
        loader.generator.manual_seed(epoch_seed(seed, epoch))
    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)


register_dataset("digits", lambda root, **kwargs: load_digits_split(**kwargs))
register_dataset("ndigits", load_ndigits_frames)
