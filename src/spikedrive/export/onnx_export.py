"""spikedrive model -> ONNX, checked against PyTorch with onnxruntime.

The exported graph is the model's whole inference with the ``T`` time steps **unrolled**: the
input is what the model takes (e.g. an image ``[B, C, H, W]`` that direct encoding repeats over
``T``, or a sequence ``[T, B, ...]``) and the output is the model's own output (the logits).
Unrolling keeps the graph equal to the PyTorch forward, op for op, with no state to feed
back; a runtime needs one call per sample. For frame-by-frame inference with carried state,
use :class:`~spikedrive.export.StreamingModel` in PyTorch.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import nn

from ..layers.weights import evaluating
from ..neurons import SpikingNeuron
from ._deps import require

__all__ = ["to_onnx", "check_onnx"]


@contextlib.contextmanager
def _reference_neurons(model: nn.Module) -> Iterator[None]:
    """Run every neuron through its plain PyTorch loop (fused kernels cannot be traced), then
    give each its own backend back."""
    neurons = [m for m in model.modules() if isinstance(m, SpikingNeuron)]
    saved = [m.backend for m in neurons]
    for m in neurons:
        m.backend = "reference"
    try:
        yield
    finally:
        for m, b in zip(neurons, saved):
            m.backend = b


def to_onnx(model: nn.Module, sample_input: torch.Tensor, path: str | os.PathLike, *, batch_dim: int | None = 0,
            check: bool = True, rtol: float = 1e-5, atol: float = 1e-5) -> Path:
    """Export ``model`` in eval mode to the ONNX file ``path`` (T unrolled, shapes of ``sample_input``).

    Args:
        model: a spikedrive model (any architecture ``torch.export`` can trace).
        sample_input: one input batch; the file takes this shape, except along ``batch_dim``.
        path: the ``.onnx`` file to write.
        batch_dim: the input's batch axis, left free in the file (``0`` for images
            ``[B, C, H, W]``, ``1`` for sequences ``[T, B, ...]``); ``None`` fixes every axis.
            ``T`` is always fixed: the steps are unrolled.
        check: run the file with onnxruntime on ``sample_input`` and compare with PyTorch.
        rtol, atol: tolerance of that comparison.

    Returns:
        ``path``.

    Raises:
        ImportError: ``onnx``, ``onnxscript`` or ``onnxruntime`` missing (the ``export`` extra).
        AssertionError: with ``check``, outputs differ beyond the tolerance (the largest
            difference is in the message).
    """
    require("onnx", "to_onnx")
    require("onnxscript", "to_onnx")
    if not isinstance(sample_input, torch.Tensor):
        raise TypeError(f"to_onnx: sample_input must be a torch.Tensor, got {type(sample_input).__name__}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    traced, dynamic = sample_input, None
    if batch_dim is not None:
        if not 0 <= batch_dim < sample_input.dim():
            raise ValueError(f"to_onnx: batch_dim must index one of sample_input's {sample_input.dim()} axes or be "
                             f"None, got {batch_dim}")
        if sample_input.shape[batch_dim] == 1:
            # torch.export specializes a size-1 axis to the constant 1; trace with two samples
            traced = torch.cat([sample_input, sample_input], dim=batch_dim)
        dynamic = ({batch_dim: torch.export.Dim("batch")},)
    with _reference_neurons(model), evaluating(model), warnings.catch_warnings(), \
            contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model, (traced,), dynamo=True, input_names=["input"],
                                    output_names=["output"], dynamic_shapes=dynamic, optimize=True,
                                    verbose=False)
        program.save(str(path))
    if check:
        diff, largest = _onnx_difference(model, sample_input, path)
        scale = atol + rtol * largest
        if diff > scale:
            raise AssertionError(f"to_onnx: onnxruntime's output differs from PyTorch's by up to {diff:g} "
                                 f"(tolerance {scale:g}) for {str(path)!r}")
    return path


def check_onnx(model: nn.Module, sample_input: torch.Tensor, path: str | os.PathLike) -> float:
    """Largest absolute difference between onnxruntime on ``path`` and ``model(sample_input)``
    (PyTorch, eval mode, reference neurons)."""
    return _onnx_difference(model, sample_input, path)[0]


def _onnx_difference(model: nn.Module, sample_input: torch.Tensor, path: str | os.PathLike) -> tuple[float, float]:
    # (largest |onnxruntime - PyTorch|, largest |PyTorch|): the check and its relative tolerance.
    ort = require("onnxruntime", "check_onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: sample_input.detach().cpu().numpy()})[0]
    # Eval mode and reference neurons, as exported; every submodule's own mode is restored after,
    # and a model left in training mode does not move its batch-norm statistics here.
    with _reference_neurons(model), evaluating(model):
        want = model(sample_input).cpu().numpy()
    if got.shape != want.shape:
        raise AssertionError(f"check_onnx: onnxruntime gives shape {got.shape}, PyTorch {want.shape}")
    if not got.size:
        return 0.0, 0.0
    want = want.astype(np.float64)
    return float(np.abs(got.astype(np.float64) - want).max()), float(np.abs(want).max())
