"""spikedrive.analysis: firing rates, MACs, SOPs and energy pinned against hand-computed numbers."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

import spikedrive
from helpers import calibrate_bn
from spikedrive.analysis import SpikeMonitor, energy_report, format_energy, plot_firing_rates
from spikedrive.encoding import direct_encode
from spikedrive.layers import Conv2d, Linear, Synapse, TimeDistributed
from spikedrive.neurons import LIF

E_MAC, E_AC = 4.6, 0.9
# Tiny net: conv3x3 (1 -> 2 channels, 4x4 map, padding 1) -> LIF -> flatten -> linear (32 -> 3).
CONV_MACS = (2 * 4 * 4) * (1 * 3 * 3)  # output elements x in_channels x kernel = 288 per step and sample
FC_MACS = 3 * 32  # out_features x in_features = 96


class Tiny(nn.Module):
    """Conv weights zero, biases (2, 0): with LIF(tau=2) channel 0 charges to exactly V_th = 1 and
    fires at every step, channel 1 never does, so the linear layer's input rate is exactly 0.5."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = Conv2d(1, 2, 3, bias=True, encoding=True)
        self.lif = LIF(tau=2.0)
        self.flat = TimeDistributed(nn.Flatten())
        self.fc = Linear(32, 3)
        with torch.no_grad():
            self.conv.module.weight.zero_()
            self.conv.module.bias.copy_(torch.tensor([2.0, 0.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flat(self.lif(self.conv(x))))


def _no_hooks(model: nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_tiny_network_distinct_frames_pinned():
    T, B = 2, 3
    x = torch.rand(T, B, 1, 4, 4)
    r = energy_report(Tiny(), x, batch_dim=1)
    conv, fc = r.layers
    assert (conv.name, conv.kind, conv.encoding) == ("conv", "Conv2d", True)
    assert conv.macs == CONV_MACS * T  # two distinct frames: computed twice
    assert conv.ann_macs == CONV_MACS
    assert conv.energy_pj == pytest.approx(E_MAC * CONV_MACS * T)
    assert (fc.name, fc.encoding, fc.binary) == ("fc", False, True)
    assert fc.input_rate == 0.5
    assert fc.macs == FC_MACS * T
    assert fc.sops == pytest.approx(0.5 * FC_MACS * T)  # rate x MACs x T
    assert r.snn_energy_pj == pytest.approx(E_MAC * CONV_MACS * T + E_AC * 0.5 * FC_MACS * T)
    assert r.ann_energy_pj == pytest.approx(E_MAC * (CONV_MACS + FC_MACS))
    assert r.ratio == pytest.approx(r.snn_energy_pj / r.ann_energy_pj)
    assert r.samples == B
    (lif,) = r.neurons
    assert (lif.name, lif.kind, lif.levels, lif.rate, lif.binary) == ("lif", "LIF", 1, 0.5, True)


def test_identical_frames_count_the_encoding_layer_once():
    T, B = 4, 3
    img = torch.rand(B, 1, 4, 4)
    r = energy_report(Tiny(), direct_encode(img, T), batch_dim=1)
    assert r.layers[0].macs == CONV_MACS  # a direct-encoded image is computed once, not T times
    assert r.layers[1].sops == pytest.approx(0.5 * FC_MACS * T)  # later layers still run T steps
    assert r.snn_energy_pj == pytest.approx(E_MAC * CONV_MACS + E_AC * 0.5 * FC_MACS * T)

    # Repeats are found per sample: sample 0 repeats its first frame, the others change every step.
    x = torch.rand(2, B, 1, 4, 4)
    x[1, 0] = x[0, 0]
    r = energy_report(Tiny(), x, batch_dim=1)
    assert r.layers[0].macs == pytest.approx(CONV_MACS * (B + B - 1) / B)


def test_bare_modules_first_layer_encodes_and_relu_input_counts_its_mean():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(32, 3))
    x = torch.randn(5, 1, 4, 4)
    r = energy_report(model, x)
    conv, fc = r.layers
    assert (conv.name, conv.encoding, fc.name, fc.encoding) == ("0", True, "3", False)
    with torch.no_grad():
        mean = model[2](model[1](model[0](x))).mean().item()
    assert conv.macs == CONV_MACS and fc.macs == FC_MACS
    assert fc.binary is False
    assert fc.sops == pytest.approx(mean * FC_MACS)
    assert r.ann_energy_pj == pytest.approx(E_MAC * (CONV_MACS + FC_MACS))
    assert r.neurons == []


def test_bare_conv_with_time_folded_into_batch():
    class Folded(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # [T, B, 1, 4, 4]
            return self.conv(x.flatten(0, 1))

    T, B = 4, 3
    model = Folded()
    same = energy_report(model, direct_encode(torch.rand(B, 1, 4, 4), T), batch_dim=1)
    assert same.layers[0].macs == CONV_MACS and same.layers[0].steps == T
    varied = energy_report(model, torch.rand(T, B, 1, 4, 4), batch_dim=1)
    assert varied.layers[0].macs == CONV_MACS * T
    assert varied.ann_macs == CONV_MACS


@pytest.mark.parametrize(
    "layer, x",
    [
        (nn.Conv1d(4, 6, 3, groups=2), torch.rand(2, 3, 4, 10)),
        (nn.Conv2d(4, 8, (3, 1), stride=2, padding=1, groups=4), torch.rand(2, 3, 4, 7, 7)),
        (nn.Conv3d(2, 4, (1, 3, 3)), torch.rand(2, 3, 2, 3, 5, 5)),
        (nn.Linear(5, 7), torch.rand(2, 3, 6, 5)),  # tokens [T, B, N, F]
    ],
)
def test_macs_match_the_plain_formula(layer, x):
    syn = Synapse(layer)
    with SpikeMonitor(syn, batch_dim=1) as mon:
        y = syn(x)
    if isinstance(layer, nn.Linear):
        per_out = layer.in_features
    else:
        per_out = layer.in_channels // layer.groups * math.prod(layer.kernel_size)
    (st,) = mon.synapses.values()
    assert st.macs == y.numel() * per_out
    assert st.ann_macs == y.numel() // x.shape[0] * per_out
    assert st.items == x.shape[0] * x.shape[1] and st.steps == x.shape[0]


def test_integer_and_expanded_ilif_give_equal_sops():
    torch.manual_seed(0)
    x = torch.rand(16, 1, 8, 8)
    model = spikedrive.create_model("digits_ilif")
    D = 4
    calibrate_bn(model, x)
    integer = energy_report(model, x)
    spikedrive.to_spike_driven(model)
    expanded = energy_report(model, x)
    assert [l.name for l in integer.layers] == [l.name for l in expanded.layers]
    assert any(not l.binary and not l.encoding for l in integer.layers)  # integers > 1 did occur
    for a, b in zip(integer.layers, expanded.layers):
        assert a.sops == pytest.approx(b.sops, rel=1e-9)
        assert a.energy_pj == pytest.approx(b.energy_pj, rel=1e-9)
        assert a.ann_macs == b.ann_macs
        if not a.encoding:
            # mean integer x MACs per step  ==  mean binary x MACs over D virtual steps
            assert b.macs == D * a.macs and b.steps == D * a.steps
            assert b.input_rate == pytest.approx(a.input_rate / D)
            assert b.binary
    assert integer.total_sops > 0
    assert integer.snn_energy_pj == pytest.approx(expanded.snn_energy_pj, rel=1e-9)
    for a, b in zip(integer.neurons, expanded.neurons):
        assert a.levels == D and a.rate == pytest.approx(b.rate)
        assert b.rate_per_virtual_step == pytest.approx(b.rate / D)


def test_monitor_sums_batches_and_removes_its_hooks():
    model = Tiny()
    with SpikeMonitor(model, batch_dim=1) as mon:
        model(torch.rand(2, 3, 1, 4, 4))
        model(torch.rand(2, 5, 1, 4, 4))
    assert _no_hooks(model)
    assert mon.samples == 8 and mon.forward_calls == 2
    assert mon.firing_rates() == {"lif": 0.5}
    fc = mon.synapses["fc"]
    assert fc.calls == 2 and fc.samples == 8 and fc.macs == FC_MACS * 2 * 8
    assert fc.sops == pytest.approx(0.5 * FC_MACS * 2 * 8)

    with pytest.raises(RuntimeError):
        with SpikeMonitor(model):
            raise RuntimeError("boom")
    assert _no_hooks(model)
    energy_report(model, torch.rand(2, 1, 1, 4, 4), batch_dim=1)
    assert _no_hooks(model)


def test_energy_report_restores_modes():
    model = spikedrive.create_model("digits_snn")
    model.train()
    frozen = model.features[1]
    frozen.eval()
    energy_report(model, torch.rand(2, 1, 8, 8))
    assert model.training and model.classifier[1].training
    assert not frozen.training


def test_table_json_and_units(tmp_path):
    r = energy_report(Tiny(), torch.rand(2, 3, 1, 4, 4), batch_dim=1)
    text = r.table()
    assert "conv" in text and "fc" in text and "lif" in text and "SNN / ANN" in text
    d = json.loads(r.to_json(tmp_path / "e.json"))
    assert d["snn_energy_pj"] == pytest.approx(r.snn_energy_pj)
    assert [row["name"] for row in d["layers"]] == ["conv", "fc"]
    assert json.loads((tmp_path / "e.json").read_text())["samples"] == 3
    assert r.snn_energy_uj == pytest.approx(r.snn_energy_pj * 1e-6)
    assert format_energy(12.0) == "12 pJ" and format_energy(4.56e6) == "4.56 µJ" and format_energy(1.2e9) == "1.2 mJ"


def test_plot_writes_png(tmp_path):
    r = energy_report(Tiny(), torch.rand(2, 3, 1, 4, 4), batch_dim=1)
    for i, src in enumerate((r, {"a": 0.1, "b": 0.3})):
        path = plot_firing_rates(src, tmp_path / f"rates{i}.png")
        data = path.read_bytes()
        assert len(data) > 1000 and data[:8] == b"\x89PNG\r\n\x1a\n"


def test_spike_input_module_counts_its_own_sops():
    from spikedrive.analysis import SpikeInputs

    class Product(SpikeInputs, nn.Module):
        def forward(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
            return q * k

        def count_sops(self, q: torch.Tensor, k: torch.Tensor) -> float:
            return float((q * k).sum())  # one accumulate where both spikes are 1

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc, self.lif, self.product = Linear(4, 4, encoding=True), LIF(), Product()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            s = self.lif(self.enc(x))
            return self.product(s, s)

    model = Net()
    x = torch.randn(2, 3, 4) * 4
    with torch.no_grad():
        both = model.lif(model.enc(x)).sum().item()
    r = energy_report(model, x, batch_dim=1)
    product = r.layers[1]
    assert (product.name, product.kind, product.counted, product.macs) == ("product", "Product", True, 0)
    assert product.sops == pytest.approx(both / 3)
    assert product.energy_pj == pytest.approx(E_AC * both / 3)


def test_wrong_batch_dim_is_an_error_not_a_wrong_energy():
    model = spikedrive.create_model("digits_snn", T=4)
    x = torch.rand(4, 6, 1, 8, 8)  # time-major: T = 4, B = 6
    with pytest.raises(ValueError, match="batch_dim=1"):
        energy_report(model, x)
    assert energy_report(model, x, batch_dim=1).samples == 6
