"""Fused multi-step neuron kernels, registered into :mod:`spikedrive.neurons.dispatch`.

* ``"cpu"``: a C++ operator (:mod:`.cpu`), compiled on first use and cached;
* ``"triton"``: Triton kernels for CUDA tensors (host side :mod:`.triton_kernels`, device code
  :mod:`.triton_device`), when Triton imports.

Both share the autograd glue in :mod:`.fused`: one pass over T forward, one backward, nothing
saved but the input.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch

from ..dispatch import register_kernel
from .cpu import _CPU_DTYPES, cpu_kernel_error, cpu_ops, cpu_tensor_supported
from .fused import fused_ilif, fused_lif, ilif_supported, lif_supported
from .triton_kernels import triton_ops, triton_tensor_supported

__all__ = ["cpu_ops", "cpu_kernel_error", "triton_ops", "lif_cpu", "ilif_cpu", "lif_triton", "ilif_triton"]


def lif_cpu(x: torch.Tensor, **params: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Fused CPU LIF; arguments and result as :func:`~spikedrive.neurons.lif_reference`."""
    return fused_lif(cpu_ops(), x, **params)


def ilif_cpu(x: torch.Tensor, **params: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Fused CPU I-LIF; arguments and result as :func:`~spikedrive.neurons.ilif_reference`."""
    return fused_ilif(cpu_ops(), x, **params)


def lif_triton(x: torch.Tensor, **params: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Triton LIF (CUDA); arguments and result as :func:`~spikedrive.neurons.lif_reference`."""
    return fused_lif(triton_ops(), x, **params)


def ilif_triton(x: torch.Tensor, **params: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Triton I-LIF (CUDA); arguments and result as :func:`~spikedrive.neurons.ilif_reference`."""
    return fused_ilif(triton_ops(), x, **params)


def _supported(tensor_ok, params_ok, x: torch.Tensor, params: dict[str, Any]) -> bool:
    # Parameters first: they are cheap, and the tensor check may build the CPU kernel.
    return params_ok(params) and tensor_ok(x)


def _explain(backend: str, tensor_ok, params_ok, x: torch.Tensor, params: dict[str, Any]) -> str:
    if not params_ok(params):
        return ("the fused kernels implement the built-in surrogates (Sigmoid, Atan, Rectangle, "
                "StraightThrough), one time constant per layer, and I-LIF levels up to 2^22")
    if backend == "cpu":
        error = cpu_kernel_error() if x.device.type == "cpu" else None
        if error is not None:
            return f"the fused CPU neuron kernel is not available ({error})"
        dtypes = "/".join(str(d).removeprefix("torch.") for d in _CPU_DTYPES)
        return f"it runs {dtypes} CPU tensors, not {x.dtype} on {x.device}"
    try:
        triton_ops()
    except RuntimeError as err:
        return str(err)
    return f"it runs CUDA tensors (float32/64, float16, bfloat16), not {x.dtype} on {x.device}"


for _kind, _params_ok, _fns in (("lif", lif_supported, (lif_cpu, lif_triton)),
                                 ("ilif", ilif_supported, (ilif_cpu, ilif_triton))):
    for _backend, _tensor_ok, _fn in (("cpu", cpu_tensor_supported, _fns[0]),
                                       ("triton", triton_tensor_supported, _fns[1])):
        register_kernel(_kind, _backend, _fn, partial(_supported, _tensor_ok, _params_ok),
                        partial(_explain, _backend, _tensor_ok, _params_ok))
