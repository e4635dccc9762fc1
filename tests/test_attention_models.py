"""The attention networks and MS-ResNets: registration, parameter counts (printed next to the
papers' and SpikingJelly 2.0's), tiny forwards, frame dropping that skips downstream frames,
the energy model's acceptance, and the NASFR / spike statistics."""

from __future__ import annotations

import pytest
import torch

from spikedrive.analysis import energy_report
from spikedrive.layers import unknown_weight_modules
from spikedrive.models import create_model, list_models
from spikedrive.analysis import plot_spike_statistics, spike_statistics
from spikedrive.models.attention_nets import AttentionSNN
from spikedrive.neurons import LIF

# name -> (ours must equal, paper / SpikingJelly figure or None, where that figure comes from)
PARAMS = {
    "ms_resnet18": (11_689_512, "SpikingJelly 2.0 ms_resnet18: 11,689,512 (its layer list: torchvision ResNet-18's)"),
    "ms_resnet34": (21_797_672, "SpikingJelly 2.0 ms_resnet34: 21,797,672 (same derivation)"),
    "ms_resnet104": (77_280_040, "MS-ResNet paper: 77.28M (recalled, not in METHODS.md)"),
    "att_ms_resnet18": (11_863_736, "SpikingJelly 2.0 att_ms_resnet18: 11,863,736 if its spatial conv is bias-free"),
    "att_ms_resnet34": (22_112_328, "not found"),
    "att_ms_resnet104": (78_365_374, "MA-SNN paper Att-Res-SNN-104: 78.37M (recalled, not in METHODS.md)"),
    "snn_gesture": (2_324_065, "not stated"),
    "tasnn_gesture": (2_324_520, "not stated (TA-SNN)"),
    "masnn_gesture": (2_340_535, "SpikingJelly 2.0 masnn_dvs128_gesture: same layer list (if its TA is bias-free)"),
    "asasnn_gesture": (2_329_579, "not stated (ASA-SNN)"),
    "tasnn_cifar10dvs": (2_098_282, "not stated"),
    "tasnn_shd": (109_528, "not stated"),
}


def test_parameter_counts_printed_next_to_references(capsys: pytest.CaptureFixture[str]) -> None:
    rows = []
    for name, (expected, reference) in PARAMS.items():
        with torch.device("meta"):  # count without allocating 78M weights
            model = create_model(name)
        count = sum(p.numel() for p in model.parameters())
        rows.append(f"{name:18s} {count:>12,d}  | {reference}")
        assert count == expected, name
    with capsys.disabled():
        print("\n" + "\n".join(rows))


def test_all_registered() -> None:
    assert set(PARAMS) <= set(list_models())


@pytest.mark.parametrize("attention", ["none", "ta", "ma", "asa"])
def test_tiny_networks_forward_backward_and_energy(attention: str) -> None:
    torch.manual_seed(0)
    model = AttentionSNN(num_classes=3, T=4, image_size=8, channels=(4, 4), pools=(1, 2), hidden=(8,),
                         attention=attention, reduction_t=2, reduction_c=2, spike_output=False,
                         neuron=lambda: LIF.with_decay(0.5, 0.2))  # low threshold, smooth surrogate: tiny nets spike
    x = (torch.rand(4, 2, 2, 8, 8) < 0.3).float()
    out = model(x)
    assert out.shape == (2, 3) and torch.isfinite(out).all()
    out.square().sum().backward()
    assert model.conv_blocks[0].synapse.module.weight.grad.abs().sum() > 0
    assert unknown_weight_modules(model) == []
    report = energy_report(model, x, batch_dim=1)
    assert report.snn_energy_pj > 0


def test_network_frame_dropping_skips_downstream_frames() -> None:
    torch.manual_seed(0)
    model = AttentionSNN(num_classes=3, T=6, image_size=8, channels=(4, 4), pools=(1, 2), hidden=(8,),
                         attention="ta", reduction_t=2).eval()
    x = (torch.rand(6, 2, 2, 8, 8) < 0.3).float()
    first = model.first_ta
    with torch.no_grad():  # frames 1, 2 and 5 score sigmoid(-10), the rest sigmoid(10)
        first.fc1.weight.zero_(); first.fc1.bias.fill_(1.0); first.fc2.weight.zero_()
        first.fc2.bias.copy_(torch.tensor([10.0, -10, -10, 10, 10, -10]))
    seen: list[int] = []
    model.conv_blocks[1].synapse.register_forward_hook(lambda m, a, o: seen.append(a[0].shape[0]))
    full = model(x)
    model.set_drop_threshold(0.5)
    dropped = model(x)
    assert seen == [6, 3]  # the second conv computed 3 frames, not 6
    assert model.last_skipped == 3 and model.frames_skipped_fraction() == 0.5
    assert dropped.shape == full.shape
    with pytest.raises(ValueError, match="drop_threshold needs attention='ta'"):
        AttentionSNN(T=4, attention="ma", drop_threshold=0.5)


def test_resnet_tiny_forward_and_membrane_shortcut() -> None:
    torch.manual_seed(0)
    model = create_model("att_ms_resnet18", num_classes=5, T=2)
    out = model(torch.rand(1, 3, 32, 32))
    assert out.shape == (1, 5)
    block = model.blocks[0]
    x = torch.randn(2, 1, 64, 8, 8)
    # Identity shortcut: the block adds its input membrane (not spikes) to the branch.
    torch.testing.assert_close(block(x) - x, block.attention(block.branch(x)))
    assert unknown_weight_modules(model) == []


def test_shd_network_takes_sequences() -> None:
    model = create_model("tasnn_shd", T=4, hidden=(8, 8))
    assert model(torch.rand(4, 3, 700)).shape == (3, 20)
    with pytest.raises(ValueError, match="expected \\[T=4, B, L=700\\], got shape \\(4, 3, 10\\)"):
        model(torch.rand(4, 3, 10))


def test_nasfr_and_per_step_counts_against_hand_count(tmp_path) -> None:
    torch.manual_seed(0)
    model = AttentionSNN(num_classes=3, T=4, image_size=8, channels=(4,), pools=(2,), hidden=(8,), attention="ta",
                         reduction_t=2)
    xs = [(torch.rand(4, 2, 2, 8, 8) < 0.3).float() for _ in range(2)]
    outs: dict[str, list[torch.Tensor]] = {}
    hooks = [m.register_forward_hook(lambda m, a, o, n=n: outs.setdefault(n, []).append(o.detach()))
             for n, m in model.named_modules() if n.endswith("neuron")]
    stats = spike_statistics(model, xs, batch_dim=1)
    for h in hooks:
        h.remove()
    spikes = sum(float(o.sum()) for v in outs.values() for o in v)
    slots = sum(o.numel() for v in outs.values() for o in v)
    assert stats.total_spikes == pytest.approx(spikes)
    assert stats.nasfr == pytest.approx(spikes / slots)
    per_step = sum(o.flatten(1).sum(1) for v in outs.values() for o in v)
    torch.testing.assert_close(sum(stats.spikes_per_step.values()).float(), per_step)
    assert stats.samples == 4
    png = plot_spike_statistics({"ta": stats}, tmp_path / "s.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
