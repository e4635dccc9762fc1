"""to_nir / from_nir / save_nir / load_nir, and NIR interop with snnTorch."""

from __future__ import annotations

import contextlib
import io
import sys

import numpy as np
import pytest
import torch
from torch import nn

from helpers import calibrate_bn
from spikedrive.export import NotExportableError, from_nir, load_nir, save_nir, to_nir
from spikedrive.export.chain import model_chain
from spikedrive.layers import BatchNorm1d, Conv2d, Linear
from spikedrive.layers.readout import AvgPool2d, Flatten, MaxPool2d, MeanOverTime
from spikedrive.layers.spike_products import SpikeProduct
from spikedrive.models.small import SmallSpikingCNN
from spikedrive.neurons import IF, ILIF, LIF

nir = pytest.importorskip("nir", reason="the export extra (nir) is not installed")


def _cnn(T: int = 3) -> tuple[SmallSpikingCNN, torch.Tensor]:
    """The demo architecture, small, with BN statistics from data so that every layer fires."""
    torch.manual_seed(0)
    model = SmallSpikingCNN(T=T, channels=(4, 6), pool_after=(False, True), hidden=16)
    x = torch.rand(5, 1, 8, 8)
    calibrate_bn(model, x)
    return model, x


def _run_nir(net: nn.Module, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return net(model_chain(model).sequence(model, x)).mean(0)


def test_demo_architecture_round_trips_through_a_nir_file(tmp_path):
    model, x = _cnn()
    graph = to_nir(model, x[:1], dt=1e-3)
    kinds = {k: type(v).__name__ for k, v in graph.nodes.items()}
    assert kinds == {"input": "Input", "features_0": "Conv2d", "features_2": "LIF", "features_3": "Conv2d",
                     "features_5": "LIF", "features_6": "AvgPool2d", "features_6_any": "LIF",
                     "features_7": "Flatten", "classifier_0": "Affine", "classifier_2": "LIF",
                     "classifier_3": "Affine", "output": "Output"}
    assert np.allclose(graph.nodes["features_2"].tau, 2e-3) and np.allclose(graph.nodes["features_2"].r, 1.0)
    path = save_nir(graph, tmp_path / "sub" / "demo.nir")
    back = load_nir(path)
    assert back.metadata["readout"] == "mean" and float(back.metadata["dt"]) == 1e-3
    net = from_nir(back).eval()
    with torch.no_grad():
        want = model(x)
        hidden = model.features[:3](model_chain(model).sequence(model, x))
    assert 0.05 < float(hidden.mean()) < 0.95
    torch.testing.assert_close(_run_nir(net, model, x), want, rtol=1e-5, atol=1e-5)


def test_bn_is_folded_into_the_layer_before_it():
    model, x = _cnn()
    graph = to_nir(model, x[:1])
    conv, bn = model.features[0].module, model.features[1].module
    w = graph.nodes["features_0"].weight
    scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().numpy()
    np.testing.assert_allclose(w, conv.weight.detach().numpy() * scale[:, None, None, None], rtol=1e-6)
    np.testing.assert_allclose(graph.nodes["features_0"].bias,
                               (bn.bias - bn.running_mean * bn.weight / torch.sqrt(bn.running_var + bn.eps))
                               .detach().numpy(), rtol=1e-5, atol=1e-6)
    # Linear(bias=False) + BN1d becomes an Affine with the BN's shift as bias
    assert type(graph.nodes["classifier_0"]).__name__ == "Affine"


def test_maxpool_over_spikes_equals_avgpool_and_detector():
    torch.manual_seed(1)
    spikes = (torch.rand(4, 2, 3, 6, 6) < 0.3).float()
    net = nn.Sequential(LIF(tau=1.0, v_threshold=0.5), MaxPool2d(2), Flatten(), Linear(27, 5), MeanOverTime())
    graph = to_nir(net, spikes)
    back = from_nir(graph)
    with torch.no_grad():
        torch.testing.assert_close(back(spikes).mean(0), net(spikes), rtol=1e-6, atol=1e-6)


def test_sequential_with_if_and_avgpool_round_trips():
    torch.manual_seed(2)
    net = nn.Sequential(Conv2d(2, 3, 3, bias=True), IF(v_threshold=0.3), AvgPool2d(2), Flatten(), Linear(12, 4))
    x = torch.rand(5, 2, 2, 4, 4)
    graph = to_nir(net, x)
    assert graph.metadata["readout"] == "none"
    assert type(graph.nodes["1"]).__name__ == "IF" and np.allclose(graph.nodes["1"].r, 1e4)
    with torch.no_grad():
        torch.testing.assert_close(from_nir(graph)(x), net(x), rtol=1e-6, atol=1e-6)


def test_conv1d_and_leaky_integrator_readout_round_trip():
    from spikedrive.export.nodes import LeakyIntegrator
    from spikedrive.layers import Synapse

    torch.manual_seed(3)
    net = nn.Sequential(Synapse(nn.Conv1d(2, 3, 3, padding=1, bias=False)), LIF(tau=2.0, v_threshold=0.4),
                        Flatten(), Linear(3 * 7, 4), LeakyIntegrator(inv_tau=0.5, r=1.0))
    x = torch.rand(6, 2, 2, 7)
    graph = to_nir(net, x, dt=1e-3)
    assert type(graph.nodes["0"]).__name__ == "Conv1d" and type(graph.nodes["4"]).__name__ == "LI"
    assert np.allclose(graph.nodes["4"].tau, 2e-3)
    back = from_nir(graph)
    assert isinstance(back[-1], LeakyIntegrator) and back[-1].inv_tau == pytest.approx(0.5)
    with torch.no_grad():
        assert 0.05 < float(net[:2](x).mean()) < 0.95
        torch.testing.assert_close(back(x), net(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("net, match", [
    (lambda: SmallSpikingCNN(T=1, channels=(4,), pool_after=(False,), hidden=8, neuron=lambda: ILIF(D=4)),
     r"'features\.2' \(ILIF\) cannot be exported: I-LIF emits integers 0\.\.4 per time step"),
    (lambda: SmallSpikingCNN(T=2, channels=(4,), pool_after=(False,), hidden=8, neuron=lambda: LIF(v_reset=None)),
     r"LIF at 'features\.2' uses soft reset \(v_reset=None"),
    (lambda: nn.Sequential(Conv2d(1, 2, 3), MaxPool2d(2)),
     r"'1' \(MaxPool2d\): NIR has no max-pooling; .*its input comes from Synapse"),
    (lambda: nn.Sequential(Linear(64, 8), LIF(), BatchNorm1d(8)),
     r"'2' \(BatchNorm1d\) does not follow a conv or linear layer"),
])
def test_what_nir_cannot_express_is_refused_by_name(net, match):
    model = net()
    model.eval()
    x = torch.rand(2, 1, 8, 8) if isinstance(model, SmallSpikingCNN) else torch.rand(2, 2, 1, 8, 8)
    if isinstance(model, nn.Sequential) and isinstance(model[0].module, nn.Linear):
        x = torch.rand(2, 2, 64)
    with pytest.raises(NotExportableError, match=match):
        to_nir(model, x)


def test_spike_product_is_refused_with_the_reason():
    # A spike product takes two inputs, so no chain holds it; the refusal names it wherever it sits
    from spikedrive.export.to_nir import Step, _refusal

    product = SpikeProduct()

    err = _refusal(Step("blocks.0.attn.qk", product))
    assert isinstance(err, NotExportableError)
    assert "'blocks.0.attn.qk' (SpikeProduct) cannot be exported" in str(err)
    assert "multiplies two spike tensors" in str(err)


def test_attention_model_is_refused_naming_the_attention_module():
    from spikedrive.models import create_model

    model = create_model("tasnn_shd", T=2).eval()
    with pytest.raises(NotExportableError, match=r"'fc_blocks\.0\.attention' \(TemporalAttention\) cannot be exported: "
                                                 r"attention multiplies its input by scores"):
        to_nir(model, torch.rand(2, 1, 700))


def test_other_containers_are_refused_by_type():
    class Wrapper(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(Linear(4, 4), LIF())

        def forward(self, x):
            return self.body(x)

    with pytest.raises(TypeError, match=r"model must be a SmallSpikingCNN or an nn.Sequential .* got Wrapper"):
        to_nir(Wrapper(), torch.rand(2, 1, 4))


def test_model_whose_forward_is_not_its_chain_is_refused():
    class Doubled(SmallSpikingCNN):
        def forward(self, x):
            return 2 * super().forward(x)

    torch.manual_seed(0)
    model = Doubled(T=2, channels=(4,), pool_after=(False,), hidden=8).eval()
    with pytest.raises(ValueError, match=r"does not reproduce model\(sample_input\)"):
        to_nir(model, torch.rand(2, 1, 8, 8) + 0.5)


def test_from_nir_refuses_cuba_lif_and_branches():
    shape = np.ones(3)
    cuba = nir.NIRGraph(nodes={"input": nir.Input(np.array([3])),
                               "c": nir.CubaLIF(tau_syn=shape * 1e-3, tau_mem=shape * 2e-3, r=shape, v_leak=0 * shape,
                                                v_threshold=shape),
                               "output": nir.Output(np.array([3]))},
                        edges=[("input", "c"), ("c", "output")])
    with pytest.raises(TypeError, match=r"node 'c' \(CubaLIF\) cannot be imported: a current-based LIF has a second"):
        from_nir(cuba)
    w = np.eye(3, dtype=np.float32)
    branch = nir.NIRGraph(nodes={"input": nir.Input(np.array([3])), "a": nir.Linear(weight=w),
                                 "b": nir.Linear(weight=w), "output": nir.Output(np.array([3]))},
                          edges=[("input", "a"), ("input", "b"), ("a", "output"), ("b", "output")])
    with pytest.raises(ValueError, match=r"node 'input' branches or merges"):
        from_nir(branch)


def test_load_nir_refuses_a_damaged_file(tmp_path):
    model, x = _cnn()
    path = save_nir(to_nir(model, x[:1]), tmp_path / "m.nir")
    cut = tmp_path / "cut.nir"
    cut.write_bytes(path.read_bytes()[:300])
    with pytest.raises(ValueError, match=r"cut.nir' is not a readable NIR file"):
        load_nir(cut)
    with pytest.raises(FileNotFoundError, match=r"no NIR file at .*nope.nir"):
        load_nir(tmp_path / "nope.nir")


def test_missing_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "nir", None)  # makes `import nir` raise ImportError
    model, x = _cnn()
    with pytest.raises(ImportError, match=r"to_nir needs the optional package 'nir'.*pip install 'spikedrive\[export\]'"):
        to_nir(model, x[:1])


def test_snntorch_imports_our_graph_and_agrees():
    pytest.importorskip("snntorch", reason="snnTorch (export extra's interop package) is not installed")
    from snntorch import utils
    from snntorch.import_nir import import_from_nir

    model, x = _cnn()
    graph = to_nir(model, x[:1])
    with contextlib.redirect_stdout(io.StringIO()):
        net = import_from_nir(graph)
    seq = model_chain(model).sequence(model, x)
    got = []
    with torch.no_grad():
        for b in range(x.shape[0]):  # its Flatten import flattens the batch too: one sample at a time
            utils.reset(net)
            got.append(torch.stack([net(seq[t, b:b + 1])[0].reshape(-1) for t in range(seq.shape[0])]).mean(0))
        want = model(x)
    torch.testing.assert_close(torch.stack(got), want, rtol=1e-4, atol=1e-4)


def test_graph_written_by_snntorch_runs_equal_in_spikedrive(tmp_path):
    snn = pytest.importorskip("snntorch", reason="snnTorch is not installed")
    from snntorch import utils
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    leaky = lambda n, b: snn.Leaky(beta=torch.full((n,), b), threshold=torch.ones(n), init_hidden=True,  # noqa: E731
                                   reset_mechanism="zero")
    ref_net = nn.Sequential(nn.Linear(10, 12), leaky(12, 0.75), nn.Linear(12, 5), leaky(5, 0.5))
    with torch.no_grad():
        ref_net[2].weight.mul_(4.0)
        ref_net[2].bias.add_(0.3)
    x = torch.rand(8, 4, 10) * 3
    with contextlib.redirect_stdout(io.StringIO()):
        graph = export_to_nir(ref_net, x[0, 0])
    ours = from_nir(load_nir(save_nir(graph, tmp_path / "snn.nir")))
    assert isinstance(ours[1], LIF) and ours[1].decay_input is False and ours[1].tau == pytest.approx(4.0)
    with torch.no_grad():
        utils.reset(ref_net)
        want = torch.stack([ref_net(x[t]) for t in range(8)])
        got = ours(x)
    assert 0.05 < float(want.mean()) < 0.95
    assert torch.equal(got, want)
