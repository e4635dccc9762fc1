"""SpikeYOLO deployment: RepConv re-parameterisation, the spike-driven conversion, energy with
I-LIF's D virtual steps, and the same-architecture ANN. Tiny networks (``pico``) on 64x64 images."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spikedrive.analysis import assert_spike_driven, energy_report
from spikedrive.layers import Synapse, to_spike_driven
import spikedrive.models.spikeyolo  # noqa: F401  (registers the variants)
from spikedrive.models.registry import create_model
from spikedrive.models.spikeyolo_blocks import BNPad, RepConv, SepRepConv
from spikedrive.neurons import ILIF
from helpers import calibrate_bn

torch.set_num_threads(1)


def _randomize_bn(model: nn.Module, seed: int) -> None:
    """Give every batch norm non-trivial affine parameters and running statistics."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.3)
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)


def _model(seed: int = 0, T: int = 2) -> tuple[nn.Module, torch.Tensor]:
    # float64: the integer pass and the D binary passes round differently in float32, and a
    # membrane within an ulp of a rounding boundary would flip an integer (see test_spikeyolo_gpu.py).
    torch.manual_seed(seed)
    model = create_model("spikeyolo_pico", num_classes=2, T=T).double()
    x = torch.rand(2, 3, 64, 64, dtype=torch.float64)
    calibrate_bn(model, x)  # an untrained net's default statistics would silence every neuron
    return model, x


def test_bnpad_is_batch_norm_of_the_zero_padded_input() -> None:
    layer = BNPad(4, pad=1)
    _randomize_bn(layer, 1)
    layer.eval()
    x = torch.randint(0, 5, (2, 3, 4, 5, 6)).float()
    bn = layer.bn.module
    ref = F.batch_norm(F.pad(x.flatten(0, 1), [1] * 4), bn.running_mean, bn.running_var, bn.weight, bn.bias,
                       eps=bn.eps).unflatten(0, (2, 3))
    torch.testing.assert_close(layer(x), ref)


@pytest.mark.parametrize("block", [RepConv(5, 7), SepRepConv(6, 3)], ids=["RepConv", "SepRepConv"])
def test_fused_block_equals_the_block(block: nn.Module) -> None:
    _randomize_bn(block, 2)
    block.eval()
    torch.manual_seed(0)
    x = torch.randint(0, 5, (2, 3, block.bnpad.bn.module.num_features if isinstance(block, SepRepConv)
                             else block.conv1.module.in_channels, 6, 5)).float()
    fused = block.fuse()
    assert isinstance(fused, Synapse) and fused.module.kernel_size == (3, 3) and fused.module.padding == (1, 1)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), block(x), rtol=1e-5, atol=1e-5)


def test_reparameterize_keeps_the_detector_outputs() -> None:
    model, x = _model()
    _randomize_bn(model, 3)
    before_reps = sum(isinstance(m, (RepConv, SepRepConv)) for m in model.modules())
    with torch.no_grad():
        ref = model(x)
    assert model.reparameterize() is model
    # 4 AllConvBlocks (one SepRepConv each) and 5 ConvBlocks (one SepRepConv, two RepConvs each)
    assert before_reps == 4 + 5 * 3 and not any(isinstance(m, (RepConv, SepRepConv)) for m in model.modules())
    with torch.no_grad():
        out = model(x)
    for a, b in zip(out, ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_training_form_is_refused_by_the_conversion() -> None:
    """SepRepConv's batch norm reads I-LIF integers directly: no expansion can be exact there."""
    model, x = _model()
    with pytest.raises(ValueError, match=r"stage1\.0\.sep\.body\.7\.conv1 .*batch_norm on I-LIF output"):
        to_spike_driven(model, x)
    assert not any(m.spike_driven for m in model.modules() if isinstance(m, ILIF))


def test_spike_driven_detector_equals_integer_inference() -> None:
    model, x = _model()
    model.reparameterize()
    levels: list[float] = []
    hooks = [m.register_forward_hook(lambda m, a, out: levels.append(out.max().item()))
             for m in model.modules() if isinstance(m, ILIF)]
    with torch.no_grad():
        ref = model(x)
    for h in hooks:
        h.remove()
    assert max(levels) == 4.0  # the integers really go above 1, so the expansion has work to do
    to_spike_driven(model, x)
    with torch.no_grad():
        out = model(x)
    for a, b in zip(out, ref):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    summary = assert_spike_driven(model, x)
    synapses = [n for n, m in model.named_modules() if isinstance(m, Synapse)]
    assert summary.encoding == ("stem.0",)
    assert len(summary.checked) == len(synapses) - 1


def test_energy_counts_the_d_virtual_steps() -> None:
    model, x = _model(T=2)
    model.reparameterize()
    fed: list[torch.Tensor] = []
    model.stage2[0][0].register_forward_hook(lambda m, a, out: fed.append(out))  # the neuron before stage2.0.1
    integer = energy_report(model, x)
    row = next(r for r in integer.layers if r.name == "stage2.0.1")
    conv = model.stage2[0][1].module
    out_h = x.shape[-1] // 8
    macs = 2 * conv.out_channels * out_h * out_h * conv.in_channels * 9  # T = 2 steps, per sample
    assert row.steps == 2 and row.macs == pytest.approx(macs)
    assert row.sops == pytest.approx(fed[0].mean().item() * macs, rel=1e-6)  # mean integer x MACs
    to_spike_driven(model, x)
    binary = energy_report(model, x)
    row_b = next(r for r in binary.layers if r.name == "stage2.0.1")
    assert row_b.steps == 2 * 4 and row_b.binary and row_b.input_rate <= 1.0
    assert row_b.sops == pytest.approx(row.sops, rel=1e-6)
    assert binary.snn_energy_pj == pytest.approx(integer.snn_energy_pj, rel=1e-6)
    assert integer.encoding_macs > 0 and [r.name for r in integer.layers if r.encoding] == ["stem.0"]


def test_ann_twin_has_the_snn_macs_and_costs_more() -> None:
    snn, x = _model(T=1)
    torch.manual_seed(0)
    ann = create_model("spikeyolo_pico_ann", num_classes=2).double()
    calibrate_bn(ann, x)
    snn.reparameterize()
    ann.reparameterize()
    e_snn, e_ann = energy_report(snn, x), energy_report(ann, x)
    assert [r.name for r in e_ann.layers] == [r.name for r in e_snn.layers]
    assert e_ann.ann_macs == pytest.approx(e_snn.ann_macs)
    assert e_snn.ann_energy_pj == pytest.approx(4.6 * e_snn.ann_macs)
    assert e_snn.snn_energy_pj < e_snn.ann_energy_pj


def test_conversion_traces_on_the_models_own_example() -> None:
    model, x = _model()
    model.reparameterize()
    example = model.example_input()
    assert example.shape == (1, 3, 64, 64) and example.dtype == torch.float64
    with torch.no_grad():
        ref = model(x)
    to_spike_driven(model)  # no example given: SpikeYOLO.example_input() is traced
    assert all(m.spike_driven for m in model.modules() if isinstance(m, ILIF))
    with torch.no_grad():
        for a, b in zip(model(x), ref):
            torch.testing.assert_close(a, b)
