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

from .triton_device import HELPERS, KERNELS

__all__ = ["TritonNeuronOps", "triton_error", "triton_ops", "triton_tensor_supported"]

# Bound by _import_triton(), so that this module imports without Triton; _kernels() hands ``tl``
# to the device code (triton_device.py) through the globals it binds the kernels to.
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
    # Asked on every CUDA neuron call: once the outcome is known, no lock. "tried" is written
    # last, under the lock, so a reader that sees it also sees the module or the error.
    if _STATE["tried"]:
        return triton
    with _LOCK:
        if not _STATE["tried"]:
            try:
                import triton as triton_module
                from triton import language
            except Exception as err:  # ImportError, or a broken install failing in its own way
                _STATE["error"] = f"{type(err).__name__}: {err}"
            else:
                triton, tl = triton_module, language
            _STATE["tried"] = True
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
    jitted = _JITTED.get(interpret)  # written once per mode, under the lock: read without it
    if jitted is not None:
        return jitted
    with _LOCK:
        jitted = _JITTED.get(interpret)
        if jitted is None:
            # triton.jit reads TRITON_INTERPRET now, which is the value just read. The kernels
            # call the helpers through this mode's own globals (see the note in triton_device.py).
            scope: dict[str, Any] = {"__name__": __name__, "tl": tl}
            for helper in HELPERS:
                scope[helper.__name__] = triton.jit(_rebind(helper, scope))
            jitted = SimpleNamespace(**{name: triton.jit(_rebind(fn, scope)) for name, fn in KERNELS.items()})
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


def _backward_tensors(
    run: _Launch, grad_spikes: torch.Tensor | None, grad_v: torch.Tensor | None, x: torch.Tensor,
    v_init: torch.Tensor | None,
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """``(gs, gv, v0, grad_x, grad_v_init)`` of a backward wrapper: the incoming gradients and
    initial membrane checked (``None`` kept), the outputs allocated. With nothing to launch
    (``run.empty``) ``grad_v_init`` is already final: the incoming ``grad_v``, or zeros."""
    gs = _sequence(grad_spikes, x, "grad_spikes")
    gv = _state(grad_v, x, run.N, "grad_v")
    v0 = _state(v_init, x, run.N, "v_init")
    grad_x = torch.empty_like(x)
    if run.empty:
        grad_v_init = gv.clone() if gv is not None else torch.zeros(run.N, dtype=x.dtype, device=x.device)
    else:
        grad_v_init = torch.empty(run.N, dtype=x.dtype, device=x.device)
    return gs, gv, v0, grad_x, grad_v_init


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
        gs, gv, v0, grad_x, grad_v_init = _backward_tensors(run, grad_spikes, grad_v, x, v_init)
        if run.empty:
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
        grad_inv_tau = partial.sum(dtype=torch.float64).to(torch.promote_types(x.dtype, torch.float32)) if need_grad_inv_tau else x.new_zeros(())
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
        gs, gv, v0, grad_x, grad_v_init = _backward_tensors(run, grad_spikes, grad_v, x, v_init)
        if run.empty:
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
