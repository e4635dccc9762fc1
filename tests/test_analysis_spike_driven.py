"""spikedrive.analysis.assert_spike_driven: passes on binary models, names every offending layer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import spikedrive
from helpers import calibrate_bn
from spikedrive.analysis import NotSpikeDrivenError, SpikeInputs, assert_spike_driven
from spikedrive.layers import Conv2d, Linear, TimeDistributed
from spikedrive.neurons import LIF


@pytest.fixture
def digits() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.rand(16, 1, 8, 8)


def test_digits_snn_is_spike_driven(digits):
    summary = assert_spike_driven(spikedrive.create_model("digits_snn"), digits)
    assert summary.encoding == ("features.0",)
    assert summary.checked == ("features.3", "classifier.0", "classifier.3")


def test_digits_ilif_fails_before_and_passes_after_conversion(digits):
    model = spikedrive.create_model("digits_ilif")
    calibrate_bn(model, digits)
    with pytest.raises(NotSpikeDrivenError) as info:
        assert_spike_driven(model, digits)
    err = info.value
    assert isinstance(err, AssertionError)
    assert "features.3" in str(err) and "features.3" in err.offenders
    assert "features.0" not in err.offenders  # the encoding layer is exempt
    assert all(v not in (0.0, 1.0) for v in err.offenders["features.3"])
    assert set(err.offenders["features.3"]) <= {2.0, 3.0, 4.0}

    spikedrive.to_spike_driven(model)
    summary = assert_spike_driven(model, digits)
    assert "features.3" in summary.checked


class ReluNet(nn.Module):
    """Encoding conv -> LIF -> conv -> ReLU -> linear: the linear layer gets real values."""

    def __init__(self) -> None:
        super().__init__()
        self.enc = Conv2d(1, 4, 3, encoding=True)
        self.lif = LIF()
        self.conv = Conv2d(4, 4, 3)
        self.relu = TimeDistributed(nn.ReLU())
        self.flat = TimeDistributed(nn.Flatten())
        self.head = Linear(4 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.flat(self.relu(self.conv(self.lif(self.enc(x))))))


def test_relu_before_a_layer_is_named(digits):
    x = spikedrive.encoding.direct_encode(digits * 4.0, 2)
    with pytest.raises(NotSpikeDrivenError) as info:
        assert_spike_driven(ReluNet(), x, batch_dim=1)
    assert list(info.value.offenders) == ["head"]
    assert "head (Linear layer)" in str(info.value)


def test_bare_relu_network_fails_on_its_second_layer():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 6 * 6, 3))
    with pytest.raises(NotSpikeDrivenError) as info:
        assert_spike_driven(model, torch.randn(4, 1, 8, 8))
    assert list(info.value.offenders) == ["3"]


def test_binary_means_exactly_zero_or_one():
    class Nudged(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc = Linear(3, 3, encoding=True)
            self.fc = Linear(3, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.enc(x)
            return self.fc(torch.ones_like(x) + 1e-6)

    with pytest.raises(NotSpikeDrivenError, match="fc"):
        assert_spike_driven(Nudged(), torch.rand(1, 2, 3), batch_dim=1)


class Product(SpikeInputs, nn.Module):
    """An attention-style product of two spike tensors, marked by the mix-in."""

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return q * k


class Attention(nn.Module):
    def __init__(self, real_q: bool) -> None:
        super().__init__()
        self.enc = Linear(4, 4, encoding=True)
        self.lif = LIF()
        self.product = Product()
        self.real_q = real_q

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.lif(self.enc(x))
        q = self.enc(x) if self.real_q else s
        return self.product(q, s)


def test_spike_input_modules_are_checked():
    x = torch.rand(2, 3, 4)
    summary = assert_spike_driven(Attention(real_q=False), x, batch_dim=1)
    assert summary.checked == ("product",)
    with pytest.raises(NotSpikeDrivenError) as info:
        assert_spike_driven(Attention(real_q=True), x, batch_dim=1)
    assert list(info.value.offenders) == ["product"]
    assert "spike-input module" in str(info.value)


def test_attribute_marker_works_too():
    class Scale(nn.Module):
        spike_inputs = True

        def forward(self, s: torch.Tensor) -> torch.Tensor:
            return 2 * s

    model = nn.Sequential(nn.Linear(3, 3), Scale())
    with pytest.raises(NotSpikeDrivenError) as info:
        assert_spike_driven(model, torch.randn(2, 3))
    assert list(info.value.offenders) == ["1"]


def test_mode_restored_and_no_synapse_is_an_error(digits):
    model = spikedrive.create_model("digits_snn").train()
    assert_spike_driven(model, digits)
    assert all(m.training for m in model.modules())
    with pytest.raises(ValueError, match="no synaptic layer"):
        assert_spike_driven(nn.ReLU(), digits)


def test_unconverted_ilif_fails_even_when_the_batch_only_shows_binary():
    model = spikedrive.create_model("digits_ilif")
    quiet = torch.zeros(2, 1, 8, 8)  # untrained, zero input: the neurons emit only 0 here
    with pytest.raises(NotSpikeDrivenError, match="to_spike_driven"):
        assert_spike_driven(model, quiet)
    spikedrive.to_spike_driven(model)
    assert_spike_driven(model, quiet)
