"""saved_bytes_for_backward: what autograd keeps, each storage once, exclusions left out."""

from __future__ import annotations

import torch

from spikedrive.analysis import saved_bytes_for_backward


def test_counts_each_saved_storage_once_and_leaves_out_excluded() -> None:
    x = torch.randn(64, 32, requires_grad=True)
    w = torch.randn(32, 16, requires_grad=True)

    def step() -> torch.Tensor:
        # x @ w saves x and w; x * x saves x twice more: one storage, counted once.
        return (x @ w).sum() + (x * x).sum()

    assert saved_bytes_for_backward(step) == x.nbytes + w.nbytes
    assert saved_bytes_for_backward(step, exclude=[w]) == x.nbytes


def test_views_share_their_base_storage() -> None:
    base = torch.randn(10, 10, requires_grad=True)
    a = base * 1.0  # a fresh storage: 400 bytes
    assert saved_bytes_for_backward(lambda: (a[:5] * a[5:]).sum()) == a.nbytes


def test_graph_free_step_saves_nothing() -> None:
    x = torch.randn(8)
    assert saved_bytes_for_backward(lambda: (x * 2).sum()) == 0
