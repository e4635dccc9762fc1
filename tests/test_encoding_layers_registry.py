"""Encoders, time-distributed layers and the model registry."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import spikedrive
from spikedrive.encoding import PoissonEncoder, direct_encode, latency_encode, poisson_encode
from spikedrive.layers import BatchNorm2d, Linear, Synapse, TimeDistributed


def test_direct_encoding_repeats_input():
    x = torch.rand(3, 2, 4)
    y = direct_encode(x, 5)
    assert y.shape == (5, 3, 2, 4)
    assert all(torch.equal(y[t], x) for t in range(5))


def test_poisson_rate_and_reproducibility():
    x = torch.linspace(0, 1, 11)
    a = poisson_encode(x, 4000, torch.Generator().manual_seed(1))
    b = poisson_encode(x, 4000, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert set(a.unique().tolist()) <= {0.0, 1.0}
    # Mean within 4 standard errors of the Bernoulli mean.
    se = (x * (1 - x) / 4000).sqrt() + 1e-9
    assert ((a.mean(0) - x).abs() <= 4 * se + 1e-6).all()
    c = PoissonEncoder(4000, torch.Generator().manual_seed(2))(x)
    assert not torch.equal(a, c)


def test_poisson_straight_through_gradient():
    x = torch.full((2, 3), 0.3, requires_grad=True)
    poisson_encode(x, 7, straight_through=True).sum().backward()
    assert torch.equal(x.grad, torch.full((2, 3), 7.0))


def test_poisson_rejects_non_probabilities():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        poisson_encode(torch.tensor([1.5]), 3)


def test_latency_single_spike_brighter_earlier():
    x = torch.tensor([1.0, 0.5, 0.0, 0.2])
    s = latency_encode(x, 5)
    assert s.sum(0).tolist() == [1, 1, 0, 1]
    assert s.argmax(0)[:2].tolist() == [0, 2]
    assert s[:, 3].argmax() == 3  # round(0.8 * 4) = 3


def test_time_distributed_equals_per_step_loop():
    conv = nn.Conv2d(2, 3, 3, padding=1)
    x = torch.randn(4, 5, 2, 6, 6)
    y = TimeDistributed(conv)(x)
    torch.testing.assert_close(y, torch.stack([conv(x[t]) for t in range(4)]))


def test_batchnorm_statistics_shared_over_time():
    bn = BatchNorm2d(3)
    x = torch.randn(4, 8, 3, 5, 5) * 3 + 2
    y = bn(x)
    mean = y.transpose(0, 2).reshape(3, -1).mean(1)
    torch.testing.assert_close(mean, torch.zeros(3), atol=1e-5, rtol=0)
    ref = x.permute(2, 0, 1, 3, 4).reshape(3, -1).mean(1)
    torch.testing.assert_close(bn.module.running_mean, 0.1 * ref, rtol=1e-4, atol=1e-5)


def test_synapse_rejects_stateful_or_unknown_modules():
    with pytest.raises(TypeError, match="Conv"):
        Synapse(nn.ReLU())
    lin = Linear(4, 2)
    lin.virtual_steps = 3
    with pytest.raises(ValueError, match="T\\*D"):
        lin(torch.ones(4, 1, 4))


def test_registry_lists_and_creates():
    assert {"digits_snn", "digits_ilif"} <= set(spikedrive.list_models())
    assert spikedrive.list_models("digits_i*") == ["digits_ilif"]
    model = spikedrive.create_model("digits_snn", T=3)
    assert model(torch.rand(2, 1, 8, 8)).shape == (2, 10)
    with pytest.raises(ValueError, match="digits_snn"):
        spikedrive.create_model("digits_snnn")


def test_registry_refuses_duplicates():
    from spikedrive.models import register_model

    with pytest.raises(ValueError, match="already registered"):
        @register_model
        def digits_snn():  # noqa: F811
            return nn.Identity()
