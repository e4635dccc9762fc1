"""Fused multi-step LIF and I-LIF as Triton kernels (CUDA; CPU under ``TRITON_INTERPRET=1``).

The same four operations as the C++ CPU operator (``csrc/neurons_cpu.cpp``), with the same
arguments, consumed by the autograd glue in :mod:`.fused`:

* one program owns ``BLOCK`` neurons and walks all ``T`` steps itself, so the membrane never
  leaves registers in the forward pass;
* the forward pass saves nothing. Backward recomputes the charged membrane ``H`` of every step
  into a ``[T, N]`` scratch buffer (first loop), then walks time backwards reading it (second
  loop); the input is read anyway, and this moves fewer bytes than saving the membrane.

Exactness. The spikes must equal the reference loop's (:mod:`spikedrive.neurons.functional`),
so the forward expressions are written in the reference's order, and each elementwise op the
reference runs as its own PyTorch kernel is rounded to the storage dtype right after it (PyTorch's
CUDA kernels compute each op of a float16/bfloat16 tensor in float32, with Python scalars as
float32, and round the result; float32 and float64 need no extra rounding). Scalars (``1/tau``,
thresholds, ...) reach the kernels through a small tensor in the compute dtype, float32 or
float64, because Triton would type a Python float argument as float32 and the float64 path would
then differ from PyTorch's. The I-LIF "tau" charge divides as the reference would on that device:
PyTorch's CUDA kernels (and its CPU kernels for half types) multiply by the reciprocal of a
scalar divisor, its CPU float32/float64 kernels divide. Kernels are launched with
``enable_fp_fusion=False``: on a GPU the compiler would otherwise contract ``a * b + c`` in the
charge into one FMA with a single rounding (it does, for float32 and float64, when allowed), and
the membrane would drift from PyTorch's by an ulp now and then, enough to flip a spike at the
threshold. Gradients need only float tolerance.

Triton is optional: nothing here imports it until a kernel is needed, and :func:`triton_ops`
raises ``RuntimeError`` when it is missing. Kernels and the Triton functions they call are
decorated with ``triton.jit`` on first use, separately for interpreter mode and compiled mode
(Triton reads ``TRITON_INTERPRET`` when it decorates a function), so setting the variable after
Triton was imported still takes effect.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
from types import FunctionType, SimpleNamespace
from typing import Any

import torch

__all__ = ["TritonNeuronOps", "triton_error", "triton_ops", "triton_tensor_supported"]

# Bound by _import_triton(). The kernels below name ``tl`` as a global, as Triton requires; their
# annotations (``tl.constexpr``) stay unevaluated strings under ``from __future__ import
# annotations``, which Triton accepts, so this module imports without Triton.
triton: Any = None
tl: Any = None

_LOCK = threading.Lock()
_STATE: dict[str, Any] = {"tried": False, "error": None}
_JITTED: dict[bool, SimpleNamespace] = {}

_CUDA_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
# Half types are not advertised for CPU tensors: the kernels follow PyTorch's CUDA rounding,
# while its CPU kernels round some Python scalars to the tensor's dtype first (a - 0.3), and the
# interpreter's own float32 -> bfloat16 conversion does not round to nearest even.
_INTERPRETER_DTYPES = (torch.float32, torch.float64)

_MAX_BLOCK = 1024
_MIN_BLOCK = 128

# Surrogate codes, as fused.surrogate_code() numbers them.
_SIGMOID, _ATAN, _RECTANGLE, _STRAIGHT_THROUGH = 0, 1, 2, 3


def _import_triton() -> Any:
    """The ``triton`` module, or ``None`` (the reason is kept for :func:`triton_error`)."""
    global triton, tl
    with _LOCK:
        if not _STATE["tried"]:
            _STATE["tried"] = True
            try:
                import triton as triton_module
                from triton import language
            except Exception as err:  # ImportError, or a broken install failing in its own way
                _STATE["error"] = f"{type(err).__name__}: {err}"
            else:
                triton, tl = triton_module, language
        return triton


def _require_triton() -> None:
    if _import_triton() is None:
        raise RuntimeError(f"the Triton neuron kernels need the 'triton' package, which does not import "
                           f"({_STATE['error']}); install triton or use backend='cpu'/'reference'")


def triton_error() -> str | None:
    """Why Triton cannot be used, or ``None`` if it imports (tries to import it)."""
    return None if _import_triton() is not None else _STATE["error"]


def _interpreting() -> bool:
    # Ask Triton when it is loaded (its knob also honours a value set in code); otherwise read
    # the variable ourselves, so a CPU-only process never pays for importing Triton.
    module = sys.modules.get("triton")
    if module is not None:
        try:
            return bool(module.knobs.runtime.interpret)
        except Exception:
            pass
    return os.environ.get("TRITON_INTERPRET", "").strip().lower() in ("1", "true", "on", "yes")


def triton_tensor_supported(x: torch.Tensor) -> bool:
    """Whether the Triton kernels can run on ``x`` (``[T, ...]``): a CUDA tensor of float32,
    float64, float16 or bfloat16, or, under ``TRITON_INTERPRET=1``, a float32/float64 CPU
    tensor; and Triton imports. Never raises."""
    try:
        if not isinstance(x, torch.Tensor) or x.dim() < 1:
            return False
        if x.device.type == "cuda":
            ok = x.dtype in _CUDA_DTYPES
        elif x.device.type == "cpu":
            # Checked before importing Triton, so CPU-only runs never import it.
            ok = x.dtype in _INTERPRETER_DTYPES and _interpreting()
        else:
            ok = False
        return ok and _import_triton() is not None
    except Exception:
        return False


# ---------------------------------------------------------------------------------------------
# Kernels. ``ST`` is the storage dtype (x's), ``CT`` the compute dtype (float64 for float64, else
# float32). ``a.to(ST).to(CT)`` rounds to what PyTorch would have stored; it is a no-op when
# ST == CT. Every row pointer advances by N per step: no t * N product, so no 32-bit overflow and
# no dependence on how Triton specialises T and N.
#
# What a forward kernel and its backward's recompute pass share (lanes, scalars, the initial
# membrane, the charge, the reset, the quantiser) is written once, as Triton functions of ours,
# so both run the same expressions and the backward's H is exactly the forward's. Neither these
# nor the kernels are decorated here. A kernel finds a function it calls by name in its
# ``__globals__``: the compiler accepts only a JITFunction there, the interpreter re-executes the
# kernel's source in those globals and calls an InterpretedFunction, and triton.jit makes one or
# the other for the mode in force when it runs. One module global cannot serve both modes, so
# _kernels() binds copies of helpers and kernels to a globals dict of their own per mode, holding
# ``tl`` and the helpers as decorated for that mode.
#
# Triton's own library functions such as tl.zeros or tl.sum are not used: Triton decorates them
# once, when it is imported, and if that happened without TRITON_INTERPRET, the interpreter
# cannot call them. Hence tl.full for zeros, and per-neuron partial sums of d/d inv_tau reduced by
# PyTorch instead of a tl.sum per program.


def _lanes(N, BLOCK: tl.constexpr):
    """This program's neurons (int64 indices) and which of them exist."""
    lanes = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    return lanes, lanes < N


def _membrane0(v0_ptr, lanes, mask, fill, HAS_V0: tl.constexpr, CT: tl.constexpr, BLOCK: tl.constexpr):
    """The membrane before step 0: v_init where given, else ``fill`` (v_rest; 0 for I-LIF)."""
    if HAS_V0:
        v = tl.load(v0_ptr + lanes, mask=mask, other=0.0).to(CT)
    else:
        v = tl.full([BLOCK], 0.0, CT) + fill
    return v


def _lif_params(prm_ptr, ST: tl.constexpr, CT: tl.constexpr):
    """``k`` (1/tau), v_rest and V_th as compute-dtype scalars, and v_rest and V_th rounded to x's
    dtype: the reset writes them as tensors of x's dtype (v_reset * S, V_th * S), while the charge
    and the fire test use them as float32/float64 scalars, as PyTorch does."""
    k = tl.load(prm_ptr)
    rest = tl.load(prm_ptr + 1)
    vth = tl.load(prm_ptr + 2)
    return k, rest, vth, rest.to(ST).to(CT), vth.to(ST).to(CT)


def _lif_charge(v, xt, k, rest, DECAY_INPUT: tl.constexpr, ST: tl.constexpr, CT: tl.constexpr):
    """The charged membrane H, in the reference's order, each op rounded to x's dtype."""
    if DECAY_INPUT:  # v + (x - (v - rest)) * k
        a = (v - rest).to(ST).to(CT)
        a = (xt - a).to(ST).to(CT)
        a = (a * k).to(ST).to(CT)
        h = (v + a).to(ST).to(CT)
    else:  # v - (v - rest) * k + x
        a = (v - rest).to(ST).to(CT)
        a = (a * k).to(ST).to(CT)
        a = (v - a).to(ST).to(CT)
        h = (a + xt).to(ST).to(CT)
    return h


def _lif_reset(h, fire, rest_s, vth_s, HARD: tl.constexpr, ST: tl.constexpr, CT: tl.constexpr):
    """The membrane after the spike ``fire`` of H: v_rest where it fired (hard), or H - V_th."""
    if HARD:
        v = tl.where(fire, rest_s, h)
    else:
        v = tl.where(fire, (h - vth_s).to(ST).to(CT), h)
    return v


def _ilif_charge(v, xt, beta, tau, TAU_CHARGE: tl.constexpr, TAU_RECIP: tl.constexpr, ST: tl.constexpr,
                 CT: tl.constexpr):
    """The charged membrane H, in the reference's order, each op rounded to x's dtype; ``tau``
    holds 1 / tau when TAU_RECIP (see _tau_recip)."""
    if TAU_CHARGE:  # v + (x - v) / tau
        a = (xt - v).to(ST).to(CT)
        if TAU_RECIP:
            a = (a * tau).to(ST).to(CT)
        else:
            a = (a / tau).to(ST).to(CT)
        h = (v + a).to(ST).to(CT)
    else:  # beta * v + x
        a = (beta * v).to(ST).to(CT)
        h = (a + xt).to(ST).to(CT)
    return h


def _ilif_spike(h, levels, MAGIC: tl.constexpr, ST: tl.constexpr, CT: tl.constexpr):
    """The integer spike of H: round(clamp(H, 0, levels))."""
    y = tl.minimum(tl.maximum(h, 0.0, propagate_nan=tl.PropagateNan.ALL), levels,
                   propagate_nan=tl.PropagateNan.ALL).to(ST).to(CT)
    # Round half to even: adding and subtracting 2^23 (2^52 in float64) leaves the nearest
    # integer, ties to even, for 0 <= y <= 2^22 (fused.MAX_LEVELS). No multiply is involved,
    # so there is nothing to contract, and Triton sets no reassociation flags to fold it.
    return ((y + MAGIC) - MAGIC).to(ST).to(CT)


def _lif_forward_kernel(
    x_ptr, v0_ptr, s_ptr, v_out_ptr, prm_ptr, T, N,
    HAS_V0: tl.constexpr, HARD: tl.constexpr, DECAY_INPUT: tl.constexpr,
    CT: tl.constexpr, BLOCK: tl.constexpr,
):
    ST = x_ptr.dtype.element_ty
    lanes, mask = _lanes(N, BLOCK)
    k, rest, vth, rest_s, vth_s = _lif_params(prm_ptr, ST, CT)
    v = _membrane0(v0_ptr, lanes, mask, rest_s, HAS_V0, CT, BLOCK)
    off = lanes
    for _ in range(T):
        xt = tl.load(x_ptr + off, mask=mask, other=0.0).to(CT)
        h = _lif_charge(v, xt, k, rest, DECAY_INPUT, ST, CT)
        fire = (h - vth).to(ST).to(CT) >= 0.0
        # Via float32: the interpreter cannot convert a boolean to bfloat16.
        tl.store(s_ptr + off, tl.where(fire, 1.0, 0.0).to(ST), mask=mask)
        v = _lif_reset(h, fire, rest_s, vth_s, HARD, ST, CT)
        off += N
    tl.store(v_out_ptr + lanes, v.to(ST), mask=mask)


def _lif_backward_kernel(
    gs_ptr, gv_ptr, x_ptr, v0_ptr, h_ptr, gx_ptr, gv0_ptr, gk_ptr, prm_ptr, T, N,
    HAS_GS: tl.constexpr, HAS_GV: tl.constexpr, HAS_V0: tl.constexpr, HARD: tl.constexpr,
    DECAY_INPUT: tl.constexpr, DETACH: tl.constexpr, SURROGATE: tl.constexpr,
    GRAD_K: tl.constexpr, CT: tl.constexpr, BLOCK: tl.constexpr,
):
    ST = x_ptr.dtype.element_ty
    lanes, mask = _lanes(N, BLOCK)
    k, rest, vth, rest_s, vth_s = _lif_params(prm_ptr, ST, CT)
    q0 = tl.load(prm_ptr + 3)
    q1 = tl.load(prm_ptr + 4)
    v0 = _membrane0(v0_ptr, lanes, mask, rest_s, HAS_V0, CT, BLOCK)

    # Pass 1: the forward recurrence again, keeping H of every step (exactly the forward's H, so
    # the fire decisions below are the forward's spikes).
    v = v0
    off = lanes
    for _ in range(T):
        xt = tl.load(x_ptr + off, mask=mask, other=0.0).to(CT)
        h = _lif_charge(v, xt, k, rest, DECAY_INPUT, ST, CT)
        tl.store(h_ptr + off, h.to(ST), mask=mask)
        fire = (h - vth).to(ST).to(CT) >= 0.0
        v = _lif_reset(h, fire, rest_s, vth_s, HARD, ST, CT)
        off += N

    # Pass 2: back in time; gv holds dL/dV_t on entry to step t and dL/dV_{t-1} on exit.
    if HAS_GV:
        gv = tl.load(gv_ptr + lanes, mask=mask, other=0.0).to(CT)
    else:
        gv = tl.full([BLOCK], 0.0, CT)
    gk = tl.full([BLOCK], 0.0, CT)
    off -= N
    h = tl.load(h_ptr + off, mask=mask, other=0.0).to(CT)
    for i in range(T):
        # H_{t-1} is next step's H, and V_{t-1} = reset(H_{t-1}) is what d H_t / d k needs:
        # one load per step serves both. At t = 0 the membrane before is v0.
        has_prev = i < T - 1
        h_prev = tl.load(h_ptr + off - N, mask=mask & has_prev, other=0.0).to(CT)
        z = (h - vth).to(ST).to(CT)
        fire = z >= 0.0
        if HAS_GS:
            ds = tl.load(gs_ptr + off, mask=mask, other=0.0).to(CT)
        else:
            ds = tl.full([BLOCK], 0.0, CT)
        if HARD:
            # V = H (1 - S) + rest S: dV/dH = 1 - S, dV/dS = rest - H.
            if not DETACH:
                ds += gv * (rest_s - h)
            gh_direct = tl.where(fire, 0.0, gv)
        else:
            # V = H - V_th S.
            if not DETACH:
                ds -= gv * vth_s
            gh_direct = gv
        if SURROGATE == 0:  # sigmoid, q0 = alpha
            sig = 1.0 / (1.0 + tl.exp(-q0 * z))
            sg = q0 * sig * (1.0 - sig)
        elif SURROGATE == 1:  # atan, q0 = alpha / 2, q1 = pi / 2 * alpha
            u = q1 * z
            sg = q0 / (1.0 + u * u)
        elif SURROGATE == 2:  # rectangle, q0 = width / 2, q1 = 1 / width
            sg = tl.where(tl.abs(z) < q0, q1, 0.0)
        else:  # straight-through window [q0, q1]
            sg = tl.where((z >= q0) & (z <= q1), 1.0, 0.0)
        gh = gh_direct + ds * sg
        if DECAY_INPUT:
            tl.store(gx_ptr + off, (gh * k).to(ST), mask=mask)
        else:
            tl.store(gx_ptr + off, gh.to(ST), mask=mask)
        if GRAD_K:
            v_prev = _lif_reset(h_prev, (h_prev - vth).to(ST).to(CT) >= 0.0, rest_s, vth_s, HARD, ST, CT)
            v_prev = tl.where(has_prev, v_prev, v0)
            if DECAY_INPUT:
                xt = tl.load(x_ptr + off, mask=mask, other=0.0).to(CT)
                gk += gh * (xt - (v_prev - rest))
            else:
                gk -= gh * (v_prev - rest)
        gv = gh * (1.0 - k)
        h = h_prev
        off -= N
    tl.store(gv0_ptr + lanes, gv.to(ST), mask=mask)
    if GRAD_K:
        # One partial sum per neuron (over time), summed across neurons in float64 on the host.
        tl.store(gk_ptr + lanes, gk, mask=mask)


def _ilif_forward_kernel(
    x_ptr, v0_ptr, s_ptr, v_out_ptr, prm_ptr, T, N,
    HAS_V0: tl.constexpr, TAU_CHARGE: tl.constexpr, TAU_RECIP: tl.constexpr,
    MAGIC: tl.constexpr, CT: tl.constexpr, BLOCK: tl.constexpr,
):
    ST = x_ptr.dtype.element_ty
    lanes, mask = _lanes(N, BLOCK)
    levels = tl.load(prm_ptr)
    beta = tl.load(prm_ptr + 1)
    tau = tl.load(prm_ptr + 2)  # 1 / tau when TAU_RECIP
    v = _membrane0(v0_ptr, lanes, mask, 0.0, HAS_V0, CT, BLOCK)
    off = lanes
    for _ in range(T):
        xt = tl.load(x_ptr + off, mask=mask, other=0.0).to(CT)
        h = _ilif_charge(v, xt, beta, tau, TAU_CHARGE, TAU_RECIP, ST, CT)
        s = _ilif_spike(h, levels, MAGIC, ST, CT)
        tl.store(s_ptr + off, s.to(ST), mask=mask)
        v = (h - s).to(ST).to(CT)
        off += N
    tl.store(v_out_ptr + lanes, v.to(ST), mask=mask)


def _ilif_backward_kernel(
    gs_ptr, gv_ptr, x_ptr, v0_ptr, h_ptr, gx_ptr, gv0_ptr, prm_ptr, T, N,
    HAS_GS: tl.constexpr, HAS_GV: tl.constexpr, HAS_V0: tl.constexpr,
    TAU_CHARGE: tl.constexpr, TAU_RECIP: tl.constexpr, DETACH: tl.constexpr,
    MAGIC: tl.constexpr, CT: tl.constexpr, BLOCK: tl.constexpr,
):
    ST = x_ptr.dtype.element_ty
    lanes, mask = _lanes(N, BLOCK)
    levels = tl.load(prm_ptr)
    beta = tl.load(prm_ptr + 1)
    tau = tl.load(prm_ptr + 2)
    inv_tau = tl.load(prm_ptr + 3)
    v = _membrane0(v0_ptr, lanes, mask, 0.0, HAS_V0, CT, BLOCK)

    off = lanes
    for _ in range(T):
        xt = tl.load(x_ptr + off, mask=mask, other=0.0).to(CT)
        h = _ilif_charge(v, xt, beta, inv_tau if TAU_RECIP else tau, TAU_CHARGE, TAU_RECIP, ST, CT)
        tl.store(h_ptr + off, h.to(ST), mask=mask)
        s = _ilif_spike(h, levels, MAGIC, ST, CT)
        v = (h - s).to(ST).to(CT)
        off += N

    if HAS_GV:
        gv = tl.load(gv_ptr + lanes, mask=mask, other=0.0).to(CT)
    else:
        gv = tl.full([BLOCK], 0.0, CT)
    for _ in range(T):
        off -= N
        h = tl.load(h_ptr + off, mask=mask, other=0.0).to(CT)
        inside = (h >= 0.0) & (h <= levels)  # the straight-through window of the quantiser
        if HAS_GS:
            ds = tl.load(gs_ptr + off, mask=mask, other=0.0).to(CT)
        else:
            ds = tl.full([BLOCK], 0.0, CT)
        if not DETACH:
            ds -= gv  # V = H - S
        gh = gv + tl.where(inside, ds, 0.0)
        if TAU_CHARGE:
            g_in = gh * inv_tau
            tl.store(gx_ptr + off, g_in.to(ST), mask=mask)
            gv = gh - g_in
        else:
            tl.store(gx_ptr + off, gh.to(ST), mask=mask)
            gv = gh * beta
    tl.store(gv0_ptr + lanes, gv.to(ST), mask=mask)


_HELPERS = (_lanes, _membrane0, _lif_params, _lif_charge, _lif_reset, _ilif_charge, _ilif_spike)
_KERNELS = {"lif_forward": _lif_forward_kernel, "lif_backward": _lif_backward_kernel,
            "ilif_forward": _ilif_forward_kernel, "ilif_backward": _ilif_backward_kernel}


# ---------------------------------------------------------------------------------------------
# Host side.


def _rebind(fn: FunctionType, scope: dict[str, Any]) -> FunctionType:
    """A copy of ``fn`` that resolves its globals in ``scope``."""
    copy = FunctionType(fn.__code__, scope, fn.__name__, fn.__defaults__, fn.__closure__)
    copy.__qualname__ = fn.__qualname__
    copy.__doc__ = fn.__doc__
    copy.__annotations__ = dict(fn.__annotations__)  # the tl.constexpr marks triton.jit reads
    return copy


def _kernels() -> SimpleNamespace:
    """The four kernels decorated for the current mode (interpreted or compiled), cached."""
    _require_triton()  # binds ``triton`` and ``tl`` when nothing has yet
    interpret = _interpreting()
    with _LOCK:
        jitted = _JITTED.get(interpret)
        if jitted is None:
            # triton.jit reads TRITON_INTERPRET now, which is the value just read. The kernels
            # call the helpers through this mode's own globals (see the note above the kernels).
            scope: dict[str, Any] = {"__name__": __name__, "tl": tl}
            for helper in _HELPERS:
                scope[helper.__name__] = triton.jit(_rebind(helper, scope))
            jitted = SimpleNamespace(**{name: triton.jit(_rebind(fn, scope)) for name, fn in _KERNELS.items()})
            _JITTED[interpret] = jitted
        return jitted


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    # PyTorch's opmath type: float16/bfloat16 ops compute in float32.
    return torch.float64 if dtype == torch.float64 else torch.float32


def _params(values: list[float], x: torch.Tensor) -> torch.Tensor:
    """Scalars in the compute dtype (rounded as PyTorch rounds a Python scalar), on x's device."""
    return torch.tensor(values, dtype=_compute_dtype(x.dtype)).to(x.device)


def _magic(x: torch.Tensor) -> float:
    # 2^52 or 2^23: see the rounding in the I-LIF kernels.
    return 4503599627370496.0 if x.dtype == torch.float64 else 8388608.0


class _Launch:
    """Geometry and common checks of one call: x as ``[T, N]``, the block, the grid."""

    def __init__(self, x: torch.Tensor, block: int | None, op: str) -> None:
        _require_triton()
        if not isinstance(x, torch.Tensor) or x.dim() < 1:
            raise ValueError(f"{op}: expected a [T, ...] tensor")
        if not x.is_contiguous():
            raise ValueError(f"{op}: expected a contiguous [T, ...] tensor")
        if x.dtype not in _CUDA_DTYPES:
            raise TypeError(f"{op}: expected float32, float64, float16 or bfloat16, got {x.dtype}")
        if x.device.type != "cuda" and not _interpreting():
            raise ValueError(f"{op}: Triton kernels need a CUDA tensor (or TRITON_INTERPRET=1), got {x.device}")
        self.T = x.shape[0]
        self.N = x.numel() // self.T if self.T > 0 else math.prod(x.shape[1:])
        self.block = block if block is not None else _block_for(self.N, x.device)
        self.grid = (triton.cdiv(self.N, self.block),)
        self.ct = tl.float64 if x.dtype == torch.float64 else tl.float32
        self.device = x.device
        self.empty = self.T == 0 or self.N == 0

    def guard(self) -> contextlib.AbstractContextManager:
        """Launch on x's GPU even when another one is current."""
        if self.device.type == "cuda":
            return torch.cuda.device(self.device)
        return contextlib.nullcontext()


def _sm_count(device: torch.device) -> int:
    if device.type != "cuda":
        return 1
    return torch.cuda.get_device_properties(device).multi_processor_count


def _block_for(n: int, device: torch.device) -> int:
    # Large blocks stream longer contiguous runs per step; below a few programs per SM, smaller
    # blocks keep every SM busy instead.
    block = _MAX_BLOCK
    target = 4 * _sm_count(device)
    while block > _MIN_BLOCK and triton.cdiv(n, block) < target:
        block //= 2
    return block


def _state(t: torch.Tensor | None, x: torch.Tensor, n: int, what: str) -> torch.Tensor | None:
    """An optional per-neuron tensor (v_init, grad_v) as x's dtype, contiguous, ``[N]``."""
    if t is None:
        return None
    if t.numel() != n:
        raise ValueError(f"{what} must have x[0]'s {n} elements, got {t.numel()}")
    return t.to(x.dtype).contiguous().view(n)


def _sequence(t: torch.Tensor | None, x: torch.Tensor, what: str) -> torch.Tensor | None:
    """An optional ``[T, ...]`` tensor (grad_spikes) as x's dtype and contiguous; autograd may
    hand over an expanded (stride-0) gradient."""
    if t is None:
        return None
    if t.numel() != x.numel():
        raise ValueError(f"{what} must match the input's {x.numel()} elements, got {t.numel()}")
    return t.to(x.dtype).contiguous()


def _tau_recip(x: torch.Tensor) -> bool:
    # PyTorch divides by a Python scalar as a * (1 / b) on CUDA (and for half types on the CPU),
    # but with a true division for float32/float64 on the CPU. Follow whichever the reference
    # would run for this tensor. (On a GPU Triton's float32 '/' is not correctly rounded either.)
    return x.device.type == "cuda" or x.dtype in (torch.float16, torch.bfloat16)


def _inverse(tau: float, x: torch.Tensor) -> float:
    """``1 / tau`` computed in the compute dtype, as PyTorch computes the reciprocal."""
    ct = _compute_dtype(x.dtype)
    return float(torch.ones((), dtype=ct) / torch.tensor(tau, dtype=ct))


class TritonNeuronOps:
    """The ``ops`` object of :mod:`.fused`, backed by Triton kernels.

    Args:
        block: neurons per program; ``None`` picks one from ``N`` and the GPU (tests set a small
            block to exercise several programs and a ragged last one).
    """

    def __init__(self, block: int | None = None) -> None:
        if block is not None and (block < 16 or block & (block - 1)):
            raise ValueError(f"block must be a power of two >= 16, got {block}")
        self.block = block

    def lif_forward(
        self, x: torch.Tensor, v_init: torch.Tensor | None, inv_tau: float, v_threshold: float,
        v_rest: float, hard_reset: bool, decay_input: bool, need_state: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """LIF over ``x`` ``[T, ...]`` from ``v_init`` (``N`` elements, ``None`` = ``v_rest``).

        Returns ``(spikes, v_final)``: spikes of ``x``'s shape in ``{0, 1}``, the membrane after
        the last step ``[N]``; both in ``x``'s dtype. The membrane is written even without
        ``need_state`` (``N`` values, negligible on a GPU)."""
        run = _Launch(x, self.block, "lif_forward")
        v0 = _state(v_init, x, run.N, "v_init")
        spikes = torch.empty_like(x)
        if run.empty:
            v_final = v0.clone() if v0 is not None else torch.full((run.N,), v_rest, dtype=x.dtype, device=x.device)
            return spikes, v_final
        v_final = torch.empty(run.N, dtype=x.dtype, device=x.device)
        prm = _params([inv_tau, v_rest, v_threshold], x)
        with run.guard():
            _kernels().lif_forward[run.grid](
                x, v0 if v0 is not None else x, spikes, v_final, prm, run.T, run.N,
                HAS_V0=v0 is not None, HARD=bool(hard_reset), DECAY_INPUT=bool(decay_input),
                CT=run.ct, BLOCK=run.block, num_warps=4, enable_fp_fusion=False,
            )
        return spikes, v_final

    def lif_backward(
        self, grad_spikes: torch.Tensor | None, grad_v: torch.Tensor | None, x: torch.Tensor,
        v_init: torch.Tensor | None, inv_tau: float, v_threshold: float, v_rest: float,
        hard_reset: bool, decay_input: bool, detach_reset: bool, surrogate_code: int, p0: float,
        p1: float, need_grad_inv_tau: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Gradients of the LIF forward: ``grad_spikes`` (``x``'s shape) and ``grad_v`` (``[N]``)
        are the incoming gradients (``None`` = zeros).

        Returns ``(grad_x like x, grad_v_init [N], grad_inv_tau 0-dim)``, in ``x``'s dtype;
        ``grad_inv_tau`` is zero unless ``need_grad_inv_tau``."""
        if surrogate_code not in (_SIGMOID, _ATAN, _RECTANGLE, _STRAIGHT_THROUGH):
            raise ValueError(f"lif_backward: unknown surrogate code {surrogate_code}")
        run = _Launch(x, self.block, "lif_backward")
        gs = _sequence(grad_spikes, x, "grad_spikes")
        gv = _state(grad_v, x, run.N, "grad_v")
        v0 = _state(v_init, x, run.N, "v_init")
        grad_x = torch.empty_like(x)
        grad_v_init = torch.empty(run.N, dtype=x.dtype, device=x.device)
        if run.empty:
            grad_v_init = gv.clone() if gv is not None else torch.zeros_like(grad_v_init)
            return grad_x, grad_v_init, x.new_zeros(())
        if surrogate_code == _SIGMOID:
            q0, q1 = p0, 0.0
        elif surrogate_code == _ATAN:
            q0, q1 = p0 / 2.0, math.pi / 2.0 * p0
        elif surrogate_code == _RECTANGLE:
            q0, q1 = p0 / 2.0, 1.0 / p0
        else:
            q0, q1 = p0, p1
        prm = _params([inv_tau, v_rest, v_threshold, q0, q1], x)
        h = torch.empty_like(x)
        partial = torch.empty(run.N if need_grad_inv_tau else 1, dtype=_compute_dtype(x.dtype), device=x.device)
        with run.guard():
            _kernels().lif_backward[run.grid](
                gs if gs is not None else x, gv if gv is not None else x, x, v0 if v0 is not None else x,
                h, grad_x, grad_v_init, partial, prm, run.T, run.N,
                HAS_GS=gs is not None, HAS_GV=gv is not None, HAS_V0=v0 is not None,
                HARD=bool(hard_reset), DECAY_INPUT=bool(decay_input), DETACH=bool(detach_reset),
                SURROGATE=int(surrogate_code), GRAD_K=bool(need_grad_inv_tau), CT=run.ct, BLOCK=run.block,
                num_warps=4, enable_fp_fusion=False,
            )
        grad_inv_tau = partial.sum(dtype=torch.float64).to(x.dtype) if need_grad_inv_tau else x.new_zeros(())
        return grad_x, grad_v_init, grad_inv_tau

    def ilif_forward(
        self, x: torch.Tensor, v_init: torch.Tensor | None, levels: int, beta: float, tau: float,
        tau_charge: bool, need_state: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """I-LIF over ``x`` ``[T, ...]`` from ``v_init`` (``N`` elements, ``None`` = zeros);
        ``need_state`` is accepted for the common signature and the membrane always written.

        Returns ``(spikes, v_final)``: integer spikes in ``0..levels`` of ``x``'s shape, the
        membrane after the last step ``[N]``; both in ``x``'s dtype."""
        run = _Launch(x, self.block, "ilif_forward")
        v0 = _state(v_init, x, run.N, "v_init")
        spikes = torch.empty_like(x)
        if run.empty:
            v_final = v0.clone() if v0 is not None else torch.zeros(run.N, dtype=x.dtype, device=x.device)
            return spikes, v_final
        v_final = torch.empty(run.N, dtype=x.dtype, device=x.device)
        recip = _tau_recip(x)
        prm = _params([float(levels), beta, _inverse(tau, x) if recip else tau], x)
        with run.guard():
            _kernels().ilif_forward[run.grid](
                x, v0 if v0 is not None else x, spikes, v_final, prm, run.T, run.N,
                HAS_V0=v0 is not None, TAU_CHARGE=bool(tau_charge), TAU_RECIP=recip, MAGIC=_magic(x),
                CT=run.ct, BLOCK=run.block, num_warps=4, enable_fp_fusion=False,
            )
        return spikes, v_final

    def ilif_backward(
        self, grad_spikes: torch.Tensor | None, grad_v: torch.Tensor | None, x: torch.Tensor,
        v_init: torch.Tensor | None, levels: int, beta: float, tau: float, tau_charge: bool,
        detach_reset: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Gradients of the I-LIF forward (incoming ``grad_spikes`` like ``x``, ``grad_v``
        ``[N]``, ``None`` = zeros). Returns ``(grad_x like x, grad_v_init [N])``."""
        run = _Launch(x, self.block, "ilif_backward")
        gs = _sequence(grad_spikes, x, "grad_spikes")
        gv = _state(grad_v, x, run.N, "grad_v")
        v0 = _state(v_init, x, run.N, "v_init")
        grad_x = torch.empty_like(x)
        grad_v_init = torch.empty(run.N, dtype=x.dtype, device=x.device)
        if run.empty:
            grad_v_init = gv.clone() if gv is not None else torch.zeros_like(grad_v_init)
            return grad_x, grad_v_init
        recip = _tau_recip(x)
        prm = _params([float(levels), beta, tau, _inverse(tau, x)], x)
        h = torch.empty_like(x)
        with run.guard():
            _kernels().ilif_backward[run.grid](
                gs if gs is not None else x, gv if gv is not None else x, x, v0 if v0 is not None else x,
                h, grad_x, grad_v_init, prm, run.T, run.N,
                HAS_GS=gs is not None, HAS_GV=gv is not None, HAS_V0=v0 is not None,
                TAU_CHARGE=bool(tau_charge), TAU_RECIP=recip, DETACH=bool(detach_reset), MAGIC=_magic(x),
                CT=run.ct, BLOCK=run.block, num_warps=4, enable_fp_fusion=False,
            )
        return grad_x, grad_v_init


_OPS: TritonNeuronOps | None = None


def triton_ops() -> TritonNeuronOps:
    """The Triton ops object (``lif_forward``, ``lif_backward``, ``ilif_forward``,
    ``ilif_backward``; see :mod:`.fused`). Raises ``RuntimeError`` if Triton does not import."""
    global _OPS
    _require_triton()
    if _OPS is None:
        _OPS = TritonNeuronOps()
    return _OPS
