"""The Triton neuron kernels against the reference loops, on the CPU through Triton's interpreter.

``TRITON_INTERPRET=1`` is set per test (the autouse fixture below), not at import: pytest imports
every test module before running any, so a module-level assignment would route every CPU neuron
in the rest of the session through the (slow) interpreter by auto dispatch. The kernels module
decorates its kernels on first use for the mode in force then, so Triton having been imported
earlier without the flag (as it is here, by ``importorskip``) does not matter.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

triton = pytest.importorskip("triton")

from spikedrive.neurons import (
    ILIF,
    LIF,
    Atan,
    ParametricLIF,
    Rectangle,
    Sigmoid,
    StraightThrough,
    Surrogate,
    ilif_reference,
    lif_reference,
    resolve_kernel,
)
from spikedrive.neurons.kernels import ilif_triton, lif_triton
from spikedrive.neurons.kernels import triton_kernels as tk
from spikedrive.neurons.kernels.fused import fused_ilif, fused_lif

TOL = dict(rtol=1e-4, atol=1e-5)
SURROGATES = [Sigmoid(4.0), Atan(2.0), Rectangle(1.0), StraightThrough(-0.5, 0.5)]
SHAPE = (3, 37)  # N = 111: not a multiple of any block


@pytest.fixture(autouse=True)
def interpreter(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")


def _grads(fn, x0, v00, tau_value, **kw):
    """Run ``fn`` from fresh leaves; return spikes, final membrane and the gradients of x, v_init
    and (when ``tau_value`` is given) a 0-dim inv_tau, under a fixed random loss."""
    x = x0.clone().requires_grad_()
    v0 = None if v00 is None else v00.clone().requires_grad_()
    extra = {}
    tau = None
    if tau_value is not None:
        tau = torch.tensor(tau_value, dtype=x0.dtype, requires_grad=True)
        extra["inv_tau"] = tau
    s, v = fn(x, v_init=v0, **kw, **extra)
    g = torch.Generator().manual_seed(7)
    w = torch.randn(s.shape, generator=g, dtype=s.dtype)
    u = torch.randn(v.shape, generator=g, dtype=v.dtype)
    ((s * w).sum() + (v * u).sum()).backward()
    return s.detach(), v.detach(), x.grad, None if v0 is None else v0.grad, None if tau is None else tau.grad


def _assert_same(got, want):
    s, v, *grads = got
    s_ref, v_ref, *grads_ref = want
    assert torch.equal(s, s_ref), "spikes differ"
    assert torch.equal(v, v_ref), "final membrane differs"
    for name, a, b in zip(("x", "v_init", "inv_tau"), grads, grads_ref):
        assert (a is None) == (b is None), name
        if a is not None:
            torch.testing.assert_close(a, b, **TOL, msg=lambda m, name=name: f"grad of {name}: {m}")


# T = 1 and 4 start from rest, T = 2 and 8 from a random membrane; T = 4 and 8 learn inv_tau
# (a 0-dim tensor), T = 1 and 2 take it as a float.
def _lif_case(T, dtype):
    g = torch.Generator().manual_seed(T)
    x = (torch.randn(T, *SHAPE, generator=g, dtype=torch.float64) * 1.5 + 0.8).to(dtype)
    v_init = torch.rand(*SHAPE, generator=g, dtype=torch.float64).to(dtype) if T in (2, 8) else None
    return x, v_init, (T in (4, 8))


# Every surrogate in float32; float64 (the same kernels with another compute type) with two, to
# keep this file within half a minute of interpreter time.
SURROGATE_DTYPES = [(s, torch.float32) for s in SURROGATES] + [(SURROGATES[0], torch.float64),
                                                               (SURROGATES[3], torch.float64)]


@pytest.mark.parametrize("surrogate, dtype", SURROGATE_DTYPES,
                         ids=lambda v: type(v).__name__ if isinstance(v, Surrogate) else str(v).removeprefix("torch."))
@pytest.mark.parametrize("detach_reset", [False, True])
@pytest.mark.parametrize("decay_input", [True, False])
@pytest.mark.parametrize("v_reset", [-0.2, None], ids=["hard", "soft"])
@pytest.mark.parametrize("T", [1, 2, 4, 8])
def test_lif_matches_reference(T, v_reset, decay_input, detach_reset, surrogate, dtype):
    x, v_init, learn_tau = _lif_case(T, dtype)
    kw = dict(v_threshold=1.0, v_reset=v_reset, decay_input=decay_input, detach_reset=detach_reset,
              surrogate=surrogate)
    tau_value = 0.4 if learn_tau else None
    if not learn_tau:
        kw["inv_tau"] = 0.4  # not a binary fraction: the float32 rounding of the scalar matters
    got = _grads(lambda x, **k: fused_lif(tk.triton_ops(), x, **k), x, v_init, tau_value, **kw)
    want = _grads(lif_reference, x, v_init, tau_value, **kw)
    _assert_same(got, want)
    assert 0 < want[0].mean() < 1, "inputs should give a mix of spikes and silence"


def _ilif_case(T, levels, dtype):
    # Half of the neurons on a grid of quarters, so that H lands on .5 (round half to even) and
    # on the clamp bounds; the other half continuous.
    g = torch.Generator().manual_seed(100 + T)
    grid = torch.randint(-4, 4 * levels + 6, (T, SHAPE[0], 18), generator=g).double() / 4
    cont = torch.rand(T, SHAPE[0], SHAPE[1] - 18, generator=g, dtype=torch.float64) * (levels + 2) - 1
    x = torch.cat([grid, cont], dim=-1).to(dtype)
    v_init = (torch.rand(*SHAPE, generator=g, dtype=torch.float64) - 0.5).to(dtype) if T in (2, 8) else None
    return x, v_init


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("levels", [1, 4])
@pytest.mark.parametrize("detach_reset", [True, False])
@pytest.mark.parametrize("charge", ["decay", "tau"])
@pytest.mark.parametrize("T", [1, 2, 4, 8])
def test_ilif_matches_reference(T, charge, detach_reset, levels, dtype):
    x, v_init = _ilif_case(T, levels, dtype)
    kw = dict(levels=levels, beta=0.25, charge=charge, tau=3.0, detach_reset=detach_reset)
    got = _grads(lambda x, **k: fused_ilif(tk.triton_ops(), x, **k), x, v_init, None, **kw)
    want = _grads(ilif_reference, x, v_init, None, **kw)
    _assert_same(got, want)
    assert want[0].max() >= 1 and want[0].min() == 0


def test_several_programs_and_a_ragged_last_one():
    # block 16 over N = 111: seven programs, the last with 15 lanes; inv_tau's gradient is summed
    # from per-program partial sums.
    ops = tk.TritonNeuronOps(block=16)
    x, v_init, _ = _lif_case(8, torch.float32)
    kw = dict(v_threshold=1.0, v_reset=0.0, decay_input=True, detach_reset=False, surrogate=Atan(2.0))
    _assert_same(_grads(lambda x, **k: fused_lif(ops, x, **k), x, v_init, 0.4, **kw),
                 _grads(lif_reference, x, v_init, 0.4, **kw))
    x, v_init = _ilif_case(8, 4, torch.float32)
    kw = dict(levels=4, beta=0.25, charge="tau", tau=3.0, detach_reset=False)
    _assert_same(_grads(lambda x, **k: fused_ilif(ops, x, **k), x, v_init, None, **kw),
                 _grads(ilif_reference, x, v_init, None, **kw))


def test_missing_and_expanded_incoming_gradients():
    ops = tk.triton_ops()
    x, v_init, _ = _lif_case(4, torch.float32)
    args = (x, v_init, 0.4, 1.0, 0.0, True, True, False, 0, 4.0, 0.0, True)
    zeros = ops.lif_backward(torch.zeros_like(x), torch.zeros_like(x[0]), *args)
    for got, want in zip(ops.lif_backward(None, None, *args), zeros):
        assert torch.equal(got, want)
    # d(s.sum())/ds arrives from autograd as a stride-0 expansion of one value.
    ones = torch.ones(()).expand(x.shape)
    dense = ops.lif_backward(torch.ones_like(x), None, *args)
    for got, want in zip(ops.lif_backward(ones, None, *args), dense):
        assert torch.equal(got, want)
    iargs = (x, None, 4, 0.25, 3.0, True, False)
    izeros = ops.ilif_backward(torch.zeros_like(x), torch.zeros_like(x[0]), *iargs)
    for got, want in zip(ops.ilif_backward(None, None, *iargs), izeros):
        assert torch.equal(got, want)


def test_neuron_modules_run_the_triton_backend_on_cpu():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 2, 5, 7, generator=g) * 1.5 + 0.8
    for make in (lambda b: LIF(tau=2.5, backend=b), lambda b: ParametricLIF(init_tau=2.5, backend=b),
                 lambda b: ILIF(D=4, charge="tau", tau=3.0, detach_reset=False, backend=b)):
        outs = []
        for backend in ("triton", "reference"):
            neuron = make(backend)
            xi = x.clone().requires_grad_()
            s = neuron(xi)
            (s * torch.linspace(-1, 1, s.numel()).view(s.shape)).sum().backward()
            params = [p.grad for p in neuron.parameters()]
            outs.append((s.detach(), xi.grad, params))
        (s, gx, gp), (s_ref, gx_ref, gp_ref) = outs
        assert torch.equal(s, s_ref)
        torch.testing.assert_close(gx, gx_ref, **TOL)
        for a, b in zip(gp, gp_ref):
            torch.testing.assert_close(a, b, **TOL)


def test_auto_dispatch_and_support_follow_the_interpreter_flag(monkeypatch):
    x = torch.randn(2, 3)
    lif_params = dict(inv_tau=0.5, v_threshold=1.0, v_reset=0.0, decay_input=True, detach_reset=False,
                      surrogate=Sigmoid())
    assert tk.triton_tensor_supported(x) and tk.triton_tensor_supported(x.double())
    assert resolve_kernel("lif", "auto", x, lif_params) is lif_triton
    assert resolve_kernel("ilif", "auto", x, dict(levels=4, beta=0.25, charge="decay", tau=2.0,
                                                  detach_reset=True)) is ilif_triton
    for bad in (x.half(), x.bfloat16(), x.long(), torch.empty(2, 3, device="meta"), torch.tensor(1.0), None, object()):
        assert not tk.triton_tensor_supported(bad)
    assert isinstance(tk._kernels().lif_forward, triton.runtime.interpreter.InterpretedFunction)
    monkeypatch.delenv("TRITON_INTERPRET")
    assert not tk.triton_tensor_supported(x)
    assert resolve_kernel("lif", "auto", x, lif_params) is not lif_triton
    assert isinstance(tk._kernels().lif_forward, triton.runtime.jit.JITFunction)


def test_missing_triton_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(tk, "triton", None)
    monkeypatch.setitem(tk._STATE, "tried", True)
    monkeypatch.setitem(tk._STATE, "error", "ImportError: No module named 'triton'")
    with pytest.raises(RuntimeError, match="triton"):
        tk.triton_ops()
    assert not tk.triton_tensor_supported(torch.zeros(2, 3))


def test_spikedrive_imports_without_triton():
    code = (
        "import sys; sys.modules['triton'] = None\n"
        "import torch, spikedrive, spikedrive.neurons as n\n"
        "from spikedrive.neurons.kernels import triton_ops, triton_tensor_supported\n"
        "assert not triton_tensor_supported(torch.zeros(2, 3))\n"
        "try:\n    triton_ops()\nexcept RuntimeError as e:\n    assert 'triton' in str(e)\n"
        "else:\n    raise SystemExit('no error')\n"
        "assert n.LIF()(torch.full((2, 3), 2.0)).sum() > 0\n"
    )
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True,
                            timeout=120, env={**os.environ, "SPIKEDRIVE_NO_CPU_KERNEL": "1", "TRITON_INTERPRET": "1"})
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------------------------------------
# Half precision. The CPU reference is not the target there: PyTorch's CPU kernels round some
# Python scalars to the tensor's dtype first (a - 0.3), its CUDA kernels never do. This pins the
# kernels to the CUDA model instead: each op in float32 with float32 scalars, rounded to the
# storage dtype after each op. Only float16 runs here: the interpreter converts float32 to
# bfloat16 with its own rounding (not round-to-nearest-even), unlike the GPU's cvt.rn.bf16.f32,
# which the compiled check at the end of this file looks for instead.


def _cuda_model_lif(x, v_init, inv_tau, vth, v_reset, decay_input):
    dt = x.dtype
    r = lambda a: a.to(dt).float()
    k, vth32 = torch.tensor(inv_tau), torch.tensor(vth)
    rest = torch.tensor(0.0 if v_reset is None else v_reset)
    v = r(torch.full(x.shape[1:], float(rest))) if v_init is None else v_init.float()
    spikes = []
    for xt in x.float():
        if decay_input:
            h = r(v + r(r(xt - r(v - rest)) * k))
        else:
            h = r(r(v - r(r(v - rest) * k)) + xt)
        fire = r(h - vth32) >= 0
        v = torch.where(fire, r(rest), h) if v_reset is not None else torch.where(fire, r(h - r(vth32)), h)
        spikes.append(fire.to(dt))
    return torch.stack(spikes), v.to(dt)


def _cuda_model_ilif(x, levels, beta, tau_charge, tau):
    dt = x.dtype
    r = lambda a: a.to(dt).float()
    v = torch.zeros(x.shape[1:])
    inv_tau = torch.tensor(1.0) / torch.tensor(tau)  # CUDA divides by a scalar as a * (1 / b)
    spikes = []
    for xt in x.float():
        h = r(v + r(r(xt - v) * inv_tau)) if tau_charge else r(r(torch.tensor(beta) * v) + xt)
        s = r(torch.round(r(torch.clamp(h, 0, levels))))
        v = r(h - s)
        spikes.append(s.to(dt))
    return torch.stack(spikes), v.to(dt)


@pytest.mark.parametrize("dtype", [torch.float16])
def test_half_precision_rounds_after_every_op(dtype):
    ops = tk.triton_ops()
    g = torch.Generator().manual_seed(5)
    x = (torch.randn(8, *SHAPE, generator=g) * 1.5 + 0.8).to(dtype)
    v_init = torch.rand(*SHAPE, generator=g).to(dtype)
    for v_reset, decay_input, v0 in itertools.product((-0.2, None), (True, False), (None, v_init)):
        kw = dict(inv_tau=0.4, v_threshold=1.1, v_reset=v_reset, decay_input=decay_input)
        s, v = fused_lif(ops, x, detach_reset=False, surrogate=Sigmoid(), v_init=v0, **kw)
        s_ref, v_ref = _cuda_model_lif(x, v0, kw["inv_tau"], kw["v_threshold"], v_reset, decay_input)
        assert torch.equal(s, s_ref) and torch.equal(v, v_ref), (v_reset, decay_input, v0 is None)
    xi = (torch.randn(8, *SHAPE, generator=g) * 3 + 1).to(dtype)
    for tau_charge in (False, True):
        s, v = fused_ilif(ops, xi, levels=4, beta=0.3, charge="tau" if tau_charge else "decay", tau=3.0)
        s_ref, v_ref = _cuda_model_ilif(xi, 4, 0.3, tau_charge, 3.0)
        assert torch.equal(s, s_ref) and torch.equal(v, v_ref), tau_charge


# ---------------------------------------------------------------------------------------------
# What only the GPU compiler decides: whether ``a * b + c`` becomes an FMA (NumPy, under the
# interpreter, never fuses) and how float32 is rounded to bfloat16. Compiling for an NVIDIA
# target needs no GPU (Triton ships ptxas): the forward kernels' PTX must hold no fma, and every
# bfloat16 rounding must be round-to-nearest-even.


class _Recorder:
    def __init__(self) -> None:
        self.options: list[dict] = []

    def __getitem__(self, grid):
        return lambda *args, **kwargs: self.options.append(kwargs)


def test_every_launch_disables_fp_fusion(monkeypatch):
    rec = _Recorder()
    monkeypatch.setattr(tk, "_kernels", lambda: SimpleNamespace(lif_forward=rec, lif_backward=rec,
                                                                ilif_forward=rec, ilif_backward=rec))
    ops = tk.triton_ops()
    x = torch.randn(3, 5)
    ops.lif_forward(x, None, 0.5, 1.0, 0.0, True, True)
    ops.lif_backward(None, None, x, None, 0.5, 1.0, 0.0, True, True, False, 0, 4.0, 0.0, True)
    ops.ilif_forward(x, None, 4, 0.25, 2.0, False)
    ops.ilif_backward(None, None, x, None, 4, 0.25, 2.0, False, True)
    assert len(rec.options) == 4 and all(o["enable_fp_fusion"] is False for o in rec.options)


def test_compiled_forward_kernels_have_no_fma(monkeypatch):
    if "nvidia" not in triton.backends.backends:
        pytest.skip("Triton's NVIDIA backend is not installed")
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    monkeypatch.delenv("TRITON_INTERPRET")
    kernels = tk._kernels()
    tl = triton.language

    def ptx(fn, constexprs, fusion, dtype="fp32"):
        ptrs = {name: f"*{dtype}" for name in ("x_ptr", "v0_ptr", "s_ptr", "v_out_ptr")}
        signature = {**ptrs, "prm_ptr": "*fp32", "T": "i32", "N": "i32", **{name: "constexpr" for name in constexprs}}
        compiled = triton.compile(ASTSource(fn=fn, signature=signature, constexprs=constexprs),
                                  target=GPUTarget("cuda", 90, 32), options={"enable_fp_fusion": fusion})
        return compiled.asm["ptx"]

    lif = dict(HAS_V0=True, HARD=True, DECAY_INPUT=True, CT=tl.float32, BLOCK=256)
    ilif = dict(HAS_V0=True, TAU_CHARGE=True, TAU_RECIP=True, MAGIC=8388608.0, CT=tl.float32, BLOCK=256)
    fma = re.compile(r"\bfma\.")
    assert fma.search(ptx(kernels.lif_forward, lif, True)), "the check should see contraction when it is allowed"
    assert not fma.search(ptx(kernels.lif_forward, lif, False))
    assert not fma.search(ptx(kernels.lif_forward, {**lif, "DECAY_INPUT": False}, False))
    assert not fma.search(ptx(kernels.ilif_forward, ilif, False))
    # LLVM may narrow a rounded float32 add of two bfloat16 values to a native bfloat16 add (exact:
    # float32 holds more than twice bfloat16's precision), so count nothing, but every rounding
    # to bfloat16, by conversion or by arithmetic, must be to nearest.
    bf16 = ptx(kernels.lif_forward, {**lif, "HARD": False}, False, "bf16")
    downcasts = re.findall(r"\bcvt\.[a-z]+\.bf16(?:x2)?\.f32\b", bf16)
    arithmetic = re.findall(r"\b(?:add|sub|mul|fma)\.[a-z0-9.]*bf16(?:x2)?\b", bf16)
    assert downcasts and all(op.split(".")[1] == "rn" for op in downcasts + arithmetic), downcasts + arithmetic
    assert not fma.search(bf16)
