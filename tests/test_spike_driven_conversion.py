"""The spike-driven conversion and the energy model: correct or refuse (issue 16, items 1-7).

Each test names the defect it pins; every one failed on the code before the fix."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import spikedrive
from spikedrive.analysis import NotSpikeDrivenError, assert_spike_driven, energy_report
from spikedrive.layers import (
    BatchNorm2d, Conv2d, Linear, MeanOverTime, SpikeMatmul, SpikeProduct, Synapse, TimeDistributed,
)
from spikedrive.neurons import ILIF


def _randomize_bn(model: nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 1.0)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.5 + 0.5)


# -- 1. only layers fed by I-LIF sum virtual steps --------------------------------------------

def test_ilif_ndigits_on_binary_frames_keeps_real_time_in_the_first_conv():
    torch.manual_seed(0)
    model = spikedrive.create_model("ndigits_snn", T=8, neuron=lambda: ILIF(D=4)).eval()
    _randomize_bn(model)
    x = (torch.rand(8, 3, 2, 34, 34) < 0.3).float()  # binary event frames, T = 8
    with torch.no_grad():
        reference = model(x)
        spikedrive.to_spike_driven(model)  # traced on the model's own example input
        converted = model(x)
    first = model.features[0]
    assert isinstance(first, Synapse) and first.virtual_steps == 1
    assert [m.virtual_steps for m in model.modules() if isinstance(m, Synapse)][1:] == [4, 4, 4, 4]
    torch.testing.assert_close(converted, reference, rtol=1e-4, atol=1e-4)
    assert torch.equal(converted.argmax(1), reference.argmax(1))
    assert_spike_driven(model, x, batch_dim=1)


# -- 2. products of spike tensors --------------------------------------------------------------

class _TwoBranches(nn.Module):
    """Two I-LIF branches multiplied elementwise, then a synapse and a readout."""

    def __init__(self, product: nn.Module) -> None:
        super().__init__()
        self.q = nn.Sequential(Conv2d(1, 4, 3, encoding=True), BatchNorm2d(4), ILIF(D=4))
        self.k = nn.Sequential(Conv2d(1, 4, 3, encoding=True), BatchNorm2d(4), ILIF(D=4))
        self.product = product
        self.head = nn.Sequential(ILIF(D=4), TimeDistributed(nn.Flatten()), Linear(4 * 36, 3), MeanOverTime())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.product(self.q(x), self.k(x)))


class _NaiveProduct(nn.Module):
    spike_inputs = True

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a * b


def test_spike_input_module_that_cannot_expand_is_refused_by_name():
    model = _TwoBranches(_NaiveProduct()).eval()
    x = torch.rand(2, 2, 1, 6, 6) * 4
    with pytest.raises(ValueError, match=r"product \(_NaiveProduct\) is a spike-input module fed by I-LIF"):
        spikedrive.to_spike_driven(model, x)
    # Refused means untouched: it still runs in integer mode.
    assert not any(m.spike_driven for m in model.modules() if isinstance(m, ILIF))


class _BareMultiply(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Sequential(Conv2d(1, 4, 3, encoding=True), ILIF(D=4))
        self.head = nn.Sequential(TimeDistributed(nn.Flatten()), Linear(4 * 36, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.a(x)
        return self.head(s * s).mean(0)


def test_a_bare_product_of_spike_tensors_is_refused():
    with pytest.raises(ValueError, match="multiplies two I-LIF spike tensors"):
        spikedrive.to_spike_driven(_BareMultiply().eval(), torch.rand(2, 2, 1, 6, 6) * 4)


def test_spike_product_expands_the_d_by_d_pairs_exactly():
    torch.manual_seed(1)
    model = _TwoBranches(SpikeProduct()).eval()
    _randomize_bn(model)
    x = torch.rand(3, 2, 1, 6, 6) * 6
    with torch.no_grad():
        reference = model(x)
        integers = model.q(x) * model.k(x)
        assert integers.max() >= 4  # products of integers above 1 occur: the test is not vacuous
        spikedrive.to_spike_driven(model, x)
        converted = model(x)
    assert model.product.input_virtual_steps == (4, 4)
    torch.testing.assert_close(converted, reference, rtol=1e-5, atol=1e-5)
    assert_spike_driven(model, x, batch_dim=1)


def test_spike_product_and_matmul_against_plain_sums_of_pairs():
    a_int = torch.tensor([[2.0, 3.0, 0.0]])          # [T=1, 3]
    b_int = torch.tensor([[3.0, 1.0, 4.0]])
    expand = spikedrive.neurons.expand_integer_spikes
    prod = SpikeProduct()
    prod.input_virtual_steps = (4, 4)
    a, b = expand(a_int.unsqueeze(1), 4).squeeze(1), expand(b_int.unsqueeze(1), 4).squeeze(1)
    assert prod(a, b).tolist() == [[6.0, 3.0, 0.0]]        # a b, not min(a, b) = [2, 1, 0]
    assert (a * b).sum(0).tolist() == [2.0, 1.0, 0.0]       # what matching steps would give
    mm = SpikeMatmul()
    mm.input_virtual_steps = (2, 2)
    qa = torch.randint(0, 3, (2, 1, 3, 4)).float()          # [T=2, B=1, N=3, K=4] integers 0..2
    kb = torch.randint(0, 3, (2, 1, 4, 5)).float()
    out = mm(expand(qa, 2), expand(kb, 2))
    torch.testing.assert_close(out, qa @ kb)
    assert mm.count_sops(expand(qa, 2), expand(kb, 2)) == float((qa @ kb).sum())


# -- 3. transposed convolutions; unknown weight modules ----------------------------------------

class _UpNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Sequential(Conv2d(1, 4, 3, encoding=True), BatchNorm2d(4), ILIF(D=4))
        self.up = Synapse(nn.ConvTranspose2d(4, 2, 2, stride=2, bias=True))
        self.bn = BatchNorm2d(2)
        self.out = ILIF(D=4)
        self.head = nn.Sequential(TimeDistributed(nn.Flatten()), Linear(2 * 144, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.out(self.bn(self.up(self.enc(x))))).mean(0)


def test_transposed_convolution_sums_virtual_steps_and_is_counted():
    torch.manual_seed(2)
    model = _UpNet().eval()
    _randomize_bn(model)
    x = torch.rand(2, 2, 1, 6, 6) * 4
    with torch.no_grad():
        reference = model(x)
        spikedrive.to_spike_driven(model, x)
        converted = model(x)
    assert model.up.virtual_steps == 4
    torch.testing.assert_close(converted, reference, rtol=1e-5, atol=1e-5)
    report = energy_report(model, x, batch_dim=1)
    row = next(l for l in report.layers if l.name == "up")
    # By hand: every non-zero input value is scattered through out_channels * k * k weights.
    with torch.no_grad():
        spikes = model.enc(x)                                          # [T * D, B, 4, 6, 6] binary
    touched = float(spikes.sum()) * 2 * 2 * 2 / x.shape[1]
    assert row.kind == "ConvTranspose2d"
    assert row.sops == pytest.approx(touched)
    assert row.ann_macs == pytest.approx(4 * 36 * 2 * 2 * 2)           # one step, one sample


class _Scaled(nn.Module):
    """A module with its own weight that neither the energy model nor the conversion knows."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Parameter(torch.randn(4, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.proj


def test_unknown_weight_modules_are_refused_by_energy_and_conversion():
    model = nn.Sequential(Linear(4, 4, encoding=True), ILIF(D=2), _Scaled(), Linear(4, 2))
    x = torch.rand(2, 3, 4)
    with pytest.raises(TypeError, match=r"2 \(_Scaled\)"):
        energy_report(model, x, batch_dim=1)
    with pytest.raises(TypeError, match=r"2 \(_Scaled\)"):
        spikedrive.to_spike_driven(model, x)


# -- 4. one encoding rule ------------------------------------------------------------------------

def _pixel_net(bare: bool) -> nn.Module:
    conv = nn.Conv2d(1, 4, 3, padding=1)
    lin = nn.Linear(4 * 64, 10)
    if bare:
        return nn.Sequential(conv, nn.Flatten(), lin)
    return nn.Sequential(Synapse(conv), TimeDistributed(nn.Flatten()), Synapse(lin))


def test_unmarked_synapse_net_on_pixels_is_charged_like_the_bare_one():
    torch.manual_seed(3)
    bare, wrapped = _pixel_net(True), _pixel_net(False)
    wrapped.load_state_dict({k.replace("0.", "0.module.", 1).replace("2.", "2.module.", 1): v
                             for k, v in bare.state_dict().items()})
    x = torch.rand(5, 1, 8, 8)
    e_bare = energy_report(bare, x)
    e_wrapped = energy_report(wrapped, x.unsqueeze(0), batch_dim=1)
    assert e_wrapped.layers[0].encoding
    assert e_wrapped.encoding_macs == pytest.approx(4 * 64 * 9)
    assert e_wrapped.snn_energy_pj == pytest.approx(e_bare.snn_energy_pj)


# -- 5. gradients through the expansion ----------------------------------------------------------

def test_converted_model_trains_with_the_integer_models_gradients():
    torch.manual_seed(4)
    # No max-pool: a max over virtual steps breaks ties per step, so its gradient routing differs
    # from the integer model's (documented on expand_integer_spikes); everything else is exact.
    model = spikedrive.create_model("digits_ilif", T=2, pool_after=(False, False))
    x = torch.rand(6, 1, 8, 8) * 2
    y = torch.arange(6) % 10

    def grads() -> dict[str, torch.Tensor]:
        model.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    model.train()
    integer = grads()
    spikedrive.to_spike_driven(model, x)
    model.train()
    spiking = grads()
    assert integer.keys() == spiking.keys() == {n for n, _ in model.named_parameters()}
    for name in integer:
        torch.testing.assert_close(spiking[name], integer[name], rtol=1e-4, atol=1e-6, msg=name)
    assert integer["features.0.module.weight"].abs().sum() > 0  # the gradient reaches the stem


# -- 6. the ANN side counts spike-input modules ---------------------------------------------------

def test_ann_side_counts_spike_products():
    model = _TwoBranches(SpikeProduct()).eval()
    x = torch.rand(3, 2, 1, 6, 6) * 4
    report = energy_report(model, x, batch_dim=1)
    row = next(l for l in report.layers if l.name == "product")
    assert row.ann_macs == pytest.approx(4 * 36)              # one product per element, one step
    assert report.ann_macs == pytest.approx(2 * 36 * 4 * 9 + 4 * 36 + 4 * 36 * 3)
    assert not any("count_macs" in n for n in report.notes)


# -- 7. the spike-driven check compares outputs ---------------------------------------------------

class _TimeMajorOut(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(Conv2d(1, 2, 3, encoding=True), ILIF(D=4), TimeDistributed(nn.Flatten()),
                                  Linear(72, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)  # [T, B, 3]


def test_check_fails_when_a_conversion_changed_the_number_of_time_steps():
    model = _TimeMajorOut().eval()
    x = torch.rand(3, 2, 1, 6, 6) * 4
    model.body[1].to_spike_driven(True)  # expanded I-LIF, but the synapse was never told: 12 steps out
    with pytest.raises(NotSpikeDrivenError, match=r"shape \(3, 2, 3\).*\(12, 2, 3\)"):
        assert_spike_driven(model, x, batch_dim=1)


def test_check_compares_against_a_given_reference():
    model = spikedrive.create_model("digits_snn").eval()
    x = torch.rand(4, 1, 8, 8)
    with torch.no_grad():
        good = model(x)
    assert_spike_driven(model, x, reference=good)
    with pytest.raises(NotSpikeDrivenError, match="differs"):
        assert_spike_driven(model, x, reference=good + 1.0)


# -- review fixes: what the tracer must refuse, allow, and never leave half done ---------------

class _Mid(nn.Module):
    """Linear -> I-LIF -> ``op`` -> Linear -> mean over time, on ``[T, B, 3]``."""

    def __init__(self, op, D: int = 4) -> None:
        super().__init__()
        self.l1 = Linear(3, 8, bias=False, encoding=True)
        self.n = ILIF(D=D)
        self.op = op
        self.l2 = Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l2(self.op(self.n(self.l1(x)))).mean(0)


class _Lambda(nn.Module):
    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return self.fn(s)


def _clamp_at_two(s: torch.Tensor) -> torch.Tensor:
    s = s.clone()
    s[s > 2] = 2
    return s


@pytest.mark.parametrize("op, why", [
    (nn.Hardtanh(), "hardtanh clamps"),
    (_Lambda(lambda s: s.to(torch.bool).float()), r"to\(torch.bool\)"),
    (_Lambda(lambda s: s if s.max() > 1 else s * 2), "data-dependent control flow"),
    (_Lambda(_clamp_at_two), "I-LIF output"),
    (_Lambda(lambda s: s / (s + 1)), "I-LIF output"),
    (_Lambda(lambda s: torch.max(s, torch.ones(1))), "I-LIF output"),
    (_Lambda(lambda s: s.flip(0)), "time"),
    (_Lambda(lambda s: nn.functional.dropout(s, 0.5)), "fresh mask"),
])
def test_ops_that_do_not_commute_with_the_expansion_are_refused(op, why):
    model = _Mid(op).eval()
    with pytest.raises(ValueError, match=why):
        spikedrive.to_spike_driven(model, torch.rand(2, 1, 3))
    assert not model.n.spike_driven and model.l2.virtual_steps == 1


@pytest.mark.parametrize("mode", ["constant", "replicate", "reflect", "circular"])
def test_padding_that_copies_elements_is_allowed(mode):
    torch.manual_seed(5)
    pad = _Lambda(lambda s: nn.functional.pad(s, (1, 1), mode=mode))
    model = nn.Sequential(Linear(3, 8, bias=False, encoding=True), ILIF(D=4), pad, Linear(10, 2)).eval()
    x = torch.rand(2, 3, 3) * 6
    with torch.no_grad():
        reference = model(x)
        spikedrive.to_spike_driven(model, x)
        torch.testing.assert_close(model(x), reference)


def test_relu6_is_exact_when_it_cannot_clip_the_integers():
    model = _Mid(nn.ReLU6(), D=4).eval()
    x = torch.rand(2, 1, 3) * 40
    with torch.no_grad():
        reference = model(x)
        spikedrive.to_spike_driven(model, x)
        torch.testing.assert_close(model(x), reference)
    with pytest.raises(ValueError, match="hardtanh clamps"):
        spikedrive.to_spike_driven(_Mid(nn.ReLU6(), D=8).eval(), x)


class _ReshapeByInputT(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l1 = Linear(3, 8, bias=False, encoding=True)
        self.n = ILIF(D=4)
        self.l2 = Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.n(self.l1(x))
        return self.l2(s.reshape(x.shape[0], x.shape[1], -1)).mean(0)  # T from the input: wrong once expanded


def test_a_failed_check_leaves_the_model_as_it_was():
    model = _ReshapeByInputT().eval()
    with pytest.raises(ValueError, match="left as it was"):
        spikedrive.to_spike_driven(model, torch.rand(2, 1, 3) * 6)
    assert not model.n.spike_driven and model.l2.virtual_steps == 1
    # An already converted model that fails a second conversion keeps its conversion.
    ok = _Mid(nn.Identity()).eval()
    spikedrive.to_spike_driven(ok, torch.rand(2, 1, 3) * 6)
    with pytest.raises(Exception):
        spikedrive.to_spike_driven(ok, torch.rand(2, 1, 5))  # wrong feature size
    assert ok.n.spike_driven and ok.l2.virtual_steps == 4


def test_spike_tensors_by_keyword_are_refused():
    class KW(_TwoBranches):
        def forward(self, x):
            return self.head(self.product(self.q(x), b=self.k(x)))

    model = KW(SpikeProduct()).eval()
    with pytest.raises(ValueError, match="keyword"):
        spikedrive.to_spike_driven(model, torch.rand(2, 2, 1, 6, 6) * 4)
    assert model.product.input_virtual_steps == (1, 1)


# -- float32 rounding is not a conversion error ---------------------------------------------------

class _TwoILIF(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.n1, self.l1, self.n2, self.l2 = ILIF(D=4), Linear(64, 1), ILIF(D=4), Linear(1, 1)

    def forward(self, x):
        return self.l2(self.n2(self.l1(self.n1(x))))


def _on_a_rounding_boundary() -> tuple[nn.Module, torch.Tensor]:
    """A float32 model whose second I-LIF sees exactly 1.5 in integer mode: summing the four
    binary virtual steps rounds differently, so that neuron's integer flips after conversion."""
    torch.manual_seed(2)
    model = _TwoILIF().eval()
    x = torch.randint(0, 5, (1, 1, 64)).float()
    with torch.no_grad():
        model.l1.module.bias += 1.5 - model.l1(model.n1(x)).item()
        assert model.l1(model.n1(x)).item() == 1.5
    return model, x


def test_float32_rounding_at_a_boundary_does_not_refuse_a_correct_conversion():
    model, x = _on_a_rounding_boundary()
    reference = model(x)
    float32_flip = _on_a_rounding_boundary()[0]
    spikedrive.to_spike_driven(float32_flip, x, check=False)
    assert not torch.allclose(float32_flip(x), reference)  # the flip this test is about
    # The check runs in float64, where the two paths agree: the conversion stands, the model
    # keeps its dtype, and assert_spike_driven's default comparison passes as well.
    spikedrive.to_spike_driven(model, x)
    assert model.n2.spike_driven and model.l1.module.weight.dtype == torch.float32
    assert_spike_driven(model, x)


def test_a_wrong_conversion_is_still_caught_by_the_float64_check():
    model = _ReshapeByInputT().eval()
    with pytest.raises(ValueError, match="differs|shape"):
        spikedrive.to_spike_driven(model, torch.rand(2, 1, 3) * 6)
