"""Neurons and coders refuse what they cannot mean, and agree across backends at the edges.

Empty sequences (T = 0), non-finite inputs through the hard reset, the dtype of a streaming
state, ``with_decay`` on the subclasses, constructor validation, NaN in the coders, and the CPU
kernel's per-call path taking no lock.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spikedrive.encoding import LatencyEncoder, PoissonEncoder, latency_encode, poisson_encode
from spikedrive.neurons import IF, ILIF, LIF, Atan, ParametricLIF, Sigmoid, ilif_reference, lif_reference
from spikedrive.neurons.kernels import cpu as cpu_kernel

INF, NAN = math.inf, math.nan


def _require_cpu_kernel() -> None:
    error = cpu_kernel.cpu_kernel_error()
    if error is not None:
        pytest.skip(f"the fused CPU neuron kernel cannot be built here: {error}")


def _lif_params(v_reset: float | None = 0.0) -> dict:
    return dict(inv_tau=0.5, v_threshold=1.0, v_reset=v_reset, decay_input=True, detach_reset=False,
                surrogate=Sigmoid())


# --- T = 0 -----------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["reference", "cpu", "auto"])
@pytest.mark.parametrize("make", [LIF, IF, ParametricLIF, ILIF], ids=lambda c: c.__name__)
def test_zero_time_steps_is_one_clear_error_on_every_backend(make, backend):
    if backend == "cpu":
        _require_cpu_kernel()
    neuron = make(backend=backend)
    x = torch.zeros(0, 2, 3)
    message = rf"{make.__name__}: expected at least one time step \(T >= 1\) in \[T, B, \.\.\.\], got shape \(0, 2, 3\)"
    with pytest.raises(ValueError, match=message):
        neuron(x)
    with pytest.raises(ValueError, match=message):
        neuron.forward_with_state(x, torch.zeros(2, 3))


def test_zero_time_steps_is_an_error_in_the_functional_references():
    x = torch.zeros(0, 4)
    with pytest.raises(ValueError, match=r"lif_reference: expected at least one time step \(T >= 1\).*\(0, 4\)"):
        lif_reference(x, **_lif_params())
    with pytest.raises(ValueError, match=r"ilif_reference: expected at least one time step \(T >= 1\).*\(0, 4\)"):
        ilif_reference(x, levels=4, beta=0.25)


def test_zero_time_steps_is_an_error_in_the_fused_functions():
    _require_cpu_kernel()
    from spikedrive.neurons.kernels import ilif_cpu, lif_cpu

    with pytest.raises(ValueError, match=r"fused LIF: expected at least one time step"):
        lif_cpu(torch.zeros(0, 4), **_lif_params())
    with pytest.raises(ValueError, match=r"fused I-LIF: expected at least one time step"):
        ilif_cpu(torch.zeros(0, 4), levels=4, beta=0.25)


# --- non-finite input through the reset ------------------------------------------------------


def _plain_lif(xs: list[float], inv_tau: float, v_th: float, v_reset: float | None) -> tuple[list[float], float]:
    """The LIF equations on Python floats, decay_input=True; the reset as arithmetic."""
    rest = 0.0 if v_reset is None else v_reset
    v, spikes = rest, []
    for x in xs:
        h = v + (x - (v - rest)) * inv_tau
        s = 1.0 if h - v_th >= 0 else 0.0
        v = h - v_th * s if v_reset is None else h * (1.0 - s) + v_reset * s
        spikes.append(s)
    return spikes, v


# Lanes: +inf (fires, then inf * 0 = NaN poisons the membrane), -inf, NaN, and a finite one.
NONFINITE = [[INF, -INF, NAN, 3.0], [3.0, 3.0, 3.0, 3.0], [3.0, 3.0, 3.0, 3.0]]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("v_reset", [0.0, -0.5, None], ids=["hard0", "hard-0.5", "soft"])
def test_non_finite_input_gives_the_reference_arithmetic_on_the_cpu_kernel(v_reset, dtype):
    _require_cpu_kernel()
    x = torch.tensor(NONFINITE, dtype=dtype)
    results = {}
    for backend in ("reference", "cpu"):
        s, v = LIF(v_reset=v_reset, backend=backend).forward_with_state(x)
        results[backend] = (s, v)
    for lane in range(x.shape[1]):
        spikes, v_last = _plain_lif(x[:, lane].tolist(), 0.5, 1.0, v_reset)
        for backend, (s, v) in results.items():
            assert s[:, lane].tolist() == spikes, (backend, lane)
            torch.testing.assert_close(v[lane], torch.tensor(v_last, dtype=dtype), rtol=0, atol=0, equal_nan=True,
                                       msg=lambda m, b=backend, i=lane: f"{b}, lane {i}: {m}")
    torch.testing.assert_close(results["cpu"][1], results["reference"][1], rtol=0, atol=0, equal_nan=True)


def test_infinite_input_fires_once_then_the_nan_membrane_stays_silent():
    # The case: [inf, 3, 3] under a hard reset.
    _require_cpu_kernel()
    x = torch.tensor([[INF], [3.0], [3.0]])
    for backend in ("reference", "cpu"):
        s, v = LIF(backend=backend).forward_with_state(x)
        assert s.flatten().tolist() == [1.0, 0.0, 0.0], backend
        assert torch.isnan(v).all(), backend


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # NumPy on inf * 0
def test_non_finite_input_through_the_triton_interpreter(monkeypatch):
    pytest.importorskip("triton")
    from spikedrive.neurons.kernels import triton_kernels as tk
    from spikedrive.neurons.kernels.fused import fused_lif

    monkeypatch.setenv("TRITON_INTERPRET", "1")
    x = torch.tensor(NONFINITE)
    for v_reset in (0.0, -0.5, None):
        params = _lif_params(v_reset)
        s_ref, v_ref = lif_reference(x, **params)
        s, v = fused_lif(tk.triton_ops(), x, **params)
        assert torch.equal(s, s_ref), v_reset
        torch.testing.assert_close(v, v_ref, rtol=0, atol=0, equal_nan=True)


# --- dtype of the streaming state ------------------------------------------------------------


@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("make", [LIF, ParametricLIF, ILIF], ids=lambda c: c.__name__)
def test_state_is_cast_to_the_input_dtype_on_every_backend(make, backend):
    if backend == "cpu":
        _require_cpu_kernel()
    x = torch.tensor([[0.7, 0.2], [0.7, 1.9]], dtype=torch.float32)
    v_init = torch.tensor([0.4, 0.1], dtype=torch.float64, requires_grad=True)
    s, v = make(backend=backend).forward_with_state(x, v_init)
    assert s.dtype == torch.float32 and v.dtype == torch.float32
    s_want, v_want = make(backend="reference").forward_with_state(x, v_init.detach().float())
    assert torch.equal(s, s_want)
    assert torch.equal(v, v_want)
    v.sum().backward()  # the cast is differentiable: the float64 state gets a float64 gradient
    assert v_init.grad is not None and v_init.grad.dtype == torch.float64


def test_functional_references_cast_the_state_too():
    x = torch.tensor([[0.7], [0.7]])
    v_init = torch.tensor([0.4], dtype=torch.float64)
    assert lif_reference(x, **_lif_params(), v_init=v_init)[1].dtype == torch.float32
    assert ilif_reference(x, levels=4, beta=0.25, v_init=v_init)[1].dtype == torch.float32


# --- with_decay on the subclasses ------------------------------------------------------------


def test_if_with_decay_is_a_clear_type_error():
    with pytest.raises(TypeError, match=r"IF.with_decay: IF has no leak \(H = V \+ X\), so a decay does not apply"):
        IF.with_decay(0.5, 1.0)


def test_parametric_lif_with_decay_starts_at_that_decay_and_learns_it():
    neuron = ParametricLIF.with_decay(0.75, 0.9, backend="reference")
    assert isinstance(neuron, ParametricLIF)
    assert neuron.decay_input is False and neuron.v_reset == 0.0
    assert neuron.current_tau == pytest.approx(4.0)  # tau = 1 / (1 - decay)
    x = torch.tensor([[0.5], [0.3], [0.4], [0.1]])
    v, want = 0.0, []
    for xt in x.flatten().tolist():  # H = decay V + X, hard reset to 0
        h = 0.75 * v + xt
        s = 1.0 if h >= 0.9 else 0.0
        v = 0.0 if s else h
        want.append(s)
    assert neuron(x).flatten().tolist() == want == [0.0, 0.0, 1.0, 0.0]
    assert any(p is neuron.w for p in neuron.parameters())


@pytest.mark.parametrize("decay", [0.0, 1.0, NAN])
def test_parametric_lif_with_decay_needs_a_decay_strictly_between_0_and_1(decay):
    message = rf"ParametricLIF.with_decay: decay must be a finite number in \(0, 1\).*got {decay}"
    with pytest.raises(ValueError, match=message):
        ParametricLIF.with_decay(decay, 1.0)


# --- repr ------------------------------------------------------------------------------------


def test_parametric_lif_repr_shows_the_learned_tau():
    neuron = ParametricLIF(init_tau=2.0)
    with torch.no_grad():
        neuron.w.fill_(-math.log(3.0))  # 1 / sigmoid(w) = 1 + e^-w = 4
    assert neuron.current_tau == pytest.approx(4.0)
    text = repr(neuron)
    assert "current_tau=4," in text and "init_tau=2," in text, text
    assert " tau=2" not in text and "(tau=2" not in text, text


# --- constructor validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: LIF(v_threshold=NAN), ValueError, "LIF: v_threshold must be a finite number, got nan"),
        (lambda: LIF(v_threshold=INF), ValueError, "LIF: v_threshold must be a finite number, got inf"),
        (lambda: LIF(tau=INF), ValueError, r"LIF: tau must be a finite number >= 1 \(time steps\), got inf"),
        (lambda: LIF(tau=NAN), ValueError, r"LIF: tau must be a finite number >= 1 \(time steps\), got nan"),
        (lambda: LIF(tau="2"), TypeError, r"LIF: tau must be a real number, got '2' \(str\)"),
        (lambda: LIF(tau=True), TypeError, r"LIF: tau must be a real number, got True \(bool\)"),
        (lambda: LIF(v_reset=-INF), ValueError,
         r"LIF: v_reset must be a finite number or None \(soft reset\), got -inf"),
        (lambda: LIF(surrogate="atan"), TypeError,
         r"LIF: surrogate must be a Surrogate instance from spikedrive.neurons, got 'atan' \(str\); "
         r"pass one such as surrogate=Atan\(\) or Sigmoid\(alpha=4.0\)"),
        (lambda: LIF(surrogate=Atan), TypeError,
         r"LIF: surrogate must be a Surrogate instance .* got the class Atan; pass an instance: surrogate=Atan\(\)"),
        (lambda: LIF(surrogate=torch.sigmoid), TypeError, r"LIF: surrogate must be a Surrogate instance"),
        (lambda: LIF.with_decay(NAN, 1.0), ValueError,
         r"LIF.with_decay: decay must be a finite number in \[0, 1\), got nan"),
        (lambda: IF(v_threshold=INF), ValueError, "IF: v_threshold must be a finite number, got inf"),
        (lambda: IF(v_reset=NAN), ValueError, "IF: v_reset must be a finite number or None"),
        (lambda: IF(surrogate="sigmoid"), TypeError, "IF: surrogate must be a Surrogate instance"),
        (lambda: ParametricLIF(init_tau=INF), ValueError,
         r"ParametricLIF: init_tau must be a finite number > 1 \(time steps\), got inf"),
        (lambda: ParametricLIF(init_tau=NAN), ValueError, r"ParametricLIF: init_tau must be a finite number > 1"),
        (lambda: ParametricLIF(v_threshold=NAN), ValueError,
         "ParametricLIF: v_threshold must be a finite number, got nan"),
        (lambda: ParametricLIF(surrogate="atan"), TypeError, "ParametricLIF: surrogate must be a Surrogate instance"),
        (lambda: ILIF(D=True), TypeError, r"ILIF: D must be an integer >= 1 \(not a bool\), got True"),
        (lambda: ILIF(D=2.0), TypeError, r"ILIF: D must be an integer >= 1 \(not a bool\), got 2.0 \(float\)"),
        (lambda: ILIF(D=0), ValueError, r"ILIF: D must be an integer >= 1, got 0"),
        (lambda: ILIF(beta=NAN), ValueError,
         r"ILIF: beta \(membrane decay\) must be a finite number in \[0, 1\), got nan"),
        (lambda: ILIF(beta=INF), ValueError,
         r"ILIF: beta \(membrane decay\) must be a finite number in \[0, 1\), got inf"),
        (lambda: ILIF(tau=INF), ValueError, r"ILIF: tau must be a finite number >= 1 \(time steps\), got inf"),
        (lambda: ILIF(tau="3"), TypeError, r"ILIF: tau must be a real number, got '3' \(str\)"),
    ],
)
def test_bad_constructor_arguments_name_argument_value_and_expectation(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_numbers_of_any_real_type_are_accepted():
    lif = LIF(tau=np.float32(3.0), v_threshold=2, v_reset=np.float64(-0.5))
    assert (lif.tau, lif.v_threshold, lif.v_reset) == (3.0, 2.0, -0.5)
    assert type(lif.tau) is float and type(lif.v_threshold) is float
    ilif = ILIF(D=np.int64(3), beta=np.float64(0.5))
    assert ilif.D == 3 and type(ilif.D) is int
    assert ILIF(D=3)(torch.full((1, 2), 9.0)).flatten().tolist() == [3.0, 3.0]


# --- coders ----------------------------------------------------------------------------------


@pytest.mark.parametrize("encode", [lambda x: poisson_encode(x, 4), lambda x: PoissonEncoder(4)(x)])
def test_poisson_coding_refuses_nan(encode):
    x = torch.tensor([0.2, NAN, 0.7, NAN])
    message = r"poisson_encode: x contains NaN \(2 of 4 values\); it must hold firing probabilities in \[0, 1\]"
    with pytest.raises(ValueError, match=message):
        encode(x)


def test_poisson_coding_still_refuses_out_of_range_and_accepts_the_bounds():
    with pytest.raises(ValueError, match=r"poisson_encode: x must lie in \[0, 1\].*\[0.2, inf\]"):
        poisson_encode(torch.tensor([0.2, INF]), 3)
    s = poisson_encode(torch.tensor([0.0, 1.0]), 5, torch.Generator().manual_seed(0))
    assert s[:, 0].sum() == 0 and s[:, 1].sum() == 5


@pytest.mark.parametrize("encode", [lambda x: latency_encode(x, 4), lambda x: LatencyEncoder(4)(x)])
def test_latency_coding_refuses_nan(encode):
    message = r"latency_encode: x contains NaN \(1 of 2 values\); it must hold intensities in \[0, 1\]"
    with pytest.raises(ValueError, match=message):
        encode(torch.tensor([0.5, NAN]))


# --- the CPU kernel's per-call path ----------------------------------------------------------


class _CountingLock:
    """A lock that counts how often it is taken."""

    def __init__(self) -> None:
        self.acquired = 0

    def __enter__(self) -> "_CountingLock":
        self.acquired += 1
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def acquire(self, *args: object, **kwargs: object) -> bool:
        self.acquired += 1
        return True

    def release(self) -> None:
        return None


def test_loaded_cpu_kernel_takes_no_lock_per_neuron_call(monkeypatch):
    _require_cpu_kernel()
    lock = _CountingLock()
    monkeypatch.setattr(cpu_kernel, "_LOCK", lock)
    x = torch.randn(3, 2, 5, generator=torch.Generator().manual_seed(0)).requires_grad_()
    for neuron in (LIF(backend="cpu"), LIF(), ParametricLIF(), ILIF(backend="cpu"), ILIF()):
        s, _ = neuron.forward_with_state(x)
        neuron(x).sum().backward()
        assert s.shape == x.shape
    assert cpu_kernel.cpu_kernel_error() is None
    assert lock.acquired == 0


def test_missing_cpu_kernel_takes_no_lock_per_neuron_call_either(monkeypatch):
    # Once the build has failed, auto falls back to the reference without asking again.
    lock = _CountingLock()
    monkeypatch.setattr(cpu_kernel, "_LOCK", lock)
    monkeypatch.setattr(cpu_kernel, "_STATE", {"ops": None, "error": "disabled for this test", "tried": True,
                                                "warned": True})
    x = torch.full((2, 3), 2.0)
    assert LIF()(x).sum() == 6 and ILIF()(x).sum() == 12  # I-LIF: 2 per step
    with pytest.raises(ValueError, match=r"not available \(disabled for this test\)"):
        LIF(backend="cpu")(x)
    assert lock.acquired == 0
