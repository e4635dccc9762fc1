"""The exact map between spikedrive's discrete-time neurons and NIR's continuous-time ones.

NIR states each neuron as an ODE; one spikedrive time step lasts ``dt`` seconds and is the
forward-Euler step of that ODE. With ``V`` the membrane before the step and ``X`` the input:

* NIR ``LIF``: ``tau dv/dt = (v_leak - v) + r I``, spike when ``v > v_threshold``, then
  ``v = v_reset``. Euler over ``dt``: ``H = V + (dt / tau_nir) (v_leak - V + r X)``.
* spikedrive ``LIF(tau, decay_input=True)``: ``H = V + (X - (V - V_rest)) / tau``, so
  ``tau_nir = tau * dt``, ``r = 1``, ``v_leak = V_rest``.
* spikedrive ``LIF(tau, decay_input=False)``: ``H = V - (V - V_rest) / tau + X``, so
  ``tau_nir = tau * dt``, ``r = tau``, ``v_leak = V_rest``. (snnTorch's ``Leaky`` writes this
  form: ``r = tau_nir / dt``.)
* NIR ``IF``: ``dv/dt = r I``; spikedrive ``IF``: ``H = V + X``, so ``r = 1 / dt``.
* NIR ``LI``: ``tau dv/dt = (v_leak - v) + r I``, the output is ``v`` (no spike):
  :class:`~spikedrive.export.nodes.LeakyIntegrator` with ``H = V + (dt / tau_nir)(v_leak - V + r X)``.

``V_rest`` is ``v_reset`` (hard reset) in spikedrive; a NIR neuron whose ``v_leak`` differs
from its ``v_reset`` has no spikedrive equivalent and is refused. Thresholds and reset
potentials are copied unchanged.

Two things do not map:

* **soft reset** (``v_reset=None``, ``V = H - V_th``): NIR's neurons reset *to* ``v_reset``;
  :func:`lif_to_nir_params` refuses it.
* **strict vs. non-strict threshold**: NIR fires when ``v > v_threshold``, spikedrive when
  ``H >= v_threshold``. They differ only when the membrane lands exactly on the threshold; the
  map is otherwise exact (and exact to the bit for ``decay_input=True`` with a power-of-two ``tau``).
"""

from __future__ import annotations

import numpy as np
import torch

from ..neurons import IF, LIF, ILIF, SpikingNeuron

__all__ = ["lif_to_nir_params", "if_to_nir_params", "lif_from_nir_params", "if_from_nir_params",
           "uniform_value", "DEFAULT_DT", "NotExportableError"]

class NotExportableError(TypeError, ValueError):
    """A module or setting NIR cannot express; the message names the module's path and the reason.

    A ``TypeError`` (the module's kind has no NIR node) and a ``ValueError`` (a setting, such as
    soft reset, has none), so either ``except`` catches it."""


#: Seconds per time step written into NIR graphs by default: snnTorch's importer assumes 1e-4 s.
DEFAULT_DT = 1e-4


def _check_dt(dt: float, who: str) -> float:
    if not isinstance(dt, (int, float)) or isinstance(dt, bool) or not np.isfinite(dt) or dt <= 0:
        raise ValueError(f"{who}: dt (seconds per time step) must be a finite number > 0, got {dt!r}")
    return float(dt)


def lif_to_nir_params(neuron: LIF, shape: tuple[int, ...], dt: float, where: str) -> dict[str, np.ndarray]:
    """Keyword arguments of ``nir.LIF`` for ``neuron`` (a LIF or ParametricLIF, current ``tau``).

    Args:
        neuron: the spiking module.
        shape: the neuron's per-sample shape (without T and B), e.g. ``(16, 8, 8)``.
        dt: seconds per time step.
        where: the module's path in the model, for errors.

    Raises:
        NotExportableError (a ValueError): soft reset (``v_reset=None``), which NIR cannot express.
    """
    dt = _check_dt(dt, "to_nir")
    if isinstance(neuron, ILIF) or not isinstance(neuron, LIF) or isinstance(neuron, IF):
        raise TypeError(f"lif_to_nir_params: expected a LIF neuron at {where}, got {type(neuron).__name__}")
    if neuron.v_reset is None:
        raise NotExportableError(
            f"to_nir: {type(neuron).__name__} at {where!r} uses soft reset (v_reset=None, V = H - V_th); "
            "NIR's LIF resets to v_reset, so a soft-reset neuron has no NIR equivalent")
    inv_tau = neuron._inv_tau()
    tau = 1.0 / float(inv_tau.detach() if isinstance(inv_tau, torch.Tensor) else inv_tau)
    full = lambda v: np.full(shape, v, dtype=np.float32)  # noqa: E731
    return dict(
        tau=full(tau * dt),
        r=full(1.0 if neuron.decay_input else tau),
        v_leak=full(neuron.v_reset),
        v_threshold=full(neuron.v_threshold),
        v_reset=full(neuron.v_reset),
    )


def if_to_nir_params(neuron: IF, shape: tuple[int, ...], dt: float, where: str) -> dict[str, np.ndarray]:
    """Keyword arguments of ``nir.IF`` for an :class:`~spikedrive.neurons.IF` neuron (``r = 1/dt``).

    Raises ``NotExportableError`` (a ``ValueError``) for soft reset, as :func:`lif_to_nir_params`."""
    dt = _check_dt(dt, "to_nir")
    if neuron.v_reset is None:
        raise NotExportableError(
            f"to_nir: IF at {where!r} uses soft reset (v_reset=None, V = H - V_th); NIR's IF resets to "
            "v_reset, so a soft-reset neuron has no NIR equivalent")
    full = lambda v: np.full(shape, v, dtype=np.float32)  # noqa: E731
    return dict(r=full(1.0 / dt), v_threshold=full(neuron.v_threshold), v_reset=full(neuron.v_reset))


def uniform_value(values: np.ndarray | float, name: str, where: str) -> float:
    """The one value every neuron of a NIR node shares for parameter ``name``.

    spikedrive neurons hold scalar hyper-parameters, so per-neuron values are refused with a
    ``ValueError`` naming the node and the parameter."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        raise ValueError(f"from_nir: node {where!r} has an empty {name}")
    first = float(arr.reshape(-1)[0])
    if not np.allclose(arr, first, rtol=1e-6, atol=0.0):
        raise ValueError(
            f"from_nir: node {where!r} has per-neuron values of {name} (from {arr.min():g} to {arr.max():g}); "
            "spikedrive neurons share one value per layer")
    return first


def lif_from_nir_params(tau: np.ndarray, r: np.ndarray, v_leak: np.ndarray, v_threshold: np.ndarray,
                        v_reset: np.ndarray, dt: float, where: str) -> LIF:
    """The spikedrive ``LIF`` equal to a NIR ``LIF`` node run with Euler steps of ``dt`` seconds.

    ``r = 1`` gives ``decay_input=True``, ``r = tau_nir / dt`` gives ``decay_input=False``
    (when both hold, ``tau_nir = dt``, the two forms coincide). Any other ``r``, a ``v_leak``
    other than ``v_reset``, or ``tau_nir < dt`` (an Euler step past the rest point) raise
    ``ValueError`` naming the node."""
    dt = _check_dt(dt, "from_nir")
    tau_n = uniform_value(tau, "tau", where)
    r_v = uniform_value(r, "r", where)
    leak = uniform_value(v_leak, "v_leak", where)
    thr = uniform_value(v_threshold, "v_threshold", where)
    reset = uniform_value(v_reset, "v_reset", where)
    steps = tau_n / dt
    if steps < 1.0 - 1e-6:
        raise ValueError(f"from_nir: LIF node {where!r} has tau={tau_n:g} s below one step dt={dt:g} s; "
                         "pass the dt the graph was written for (from_nir(graph, dt=...))")
    if not np.isclose(leak, reset, rtol=1e-6, atol=1e-12):
        raise ValueError(f"from_nir: LIF node {where!r} has v_leak={leak:g} != v_reset={reset:g}; spikedrive's "
                         "LIF rests where it resets")
    steps = max(steps, 1.0)
    if np.isclose(r_v, 1.0, rtol=1e-6):
        decay_input = True
    elif np.isclose(r_v, steps, rtol=1e-6):
        decay_input = False
    else:
        raise ValueError(f"from_nir: LIF node {where!r} has r={r_v:g}; with dt={dt:g} s spikedrive's LIF "
                         f"needs r = 1 (decay_input=True) or r = tau/dt = {steps:g} (decay_input=False)")
    return LIF(tau=steps, v_threshold=thr, v_reset=reset, decay_input=decay_input, detach_reset=True)


def if_from_nir_params(r: np.ndarray, v_threshold: np.ndarray, v_reset: np.ndarray, dt: float,
                       where: str) -> IF:
    """The spikedrive ``IF`` equal to a NIR ``IF`` node (``r * dt`` must be 1, else ``ValueError``)."""
    dt = _check_dt(dt, "from_nir")
    r_v = uniform_value(r, "r", where)
    if not np.isclose(r_v * dt, 1.0, rtol=1e-6):
        raise ValueError(f"from_nir: IF node {where!r} has r={r_v:g}; spikedrive's IF (H = V + X) needs "
                         f"r = 1/dt = {1.0 / dt:g} for dt={dt:g} s")
    return IF(v_threshold=uniform_value(v_threshold, "v_threshold", where),
              v_reset=uniform_value(v_reset, "v_reset", where), detach_reset=True)


def is_binary_neuron(module: object) -> bool:
    """Whether ``module`` emits 0/1 spikes (a spiking neuron with one level per step)."""
    return isinstance(module, SpikingNeuron) and module.levels == 1 and not module.expanded
