"""Datasets by name, and the DataLoaders the engine iterates.

The order of an epoch depends only on ``(seed, epoch)``, never on what ran before, so a resumed
run draws the same batches as an uninterrupted one. Under DDP each rank reads its own shard:
``DistributedSampler`` for training (equal step counts on every rank), a padding-free strided
shard for evaluation (so no sample is counted twice in the all-reduced metrics).

Random transforms in DataLoader workers draw from seeds the loader's generator hands out: for
training it is seeded per ``(seed, epoch, rank)`` (ranks apply different draws to their
samples), for evaluation it restarts from a per-``(seed, rank)`` seed at every pass, so an
evaluation never depends on how many passes came before it.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from .._registry import Registry
from ..data.digits import load_digits_split
from ..data.ndigits import load_ndigits_frames
from .distributed import DistContext
from .seeding import derive_seed

__all__ = [
    "ShardSampler",
    "build_datasets",
    "check_splits",
    "epoch_seed",
    "eval_seed",
    "list_datasets",
    "make_eval_loader",
    "make_train_loader",
    "register_dataset",
    "set_loader_epoch",
]

DatasetBuilder = Callable[..., tuple[Dataset, Dataset, Dataset]]
_DATASETS: Registry[DatasetBuilder] = Registry("dataset")
_EMBEDDED: dict[str, str] = {}  # dataset name -> what it embeds (it takes no data_root)
_CHECKS_ROOT: set[str] = set()  # datasets whose builders name their expected layout themselves


def register_dataset(name: str, builder: DatasetBuilder, *, embedded: str | None = None,
                     checks_root: bool = False) -> None:
    """Make ``dataset: <name>`` build ``builder(root, **dataset_kwargs) -> (train, val, test)``.

    ``val`` decides ``best.pt``; ``test`` is evaluated once, after training, and never takes
    part in model selection, so it must be disjoint from both. ``root`` is the recipe's
    ``data_root``: :func:`build_datasets` has already checked that it is an existing folder
    (unless ``dataset_kwargs`` holds ``download: true``, in which case the builder may create
    it), or it is ``None``. A dataset that ships its data says what in ``embedded`` (e.g.
    ``"scikit-learn's 8x8 digits"``): it is then called with ``root=None`` only, and a recipe
    giving it a ``data_root`` is refused instead of silently ignored. A builder that checks
    ``root`` itself (``checks_root=True``) gets it unchecked, so its own message, which names the
    layout it expects under the folder, reaches the user.

    Each rank calls the builder itself, so it must return the same split in every process
    (seed it, don't shuffle). Under DDP the engine calls it on rank 0 first and on the other
    ranks only once rank 0 is done, so a builder that generates or downloads files into a
    cache does it once, and the other ranks find the cache filled.
    """
    _DATASETS.add(name, builder)
    if embedded is not None:
        _EMBEDDED[name] = embedded
    if checks_root:
        _CHECKS_ROOT.add(name)


def list_datasets() -> list[str]:
    """Sorted names of the registered datasets."""
    return _DATASETS.names()


def build_datasets(cfg: Any, ctx: DistContext | None = None) -> tuple[Dataset, Dataset, Dataset]:
    """``(train, val, test)`` for ``cfg.dataset`` with ``cfg.data_root`` and ``cfg.dataset_kwargs``.

    Under DDP pass the process's ``ctx`` (a collective then: every rank must call it): rank 0
    builds first, alone, so a cold cache is generated once instead of by every rank at the
    same time; the other ranks build after it and find the cache.

    Raises:
        ValueError: the dataset is not registered; ``data_root`` is given to a dataset with
            embedded data, or does not exist (it is never created, except by a builder asked
            to ``download``); the builder does not return three datasets.
    """
    builder = _DATASETS.get(cfg.dataset, field="config: dataset")
    root = cfg.data_root
    if root is not None and cfg.dataset in _EMBEDDED:
        raise ValueError(f"config: data_root={root!r} is invalid for dataset={cfg.dataset!r}, which uses embedded "
                         f"data ({_EMBEDDED[cfg.dataset]}) and reads no folder; remove data_root")
    if (root is not None and not os.path.isdir(root) and not cfg.dataset_kwargs.get("download")
            and cfg.dataset not in _CHECKS_ROOT):
        what = "is not a folder" if os.path.exists(root) else "does not exist"
        raise ValueError(f"config: data_root={root!r} {what}; expected an existing folder holding dataset "
                         f"{cfg.dataset!r} (omit data_root to use its default location, if it has one)")

    def build() -> tuple[Dataset, Dataset, Dataset]:
        return check_splits(builder(root, **cfg.dataset_kwargs), f"dataset {cfg.dataset!r} (its builder)")

    return build() if ctx is None else ctx.main_first(build)


def check_splits(splits: Any, what: str) -> tuple[Dataset, Dataset, Dataset]:
    """``splits`` as a ``(train, val, test)`` tuple; ``ValueError`` naming ``what`` otherwise."""
    if not isinstance(splits, (tuple, list)) or len(splits) != 3 or any(s is None for s in splits):
        got = f"{len(splits)} item(s)" if isinstance(splits, (tuple, list)) else type(splits).__name__
        raise ValueError(f"{what}: expected three datasets (train, val, test), the test split held out from "
                         f"model selection; got {got}")
    train, val, test = splits
    return train, val, test


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """A 63-bit seed of the training loader's generator for ``epoch`` on ``rank`` (all >= 0).

    It decides the shuffle of single-process runs and the seeds of DataLoader workers (their
    augmentation draws), so every rank gets its own. Rank 0 keeps the seed of a single-process
    run, ``derive_seed(seed, epoch)``; rank ``r > 0`` adds ``r`` as a third word.
    """
    return derive_seed(seed, epoch) if rank == 0 else derive_seed(seed, epoch, rank)


def eval_seed(seed: int, rank: int = 0) -> int:
    """A 63-bit seed the evaluation loader's generator restarts from at every pass on ``rank``."""
    return derive_seed(seed, 0xE7A1, rank)


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
    """In-order loader over this rank's shard of ``dataset``, every sample exactly once overall.

    Every pass starts its generator afresh from :func:`eval_seed`, so worker seeds (and any
    random transform in the workers) are the same at every evaluation, whatever ran before.
    """
    global_batch = cfg.eval_batch_size or cfg.batch_size
    batch = max(1, global_batch // world_size)
    sampler = ShardSampler(len(dataset), rank, world_size) if world_size > 1 else None
    # A private generator: iterating must not draw from (and so shift) the global torch RNG.
    return _RestartingLoader(
        dataset, pass_seed=eval_seed(cfg.seed, rank), batch_size=batch, shuffle=False, sampler=sampler,
        num_workers=cfg.num_workers, pin_memory=pin_memory, generator=torch.Generator(),
        worker_init_fn=_seed_worker if cfg.num_workers else None, collate_fn=_collate(dataset))


class _RestartingLoader(DataLoader):
    """A DataLoader whose generator is reseeded with ``pass_seed`` at the start of every pass."""

    def __init__(self, *args: Any, pass_seed: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pass_seed = pass_seed

    def __iter__(self) -> Iterator[Any]:
        self.generator.manual_seed(self.pass_seed)
        return super().__iter__()


def set_loader_epoch(loader: DataLoader, seed: int, epoch: int, rank: int = 0, *, epochs: int | None = None) -> None:
    """Set everything epoch-dependent before ``loader``'s next pass: its order is that of
    ``epoch`` (0-based) on ``rank``, independent of earlier passes (under DDP pass the process's
    rank: see :func:`epoch_seed`), and a dataset with a ``set_epoch`` method (e.g. detection's
    mosaic, switched off for the last epochs) is told ``set_epoch(epoch, epochs)``, ``epochs``
    being the run's total (None: ``set_epoch(epoch)``, the dataset keeps its own)."""
    if loader.generator is not None:
        loader.generator.manual_seed(epoch_seed(seed, epoch, rank))
    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)
    dataset = loader.dataset
    if hasattr(dataset, "set_epoch"):
        # set here, in the main process, before the pass: workers start each pass from a fresh
        # copy of the dataset (no persistent_workers), so they see the new state
        if epochs is None:
            dataset.set_epoch(epoch)
        else:
            dataset.set_epoch(epoch, epochs)


register_dataset("digits", lambda root, **kwargs: load_digits_split(**kwargs),
                 embedded="scikit-learn's 8x8 digits, shipped with scikit-learn")
register_dataset("ndigits", load_ndigits_frames)
