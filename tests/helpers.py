"""Small helpers shared by several test modules."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from spikedrive.data.events.errors import CorruptFileError


def calibrate_bn(model: nn.Module, x: torch.Tensor) -> None:
    """Set every BN's running statistics from one batch ``x``, so an untrained network fires
    (and an I-LIF network emits integers above 1); leaves the model in eval mode."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        model(x)
    model.eval()


def cut(src: Path, dst: Path, n: int) -> Path:
    """Write the first ``n`` bytes of ``src`` to ``dst`` (a truncated copy)."""
    dst.write_bytes(src.read_bytes()[:n])
    return dst


def raises_at(fn, path: Path, offset: int | None) -> CorruptFileError:
    """Assert ``fn(path)`` raises a CorruptFileError naming the file (and ``offset``, if given)."""
    with pytest.raises(ValueError) as info:
        fn(path)
    err = info.value
    assert isinstance(err, CorruptFileError), repr(err)
    assert path.name in str(err)
    if offset is not None:
        assert err.offset == offset and f"at byte {offset}" in str(err), str(err)
    return err
