"""The discrete <-> continuous neuron map of spikedrive.export, against a plain Euler reference.

No optional package is needed: the map is numbers in, numbers out."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spikedrive.export.mapping import (
    if_from_nir_params, if_to_nir_params, lif_from_nir_params, lif_to_nir_params,
)
from spikedrive.export.nodes import LeakyIntegrator
from spikedrive.export.streaming import StreamingModel
from spikedrive.neurons import IF, LIF, ParametricLIF

DT = 1e-3


def euler_lif(x: np.ndarray, tau: float, r: float, v_leak: float, thr: float, v_reset: float, dt: float,
              strict: bool) -> np.ndarray:
    """NIR's LIF ODE, tau dv/dt = (v_leak - v) + r I, one forward-Euler step of dt per input row."""
    v = np.full(x.shape[1:], v_leak, dtype=np.float64)
    out = []
    for xt in x:
        v = v + dt / tau * (v_leak - v + r * xt)
        s = (v > thr) if strict else (v >= thr)
        v = np.where(s, v_reset, v)
        out.append(s.astype(np.float64))
    return np.stack(out)


def _x(seed: int = 0, shape=(12, 3, 5)) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 1.5


@pytest.mark.parametrize("decay_input, tau, v_reset", [(True, 2.0, 0.0), (False, 3.0, 0.0), (True, 4.0, -0.2),
                                                       (False, 1.5, 0.1)])
def test_lif_to_nir_matches_euler_reference(decay_input, tau, v_reset):
    neuron = LIF(tau=tau, v_threshold=0.6, v_reset=v_reset, decay_input=decay_input)
    p = lif_to_nir_params(neuron, (5,), DT, "lif")
    assert p["tau"].shape == (5,) and np.allclose(p["tau"], tau * DT)
    assert np.allclose(p["r"], 1.0 if decay_input else tau)
    assert np.allclose(p["v_leak"], v_reset) and np.allclose(p["v_reset"], v_reset)
    x = _x() * 2
    want = euler_lif(x.numpy(), float(p["tau"][0]), float(p["r"][0]), v_reset, 0.6, v_reset, DT, strict=False)
    got = neuron(x).numpy()
    assert got.mean() > 0.05  # the comparison is not between two silent layers
    np.testing.assert_array_equal(got, want)


def test_lif_from_nir_inverts_to_nir():
    for decay_input in (True, False):
        src = LIF(tau=2.5, v_threshold=0.7, v_reset=0.0, decay_input=decay_input)
        p = lif_to_nir_params(src, (4,), DT, "x")
        back = lif_from_nir_params(dt=DT, where="x", **p)
        assert back.decay_input is decay_input
        assert back.tau == pytest.approx(2.5, rel=1e-6) and back.v_threshold == pytest.approx(0.7)
        x = _x(1, (10, 2, 4))
        assert torch.equal(src(x), back(x))


def test_lif_from_nir_of_snntorch_style_node_is_decay_form():
    # snnTorch's Leaky(beta) is written as tau = dt / (1 - beta), r = tau / dt: H = beta V + X
    beta, dt = 0.75, 1e-4
    tau = np.full(3, dt / (1 - beta))
    neuron = lif_from_nir_params(tau, tau / dt, np.zeros(3), np.ones(3), np.zeros(3), dt, "1")
    x = _x(2, (9, 2, 3))
    v, want = torch.zeros(2, 3, dtype=torch.float64), []
    for t in range(9):
        h = beta * v + x[t]
        s = (h >= 1.0).double()
        v = h * (1 - s)
        want.append(s)
    assert torch.equal(neuron(x), torch.stack(want))


def test_parametric_lif_exports_its_current_tau():
    neuron = ParametricLIF(init_tau=2.0)
    with torch.no_grad():  # as if training had moved 1 / tau = sigmoid(w) away from 1 / 2
        neuron.w.fill_(-1.0)
    tau = 1.0 / float(torch.sigmoid(torch.tensor(-1.0)))
    p = lif_to_nir_params(neuron, (2,), DT, "plif")
    assert np.allclose(p["tau"], tau * DT, rtol=1e-6)


def test_if_maps_with_r_one_over_dt():
    neuron = IF(v_threshold=0.9, v_reset=0.0)
    p = if_to_nir_params(neuron, (5,), DT, "if")
    assert np.allclose(p["r"], 1.0 / DT)
    back = if_from_nir_params(dt=DT, where="if", **p)
    x = _x(3)
    v, want = torch.zeros(3, 5, dtype=torch.float64), []
    for t in range(x.shape[0]):  # dv/dt = r I, Euler: v += dt * r * x
        v = v + DT * float(p["r"][0]) * x[t]
        s = (v >= 0.9).double()
        v = v * (1 - s)
        want.append(s)
    assert torch.equal(back(x), torch.stack(want))
    assert torch.equal(neuron(x), back(x))


def test_soft_reset_is_refused_with_the_reason():
    with pytest.raises(ValueError, match=r"'features\.2'.*soft reset.*v_reset=None"):
        lif_to_nir_params(LIF(v_reset=None), (3,), DT, "features.2")
    with pytest.raises(ValueError, match=r"soft reset"):
        if_to_nir_params(IF(v_reset=None), (3,), DT, "n")


@pytest.mark.parametrize("kwargs, match", [
    (dict(r=np.full(3, 7.0)), r"node '3' has r=7.*r = 1 \(decay_input=True\) or r = tau/dt = 2"),
    (dict(v_leak=np.full(3, 0.3)), r"v_leak=0.3 != v_reset=0"),
    (dict(v_threshold=np.array([1.0, 1.0, 2.0])), r"per-neuron values of v_threshold"),
    (dict(tau=np.full(3, 0.5 * DT)), r"tau=0.0005 s below one step dt=0.001 s"),
])
def test_lif_from_nir_refuses_what_has_no_equivalent(kwargs, match):
    p = dict(tau=np.full(3, 2 * DT), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3), v_reset=np.zeros(3))
    p.update(kwargs)
    with pytest.raises(ValueError, match=match):
        lif_from_nir_params(dt=DT, where="3", **p)


def test_bad_dt_is_named():
    with pytest.raises(ValueError, match=r"dt \(seconds per time step\) must be a finite number > 0, got 0"):
        lif_to_nir_params(LIF(), (1,), 0, "x")


def test_leaky_integrator_matches_euler_and_streams():
    li = LeakyIntegrator(inv_tau=0.25, r=2.0, v_leak=0.1)
    x = _x(4, (8, 2, 3))
    v, want = torch.full((2, 3), 0.1, dtype=torch.float64), []
    for t in range(8):
        v = v + 0.25 * (0.1 - v + 2.0 * x[t])
        want.append(v)
    torch.testing.assert_close(li(x), torch.stack(want), rtol=0, atol=1e-12)
    stream = StreamingModel(torch.nn.Sequential(li))
    parts = [stream(x[:3]), stream(x[3:4]), stream(x[4:])]
    torch.testing.assert_close(torch.cat(parts), torch.stack(want), rtol=0, atol=1e-12)
