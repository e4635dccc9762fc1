"""The fused CPU kernel against the reference loop: spikes and membranes bit-equal, gradients to
float tolerance, over random shapes, T, reset modes, dtypes, surrogates and memory layouts; and
the dispatch table's choices and errors."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from spikedrive.neurons import (
    ILIF,
    LIF,
    Atan,
    ParametricLIF,
    Rectangle,
    Sigmoid,
    StraightThrough,
    ilif_reference,
    lif_reference,
    resolve_kernel,
    set_neuron_backend,
)
from spikedrive.neurons.kernels import ilif_cpu, lif_cpu

SURROGATES = [Sigmoid(4.0), Atan(2.0), Rectangle(0.8), StraightThrough(-0.4, 0.6)]
TOL = {torch.float32: dict(rtol=1e-4, atol=1e-5), torch.float64: dict(rtol=1e-9, atol=1e-11)}


def random_input(T: int, dtype: torch.dtype, seed: int, scale: float = 1.5) -> torch.Tensor:
    """``[T, ...]`` with 1 to 3 random trailing dimensions; values around the threshold."""
    g = torch.Generator().manual_seed(seed)
    trailing = torch.randint(3, 13, (int(torch.randint(1, 4, (1,), generator=g)),), generator=g).tolist()
    return torch.randn(T, *trailing, generator=g, dtype=dtype) * scale + 0.5


def run_both(fn_ref, fn_fused, x, v_init=None, tau_leaf=None, **params):
    """Spikes, final membrane and the gradients of x (and v_init, inv_tau) from both functions,
    under one random loss on spikes and membrane."""
    results = []
    for fn in (fn_ref, fn_fused):
        xi = x.detach().clone().requires_grad_()
        vi = None if v_init is None else v_init.detach().clone().requires_grad_()
        extra = {}
        if tau_leaf is not None:
            k = tau_leaf.detach().clone().requires_grad_()
            extra["inv_tau"] = k
        s, v = fn(xi, v_init=vi, **params, **extra)
        g = torch.Generator().manual_seed(7)
        ws = torch.randn(s.shape, generator=g, dtype=s.dtype)
        wv = torch.randn(v.shape, generator=g, dtype=v.dtype)
        ((s * ws).sum() + (v * wv).sum()).backward()
        grads = [xi.grad, None if vi is None else vi.grad, None if tau_leaf is None else extra["inv_tau"].grad]
        results.append((s.detach(), v.detach(), grads))
    return results


def assert_same(ref, fused, dtype):
    (s0, v0, g0), (s1, v1, g1) = ref, fused
    assert torch.equal(s0, s1), "spikes differ"
    assert torch.equal(v0, v1), "final membranes differ"
    for a, b in zip(g0, g1):
        if a is not None:
            torch.testing.assert_close(b.to(a.dtype), a, **TOL[a.dtype])


@pytest.mark.parametrize("T", [1, 2, 4, 8])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("v_reset", [0.0, -0.3, None])
@pytest.mark.parametrize("decay_input", [True, False])
@pytest.mark.parametrize("detach_reset", [True, False])
def test_lif_kernel_equals_reference(T, dtype, v_reset, decay_input, detach_reset):
    rates = []
    for i, surrogate in enumerate(SURROGATES):
        x = random_input(T, dtype, seed=100 * T + i, scale=2.5)
        params = dict(inv_tau=0.4, v_threshold=0.8, v_reset=v_reset, decay_input=decay_input,
                      detach_reset=detach_reset, surrogate=surrogate)
        ref, fused = run_both(lif_reference, lif_cpu, x, **params)
        assert_same(ref, fused, dtype)
        rates.append(float(ref[0].mean()))
    assert 0 < sum(rates) < len(rates), "inputs should mix spikes and silence"


@pytest.mark.parametrize("T", [1, 4, 8])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("v_reset", [0.0, None])
@pytest.mark.parametrize("decay_input", [True, False])
def test_lif_kernel_gradients_of_initial_membrane_and_learnable_tau(T, dtype, v_reset, decay_input):
    x = random_input(T, dtype, seed=T)
    v_init = torch.randn(x.shape[1:], generator=torch.Generator().manual_seed(3), dtype=dtype) * 0.5
    tau_leaf = torch.tensor(0.35)  # a float32 0-dim tensor, as ParametricLIF's sigmoid(w)
    params = dict(v_threshold=1.0, v_reset=v_reset, decay_input=decay_input, detach_reset=False,
                  surrogate=Sigmoid(4.0))
    ref, fused = run_both(lif_reference, lif_cpu, x, v_init=v_init, tau_leaf=tau_leaf, **params)
    assert_same(ref, fused, dtype)
    assert fused[2][1] is not None and fused[2][2] is not None


@pytest.mark.parametrize("T", [1, 2, 4, 8])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("charge", ["decay", "tau"])
@pytest.mark.parametrize("detach_reset", [True, False])
@pytest.mark.parametrize("levels", [1, 4])
def test_ilif_kernel_equals_reference(T, dtype, charge, detach_reset, levels):
    x = random_input(T, dtype, seed=10 * T + levels, scale=2.5)
    v_init = torch.randn(x.shape[1:], generator=torch.Generator().manual_seed(4), dtype=dtype)
    params = dict(levels=levels, beta=0.25, charge=charge, tau=2.0, detach_reset=detach_reset)
    ref, fused = run_both(ilif_reference, ilif_cpu, x, v_init=v_init, **params)
    assert_same(ref, fused, dtype)
    assert ref[0].max() >= 1, "inputs should make some spikes"


NARROW_LIF = [
    dict(inv_tau=0.4, v_threshold=0.8, v_reset=0.0, decay_input=True, detach_reset=False, surrogate=Sigmoid(4.0)),
    dict(inv_tau=0.3, v_threshold=1.1, v_reset=None, decay_input=False, detach_reset=False, surrogate=Atan(2.0)),
    dict(inv_tau=0.5, v_threshold=0.9, v_reset=-0.2, decay_input=True, detach_reset=True, surrogate=Sigmoid(4.0)),
]
NARROW_ILIF = [dict(levels=4, beta=0.25, charge="decay"), dict(levels=4, beta=0.25, charge="tau", tau=3.0)]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("case", range(len(NARROW_LIF) + len(NARROW_ILIF)))
def test_narrow_dtypes_round_every_op_like_the_reference_loop(dtype, case):
    # bfloat16 / float16: arithmetic in float32, each op of the charge, fire and reset rounded to
    # the tensor's dtype, as the reference loop's PyTorch ops (and the Triton kernels) do: the
    # same spikes and membranes bit for bit. Gradients are float32 math rounded once, against
    # autograd through the rounded loop: close to the narrow type's precision.
    g = torch.Generator().manual_seed(case)
    x = (torch.randn(6, 7, 33, generator=g) * 2.5 + 0.5).to(dtype)
    v_init = (torch.randn(7, 33, generator=g) * 0.5).to(dtype)
    if case < len(NARROW_LIF):
        ref, fused = run_both(lif_reference, lif_cpu, x, v_init=v_init, **NARROW_LIF[case])
    else:
        ref, fused = run_both(ilif_reference, ilif_cpu, x, v_init=v_init, **NARROW_ILIF[case - len(NARROW_LIF)])
    (s0, v0, g0), (s1, v1, g1) = ref, fused
    assert s1.dtype == v1.dtype == g1[0].dtype == g1[1].dtype == dtype
    assert torch.equal(s1, s0), "spikes differ"
    assert 0 < float((s0 > 0).float().mean()) < 1
    assert torch.equal(v1, v0), "final membranes differ"
    for a, b in zip(g0[:2], g1[:2]):  # x and v_init (no learnable tau here)
        scale = float(a.float().abs().max())
        torch.testing.assert_close(b.float(), a.float(), rtol=0.05, atol=0.02 * scale)


def test_learnable_tau_gradient_stays_in_its_own_dtype_under_narrow_inputs():
    # One layer's d loss / d inv_tau is a sum over every neuron and step: returned in the compute
    # type and cast to the parameter's dtype, it must not round (or overflow float16) through x's.
    x = (torch.randn(4, 64, 512, generator=torch.Generator().manual_seed(0)) * 3).half().requires_grad_()
    k = torch.tensor(0.4, requires_grad=True)
    s, _ = lif_cpu(x, inv_tau=k, v_threshold=1.0, v_reset=0.0, decay_input=True, detach_reset=True,
                   surrogate=Sigmoid(4.0))
    (s.float() * 1000).sum().backward()  # a loss scale, as GradScaler applies
    assert k.grad.dtype == torch.float32 and torch.isfinite(k.grad)
    x32 = x.detach().float().requires_grad_()
    k32 = torch.tensor(0.4, requires_grad=True)
    s32, _ = lif_reference(x32, inv_tau=k32, v_threshold=1.0, v_reset=0.0, decay_input=True, detach_reset=True,
                           surrogate=Sigmoid(4.0))
    (s32 * 1000).sum().backward()
    assert abs(float(k.grad)) > 65504  # beyond float16's range: it would have been inf
    torch.testing.assert_close(k.grad, k32.grad, rtol=0.05, atol=0.0)


def test_bf16_autocast_training_keeps_the_fused_kernel():
    # Under CPU autocast a Linear feeds the neuron bfloat16: the neuron must take the kernel
    # (not the slow per-step reference loop) and give the gradients of the float32 run.
    torch.manual_seed(0)
    layer = torch.nn.Linear(16, 32)
    x = torch.randn(4, 3, 16)
    seen = []
    neuron = LIF(tau=2.0, detach_reset=True)
    neuron.register_forward_hook(lambda m, inp, out: seen.append(inp[0].dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = neuron(layer(x))
    assert seen == [torch.bfloat16] and out.dtype == torch.bfloat16
    assert type(out.grad_fn).__name__ == "_FusedLIFBackward"
    out.float().sum().backward()
    # The same network on the reference loop under autocast: the same spikes, and the weight
    # gradient within bfloat16's precision (the kernel's gradient math is float32).
    reference = torch.nn.Linear(16, 32)
    reference.load_state_dict(layer.state_dict())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out_ref = LIF(tau=2.0, detach_reset=True, backend="reference")(reference(x))
    out_ref.float().sum().backward()
    assert torch.equal(out, out_ref)
    scale = float(reference.weight.grad.abs().max())
    torch.testing.assert_close(layer.weight.grad, reference.weight.grad, rtol=0.05, atol=0.02 * scale)


def test_ilif_kernel_rounds_ties_to_even():
    # H = 0.5, 1.5, 2.5, 3.5 and 4.5 (clamped to 4) on the first step.
    x = torch.tensor([[0.5, 1.5, 2.5, 3.5, 4.5]])
    s, _ = ilif_cpu(x, levels=4, beta=0.25)
    assert s.tolist() == [[0.0, 2.0, 2.0, 4.0, 4.0]]


@pytest.mark.parametrize("layout", ["transposed", "strided", "expanded"])
def test_non_contiguous_inputs(layout):
    g = torch.Generator().manual_seed(0)
    if layout == "transposed":
        x = (torch.randn(6, 5, 4, generator=g) * 2).transpose(0, 2)  # [4, 5, 6]
    elif layout == "strided":
        x = (torch.randn(4, 10, 12, generator=g) * 2)[:, ::2, 1::3]
    else:
        x = (torch.randn(4, 1, 7, generator=g) * 2).expand(4, 3, 7)
    assert not x.is_contiguous()
    params = dict(inv_tau=0.5, v_threshold=1.0, v_reset=0.0, decay_input=True, detach_reset=False,
                  surrogate=Sigmoid())
    assert_same(*run_both(lif_reference, lif_cpu, x, **params), torch.float32)
    assert_same(*run_both(ilif_reference, ilif_cpu, x, levels=4, beta=0.25), torch.float32)


@pytest.mark.parametrize("time_axis", ["dense", "expanded"])
def test_channels_last_steps_keep_their_layout_with_the_reference_values(time_axis):
    # [T, B, C, H, W] whose steps are channels-last: spikes come back in the same layout (no NCHW
    # copy), and values, membranes and gradients (v_init given in NCHW) equal the reference's.
    g = torch.Generator().manual_seed(5)
    step = (torch.randn(2, 6, 5, 4, generator=g) * 2).contiguous(memory_format=torch.channels_last)
    if time_axis == "dense":
        x = torch.stack([step * (t + 1) / 2 for t in range(3)])
        x = x.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)
    else:
        x = step[None].expand(3, -1, -1, -1, -1)
    v_init = torch.randn(2, 6, 5, 4, generator=g) * 0.5
    params = dict(inv_tau=0.5, v_threshold=1.0, v_reset=0.0, decay_input=True, detach_reset=False,
                  surrogate=Sigmoid())
    ref, fused = run_both(lif_reference, lif_cpu, x, v_init=v_init, **params)
    assert_same(ref, fused, torch.float32)
    tau_leaf = torch.tensor(0.35)  # a learnable time constant through the permuted view
    learnable = {k: v for k, v in params.items() if k != "inv_tau"}
    assert_same(*run_both(lif_reference, lif_cpu, x, v_init=v_init, tau_leaf=tau_leaf, **learnable), torch.float32)
    assert_same(*run_both(ilif_reference, ilif_cpu, x, v_init=v_init, levels=4, beta=0.25), torch.float32)
    assert lif_cpu(x, need_state=False, **params)[1] is None
    spikes, v = lif_cpu(x, v_init=v_init, **params)
    assert spikes[0].is_contiguous(memory_format=torch.channels_last) and spikes.stride(0) == spikes[0].numel()
    assert v.is_contiguous(memory_format=torch.channels_last)


def test_many_neurons_split_across_threads_and_blocks():
    # More neurons than one block and one thread's share, and not a multiple of either.
    x = torch.randn(3, 2, 70_001, generator=torch.Generator().manual_seed(1)) * 2
    params = dict(inv_tau=0.5, v_threshold=1.0, v_reset=None, decay_input=False, detach_reset=False,
                  surrogate=Atan())
    assert_same(*run_both(lif_reference, lif_cpu, x, **params), torch.float32)


def test_modules_on_the_cpu_backend_match_the_reference_backend():
    x = torch.randn(5, 4, 3, 6, 6, generator=torch.Generator().manual_seed(2)) * 2
    for make in (lambda b: LIF(backend=b), lambda b: ParametricLIF(init_tau=3.0, backend=b),
                 lambda b: ILIF(D=4, backend=b)):
        grads = []
        for backend in ("reference", "cpu"):
            torch.manual_seed(0)
            neuron = make(backend)
            xi = x.clone().requires_grad_()
            out = neuron(xi)
            (out * torch.linspace(-1, 1, out.numel()).view(out.shape)).sum().backward()
            grads.append((out, xi.grad, [p.grad for p in neuron.parameters()]))
        (o0, g0, p0), (o1, g1, p1) = grads
        assert torch.equal(o0, o1)
        torch.testing.assert_close(g1, g0, rtol=1e-4, atol=1e-5)
        for a, b in zip(p0, p1):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


class _Doubled(Sigmoid):
    """A user's surrogate: the kernels cannot know its derivative."""

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * super().derivative(x)


def test_auto_uses_the_kernel_where_it_can_and_the_reference_elsewhere():
    from spikedrive.neurons.functional import lif_reference as ref_fn

    lif = dict(inv_tau=0.5, v_threshold=1.0, v_reset=0.0, decay_input=True, detach_reset=False)
    x = torch.zeros(2, 3)
    assert resolve_kernel("lif", "auto", x, {**lif, "surrogate": Sigmoid()}) is lif_cpu
    assert resolve_kernel("lif", "auto", x, {**lif, "surrogate": _Doubled()}) is ref_fn
    assert resolve_kernel("lif", "auto", x, {**lif, "inv_tau": torch.full((3,), 0.5), "surrogate": Sigmoid()}) is ref_fn
    assert resolve_kernel("lif", "auto", x.bfloat16(), {**lif, "surrogate": Sigmoid()}) is lif_cpu
    assert resolve_kernel("lif", "auto", x.half(), {**lif, "surrogate": Sigmoid()}) is lif_cpu
    assert resolve_kernel("lif", "auto", x.to(torch.complex64), {**lif, "surrogate": Sigmoid()}) is ref_fn
    with pytest.raises(ValueError, match="backend='cpu' cannot run"):
        resolve_kernel("lif", "cpu", x, {**lif, "surrogate": _Doubled()})
    with pytest.raises(ValueError, match="backend='cpu' cannot run"):
        resolve_kernel("lif", "cpu", x.to(torch.complex64), {**lif, "surrogate": Sigmoid()})


def test_custom_surrogate_still_trains_through_auto():
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0)).requires_grad_()
    # With the reset detached every gradient path crosses exactly one surrogate: twice the
    # surrogate gives twice the gradient.
    LIF(surrogate=_Doubled(), detach_reset=True)(x).sum().backward()
    x2 = x.detach().clone().requires_grad_()
    LIF(surrogate=Sigmoid(), detach_reset=True, backend="reference")(x2).sum().backward()
    torch.testing.assert_close(x.grad, 2 * x2.grad)


def test_set_neuron_backend_reaches_every_neuron():
    model = torch.nn.Sequential(LIF(), torch.nn.Sequential(ILIF(), torch.nn.ReLU()))
    assert set_neuron_backend(model, "reference") == 2
    assert [m.backend for m in model.modules() if hasattr(m, "backend")] == ["reference", "reference"]
    with pytest.raises(ValueError, match="backend"):
        set_neuron_backend(model, "gpu")


def test_without_the_kernel_auto_warns_once_and_cpu_names_the_cause():
    script = (
        "import warnings, torch\n"
        "from spikedrive.neurons import LIF\n"
        "x = torch.full((2, 3), 2.0)\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    assert LIF()(x).sum() == 6 and LIF()(x).sum() == 6\n"
        "print(len([m for m in w if 'reference loop' in str(m.message)]))\n"
        "try:\n"
        "    LIF(backend='cpu')(x)\n"
        "except ValueError as err:\n"
        "    print(err)\n"
    )
    env = {**os.environ, "SPIKEDRIVE_NO_CPU_KERNEL": "1"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "1"
    assert "not available (disabled by SPIKEDRIVE_NO_CPU_KERNEL)" in lines[1]


def test_surrogate_codes_match_their_python_formulas():
    # The kernel's derivative of each built-in surrogate, read through one step with no reset
    # path (detach) and no membrane carried over: dL/dx = k * derivative(h - V_th).
    z = torch.linspace(-2, 2, 401, dtype=torch.float64)
    for surrogate in SURROGATES + [Sigmoid(1.5), Rectangle(0.3)]:
        x = (z + 1.0).unsqueeze(0).requires_grad_()  # h = x with inv_tau = 1, so h - V_th = z
        s, _ = lif_cpu(x, inv_tau=1.0, v_threshold=1.0, v_reset=0.0, decay_input=True, detach_reset=True,
                       surrogate=surrogate)
        s.sum().backward()
        # Against H - V_th as the kernel forms it, which rounds differently from z at the edges.
        torch.testing.assert_close(x.grad[0], surrogate.derivative(x.detach()[0] - 1.0), rtol=1e-12, atol=1e-12)


def test_float32_sigmoid_derivative_within_float_tolerance_over_a_wide_range():
    # float32 uses the kernel's own vectorised exp: check it far into both tails.
    z = torch.linspace(-30, 30, 60_001)
    x = (z + 1.0).unsqueeze(0).requires_grad_()
    s, _ = lif_cpu(x, inv_tau=1.0, v_threshold=1.0, v_reset=0.0, decay_input=True, detach_reset=True,
                   surrogate=Sigmoid(4.0))
    s.sum().backward()
    # Near s = 1, (1 - s) cancels in float32 in PyTorch's formula too; hence the atol.
    z_kernel = x.detach()[0] - 1.0
    torch.testing.assert_close(x.grad[0], Sigmoid(4.0).derivative(z_kernel), rtol=1e-5, atol=1e-6)
    exact = Sigmoid(4.0).derivative(z_kernel.double())
    assert ((x.grad[0].double() - exact).abs() <= 1e-6 + 1e-5 * exact).all()


def _subnormal(t: torch.Tensor) -> torch.Tensor:
    return (t != 0) & (t.abs() < torch.finfo(t.dtype).tiny)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cpu_backward_flushes_subnormal_gradients(dtype):
    # Far below threshold the sigmoid surrogate underflows: the reference loop then hands
    # subnormal gradients upstream (which made a Meta-SpikeFormer step 4x slower on CPU); the
    # kernel stores zero instead and matches the reference everywhere else.
    x = torch.linspace(-40.0, 1.5, 200).repeat(3, 1).to(dtype)
    params = dict(inv_tau=0.5, v_threshold=1.0, v_reset=0.0, decay_input=True, detach_reset=True,
                  surrogate=Sigmoid(4.0))
    grads = []
    for fn in (lif_reference, lif_cpu):
        xi = x.clone().requires_grad_()
        s, _ = fn(xi, **params)
        (s * 0.01).sum().backward()
        grads.append(xi.grad)
    ref, fused = grads
    assert _subnormal(ref).any()  # the case is real
    assert not _subnormal(fused).any()
    normal = ~_subnormal(ref)
    torch.testing.assert_close(fused[normal].float(), ref[normal].float(), rtol=2e-2 if dtype == torch.bfloat16 else 1e-4,
                               atol=0)
    assert torch.all(fused[~normal] == 0)


def test_ilif_cpu_backward_flushes_subnormal_gradients():
    x = torch.full((4, 50), 1.5)
    xi = x.clone().requires_grad_()
    s, _ = ilif_cpu(xi, levels=4, beta=0.25, charge="decay", tau=2.0, detach_reset=True)
    (s * torch.full_like(s, 1e-39)).sum().backward()  # an upstream gradient that is already subnormal
    assert not _subnormal(xi.grad).any() and torch.all(xi.grad == 0)
