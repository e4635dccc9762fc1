"""The pieces every spiking classifier needs: pooling, flatten, dropout over time, readout."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spikedrive.layers import AdaptiveAvgPool2d, AvgPool2d, Dropout, Flatten, MaxPool2d, MeanOverTime


def test_pooling_applies_to_every_time_step():
    x = torch.rand(3, 2, 4, 8, 8)
    for layer, reference in ((MaxPool2d(2), nn.MaxPool2d(2)), (AvgPool2d(2), nn.AvgPool2d(2)),
                             (AdaptiveAvgPool2d(1), nn.AdaptiveAvgPool2d(1))):
        out = layer(x)
        for t in range(3):
            torch.testing.assert_close(out[t], reference(x[t]))


def test_flatten_keeps_time_and_batch():
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).view(2, 3, 4, 5)
    out = Flatten()(x)
    assert out.shape == (2, 3, 20)
    assert torch.equal(out[1, 2], x[1, 2].flatten())
    with pytest.raises(ValueError, match=r"expected \[T, B, ...\]"):
        Flatten()(torch.ones(3))


def test_dropout_shares_one_mask_over_time_and_scales():
    torch.manual_seed(0)
    layer = Dropout(0.5).train()
    x = torch.ones(4, 8, 100)
    out = layer(x)
    kept = out[0] != 0
    for t in range(1, 4):
        assert torch.equal(out[t] != 0, kept)          # the same units dropped at every step
    assert set(out.unique().tolist()) == {0.0, 2.0}     # kept units scaled by 1 / (1 - p)
    assert 0.35 < kept.float().mean() < 0.65
    assert torch.equal(layer.eval()(x), x)
    with pytest.raises(ValueError, match="p must be in"):
        Dropout(1.0)


def test_mean_over_time_readout():
    x = torch.rand(5, 2, 10)
    torch.testing.assert_close(MeanOverTime()(x), x.mean(0))
