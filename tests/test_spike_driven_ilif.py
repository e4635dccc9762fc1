"""I-LIF's integer path and its spike-driven expansion give the same outputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import spikedrive
from spikedrive.layers import BatchNorm2d, Conv2d, Linear, Synapse, TimeDistributed
from spikedrive.neurons import ILIF, LIF, expand_integer_spikes


def randomize_bn(model: nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(m.num_features, generator=g) * 2)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g))


class ConvILIFNet(nn.Module):
    """Conv net with biased convs, BN, grouped conv and pooling between I-LIF layers."""

    def __init__(self, D: int = 4, final_pool: type[nn.Module] = nn.MaxPool2d) -> None:
        super().__init__()
        self.body = nn.Sequential(
            Conv2d(3, 8, 3, bias=True, encoding=True), BatchNorm2d(8), ILIF(D=D),
            Conv2d(8, 16, 3, stride=2, bias=True), BatchNorm2d(16), ILIF(D=D),
            TimeDistributed(nn.MaxPool2d(2)),
            Conv2d(16, 16, 3, groups=4, bias=True), BatchNorm2d(16), ILIF(D=D),
            TimeDistributed(final_pool(4)), TimeDistributed(nn.Flatten()),
            Linear(16, 5),
        )

    def forward(self, x):
        return self.body(x).mean(0)


@pytest.mark.parametrize("final_pool", [nn.MaxPool2d, nn.AvgPool2d])
@pytest.mark.parametrize("T", [1, 2, 3])
@pytest.mark.parametrize("D", [1, 2, 4])
def test_conv_network_integer_equals_spike_driven(T, D, final_pool):
    torch.manual_seed(T * 10 + D)
    model = ConvILIFNet(D, final_pool).eval()
    randomize_bn(model, T)
    x = torch.randn(T, 2, 3, 16, 16) * 2
    with torch.no_grad():
        integer_out = model(x)
        spikedrive.to_spike_driven(model, x)
        spike_out = model(x)
    torch.testing.assert_close(spike_out, integer_out, rtol=1e-5, atol=1e-5)
    # The integers reached D (the test would be vacuous on all-binary activity).
    with torch.no_grad():
        spikedrive.to_integer(model)
        h = model.body[:3](x)
    assert h.max() == D


def test_spike_driven_layers_see_only_binary_maps():
    model = ConvILIFNet(4).eval()
    x = torch.randn(2, 2, 3, 16, 16) * 3
    spikedrive.to_spike_driven(model, x)
    seen = []
    for m in model.modules():
        if isinstance(m, Synapse) and not m.encoding:
            m.register_forward_pre_hook(lambda mod, args: seen.append(args[0].unique()))
    with torch.no_grad():
        model(x)
    assert len(seen) == 3
    for values in seen:
        assert set(values.tolist()) <= {0.0, 1.0}


def test_registered_ilif_model_round_trip():
    model = spikedrive.create_model("digits_ilif", T=2).eval()
    randomize_bn(model, 1)
    x = torch.rand(4, 1, 8, 8) * 4
    with torch.no_grad():
        a = model(x)
        b = spikedrive.to_spike_driven(model, x)(x)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_expansion_is_a_thermometer_code():
    s = torch.tensor([[[0.0, 1.0, 3.0]], [[2.0, 4.0, 0.0]]])  # [T=2, B=1, 3]
    e = expand_integer_spikes(s, 4)
    assert e.shape == (8, 1, 3)
    assert torch.equal(e.unflatten(0, (2, 4)).sum(1), s)
    assert e[:4, 0, 2].tolist() == [1, 1, 1, 0]


def test_conversion_refuses_models_it_would_get_wrong():
    x = torch.rand(2, 1, 1, 6, 6)
    with pytest.raises(ValueError, match="no ILIF"):
        spikedrive.to_spike_driven(nn.Sequential(Conv2d(1, 2, 3), LIF()), x)
    with pytest.raises(ValueError, match="returns I-LIF output directly"):
        spikedrive.to_spike_driven(nn.Sequential(ILIF(D=2), Conv2d(1, 2, 3), ILIF(D=4)), x)
    with pytest.raises(ValueError, match=r"1 \(LIF\) is fed I-LIF spikes with no synaptic layer between"):
        spikedrive.to_spike_driven(nn.Sequential(ILIF(D=2), LIF(), Conv2d(1, 2, 3)), x)
    bare = nn.Sequential(ILIF(D=2), TimeDistributed(nn.Conv2d(1, 2, 3)))
    with pytest.raises(ValueError, match="not wrapped in spikedrive.layers.Synapse"):
        spikedrive.to_spike_driven(bare, x)


def test_binary_neurons_beside_ilif_keep_real_time():
    """A LIF layer between I-LIF layers is fine now: only I-LIF-fed layers sum virtual steps."""
    torch.manual_seed(0)
    mixed = nn.Sequential(Conv2d(1, 4, 3, encoding=True), ILIF(D=4), Conv2d(4, 4, 3), LIF(), TimeDistributed(nn.Flatten()),
                          Linear(4 * 36, 3)).eval()
    x = torch.rand(3, 2, 1, 6, 6) * 3
    with torch.no_grad():
        ref = mixed(x)
        spikedrive.to_spike_driven(mixed, x)
        out = mixed(x)
    torch.testing.assert_close(out, ref)
    assert [m.virtual_steps for m in mixed if isinstance(m, Synapse)] == [1, 4, 1]
