"""Seeds and RNG snapshots (Python, NumPy, torch CPU, CUDA) for reproducible and resumable runs.

Snapshots hold only plain Python values and tensors, so checkpoints load with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch

__all__ = ["derive_seed", "rank_seed", "rng_state", "seed_everything", "set_deterministic", "set_rng_state"]


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def derive_seed(*words: int) -> int:
    """A 63-bit seed mixed from non-negative integers by NumPy's ``SeedSequence``, which keeps
    nearby keys apart (unlike ``seed + epoch``). Every seed the engine derives comes from here.

    63 bits, so the result is a valid seed for ``torch.Generator.manual_seed`` and for
    :func:`seed_everything`.
    """
    state = np.random.SeedSequence([int(w) for w in words]).generate_state(1, dtype=np.uint64)[0]
    return int(state) & 0x7FFF_FFFF_FFFF_FFFF


def rank_seed(seed: int, rank: int) -> int:
    """A 63-bit seed for ``rank``'s random stream during training, distinct per rank and from
    ``seed`` itself (which initialises the weights identically on every rank)."""
    return derive_seed(seed, 0x5EED, rank)


def set_deterministic(enabled: bool) -> None:
    """Ask torch for deterministic kernels (or stop asking). On CUDA, cuBLAS also needs
    ``CUBLAS_WORKSPACE_CONFIG``, which must be set before its first use: set it here if absent."""
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = False


def rng_state() -> dict[str, Any]:
    """Snapshot of every global generator the training loop may draw from."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore a :func:`rng_state` snapshot (CUDA states only if this process has as many GPUs)."""
    random.setstate(_as_tuple(state["python"]))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def _as_tuple(value: Any) -> Any:
    # Serialisation may turn nested tuples into lists; random.setstate insists on tuples.
    if isinstance(value, (list, tuple)):
        return tuple(_as_tuple(v) for v in value)
    return value
