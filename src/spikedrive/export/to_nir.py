"""spikedrive model -> NIR graph (see :mod:`.mapping` for the neuron parameters)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..layers.readout import Dropout, Flatten
from ..layers.spike_products import SpikeLinearAttention, SpikeMatmul, SpikeProduct
from ..layers.time_distributed import SYNAPTIC_TYPES, Synapse, TimeDistributed
from ..neurons import IF, ILIF, LIF, SpikingNeuron
from ._deps import require
from .chain import Step, model_chain
from .nodes import LeakyIntegrator, Threshold
from .mapping import DEFAULT_DT, NotExportableError, if_to_nir_params, is_binary_neuron, lif_to_nir_params

__all__ = ["to_nir", "NotExportableError"]


def _inner(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, TimeDistributed) else module


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().to(torch.float32).numpy().copy()


def _fold_bn(weight: torch.Tensor, bias: torch.Tensor | None, bn: nn.modules.batchnorm._BatchNorm,
             where: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(W', b')`` of ``bn(layer(x))`` with ``bn``'s running statistics, computed in float64."""
    if bn.running_mean is None or bn.running_var is None:
        raise NotExportableError(f"to_nir: {where!r} is a batch norm without running statistics "
                                 "(track_running_stats=False); it cannot be folded into the layer before it")
    var, mean = bn.running_var.double(), bn.running_mean.double()
    gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(var)
    beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(var)
    scale = gamma / torch.sqrt(var + bn.eps)
    b = bias.double() if bias is not None else torch.zeros_like(var)
    w = weight.double() * scale.view(-1, *([1] * (weight.dim() - 1)))
    return w, (b - mean) * scale + beta


def _weight_node(nir: Any, step: Step, bn: nn.Module | None, in_shape: tuple[int, ...]) -> Any:
    syn = step.module
    layer = _inner(syn)
    if isinstance(syn, Synapse) and syn.virtual_steps != 1:
        raise NotExportableError(
            f"to_nir: {step.path!r} sums I-LIF's {syn.virtual_steps} virtual steps per time step; NIR has no "
            "virtual time steps (export the model before to_spike_driven, and I-LIF is refused anyway)")
    if isinstance(layer, nn.modules.conv._ConvTransposeNd):
        raise NotExportableError(f"to_nir: {step.path!r} ({type(layer).__name__}): NIR has no transposed convolution")
    if isinstance(layer, nn.modules.conv._ConvNd) and layer.padding_mode != "zeros":
        raise NotExportableError(f"to_nir: {step.path!r} pads with {layer.padding_mode!r}; NIR convolutions pad with zeros")
    weight, bias = layer.weight, layer.bias
    if bn is not None:
        weight, bias = _fold_bn(weight, bias, _inner(bn), step.path)
    w = _np(weight)
    b = _np(bias) if bias is not None else None
    if isinstance(layer, nn.Linear):
        return nir.Linear(weight=w) if b is None else nir.Affine(weight=w, bias=b)
    zeros = np.zeros(w.shape[0], dtype=np.float32)
    if isinstance(layer, nn.Conv2d):
        return nir.Conv2d(input_shape=tuple(int(s) for s in in_shape[1:]), weight=w, stride=tuple(layer.stride),
                          padding=layer.padding if isinstance(layer.padding, str) else tuple(layer.padding),
                          dilation=tuple(layer.dilation), groups=layer.groups, bias=zeros if b is None else b)
    if isinstance(layer, nn.Conv1d):
        pad = layer.padding if isinstance(layer.padding, str) else int(layer.padding[0])
        return nir.Conv1d(input_shape=int(in_shape[1]), weight=w, stride=int(layer.stride[0]), padding=pad,
                          dilation=int(layer.dilation[0]), groups=layer.groups, bias=zeros if b is None else b)
    raise NotExportableError(f"to_nir: {step.path!r} ({type(layer).__name__}): NIR has no node for this layer")


def _pool(layer: nn.Module, where: str) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    def pair(v: Any) -> tuple[int, int]:
        return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))
    if getattr(layer, "ceil_mode", False) or getattr(layer, "dilation", 1) not in (1, (1, 1)):
        raise NotExportableError(f"to_nir: {where!r} ({layer}): NIR pooling has no ceil_mode or dilation")
    return pair(layer.kernel_size), pair(layer.stride if layer.stride is not None else layer.kernel_size), \
        pair(layer.padding)


_PRODUCTS = (SpikeProduct, SpikeMatmul, SpikeLinearAttention)


def _is_product(module: nn.Module) -> bool:
    return isinstance(module, _PRODUCTS) or "Attention" in type(module).__name__


def _refusal(step: Step) -> NotExportableError:
    m = step.module
    name = type(m).__name__
    if isinstance(m, ILIF):
        why = (f"I-LIF emits integers 0..{m.D} per time step, and NIR's neurons emit binary events; its virtual-step "
               "expansion changes the time axis, which NIR cannot express either")
    elif isinstance(m, _PRODUCTS):
        why = "it multiplies two spike tensors (a spike product); NIR has no product of two signals"
    elif "Attention" in name:
        why = ("attention multiplies its input by scores computed from that input; NIR has no product of "
               "two signals")
    elif isinstance(m, SpikingNeuron):
        why = "NIR has no node for this neuron model"
    else:
        why = "NIR has no node for this module"
    return NotExportableError(f"to_nir: {step.path!r} ({name}) cannot be exported: {why}")


def to_nir(model: nn.Module, sample_input: torch.Tensor, dt: float = DEFAULT_DT) -> Any:
    """The NIR graph of ``model``, one NIR evaluation step per spikedrive time step.

    Args:
        model: a :class:`~spikedrive.models.small.SmallSpikingCNN` or an ``nn.Sequential`` over
            ``[T, B, ...]`` of Synapse (conv1d/2d, linear), batch norm (folded into the synapse
            before it, with running statistics), LIF / IF / ParametricLIF (current ``tau``),
            :class:`~.nodes.LeakyIntegrator` (NIR ``LI``), :class:`~.nodes.Threshold`, average
            pooling, max-pooling over binary spikes, Flatten and Dropout (dropped).
        sample_input: what ``model`` takes (``[B, C, H, W]`` or ``[T, B, ...]``): it fixes the
            per-step input shape and checks that the chain of modules reproduces ``model``.
        dt: seconds per time step (default ``1e-4``, the step snnTorch's importer assumes).

    Returns:
        ``nir.NIRGraph`` from ``"input"`` (one step's sample shape, no T or B) to ``"output"``
        (the last layer's per-step output). With ``metadata["readout"] == "mean"``, the model's
        output is the mean over time of the graph's output.

    Max-pooling has no NIR node; over binary spikes (after a LIF / IF) it equals average pooling
    followed by a detector neuron that fires when any input fired: ``AvgPool2d`` then a ``LIF``
    with ``tau = dt`` (no memory), ``r = 1`` and threshold ``1 / (2 k_h k_w)``, exact in NIR's
    ``>`` and spikedrive's ``>=`` alike.

    Raises:
        NotExportableError (a TypeError and ValueError): a module NIR cannot express (I-LIF,
            spike products / attention, transposed conv, soft reset, ...), naming its path and
            the reason.
        ImportError: the ``nir`` package is missing (``pip install 'spikedrive[export]'``).
    """
    nir = require("nir", "to_nir")
    try:
        chain = model_chain(model)
    except TypeError:
        # Not a chain: if it holds a module NIR could never express, that is the reason to give.
        for path, sub in model.named_modules():
            if path and (isinstance(sub, ILIF) or _is_product(sub)):
                raise _refusal(Step(path, sub)) from None
        raise
    steps = list(chain.steps)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            seq = chain.sequence(model, sample_input)
            if seq.dim() < 3:
                raise ValueError(f"to_nir: sample_input must give a [T, B, ...] sequence, got shape {tuple(seq.shape)}")
            shapes = [tuple(seq.shape[2:])]
            x = seq
            for step in steps:
                x = step.module(x)
                shapes.append(tuple(x.shape[2:]))
            out = model(sample_input)
            ref = x.mean(0) if chain.readout == "mean" else x
            if ref.shape != out.shape or not torch.equal(ref, out):
                raise ValueError("to_nir: running the model's modules in order does not reproduce model(sample_input); "
                                 "its forward does more than the chain NIR would hold")
    finally:
        model.train(was_training)

    nodes: dict[str, Any] = {"input": nir.Input(input_type=np.array(shapes[0]))}
    edges: list[tuple[str, str]] = []
    prev = "input"

    def add(name: str, node: Any) -> None:
        nonlocal prev
        nodes[name] = node
        edges.append((prev, name))
        prev = name

    i = 0
    while i < len(steps):
        step, in_shape, out_shape = steps[i], shapes[i], shapes[i + 1]
        m, inner = step.module, _inner(step.module)
        name = step.path.replace(".", "_")
        if isinstance(m, (Dropout, nn.Dropout, nn.Identity)) or isinstance(inner, (nn.Dropout, nn.Identity)):
            i += 1
            continue
        if isinstance(m, ILIF):
            raise _refusal(step)
        if isinstance(inner, SYNAPTIC_TYPES) and isinstance(m, TimeDistributed):
            bn = None
            if i + 1 < len(steps) and isinstance(_inner(steps[i + 1].module), nn.modules.batchnorm._BatchNorm):
                bn, out_shape = steps[i + 1].module, shapes[i + 2]
                i += 1
            add(name, _weight_node(nir, step, bn, in_shape))
        elif isinstance(inner, nn.modules.batchnorm._BatchNorm):
            raise NotExportableError(f"to_nir: {step.path!r} ({type(inner).__name__}) does not follow a conv or linear "
                                     "layer, so it cannot be folded into one; NIR has no batch norm")
        elif isinstance(m, IF):
            add(name, nir.IF(**if_to_nir_params(m, out_shape, dt, step.path)))
        elif isinstance(m, LIF):
            add(name, nir.LIF(**lif_to_nir_params(m, out_shape, dt, step.path)))
        elif isinstance(m, LeakyIntegrator):
            full = lambda v: np.full(out_shape, v, dtype=np.float32)  # noqa: E731
            add(name, nir.LI(tau=full(dt / m.inv_tau), r=full(m.r), v_leak=full(m.v_leak)))
        elif isinstance(m, Threshold):
            add(name, nir.Threshold(threshold=np.broadcast_to(m.threshold.numpy(), out_shape).astype(np.float32)))
        elif isinstance(inner, nn.AvgPool2d):
            if not inner.count_include_pad and any(_pool(inner, step.path)[2]):
                raise NotExportableError(f"to_nir: {step.path!r} excludes padding from the average; NIR's does not say")
            if inner.divisor_override is not None:
                raise NotExportableError(f"to_nir: {step.path!r} has divisor_override; NIR's AvgPool2d divides by k_h k_w")
            k, s, p = _pool(inner, step.path)
            add(name, nir.AvgPool2d(kernel_size=np.array(k), stride=np.array(s), padding=np.array(p)))
        elif isinstance(inner, nn.MaxPool2d):
            source = steps[i - 1].module if i > 0 else None
            if not is_binary_neuron(source):
                raise NotExportableError(
                    f"to_nir: {step.path!r} (MaxPool2d): NIR has no max-pooling; it is exported exactly only over "
                    f"binary spikes (right after a LIF / IF), but its input comes from "
                    f"{type(source).__name__ if source is not None else 'the model input'}")
            k, s, p = _pool(inner, step.path)
            add(name, nir.AvgPool2d(kernel_size=np.array(k), stride=np.array(s), padding=np.array(p)))
            full = lambda v: np.full(out_shape, v, dtype=np.float32)  # noqa: E731
            add(f"{name}_any", nir.LIF(tau=full(dt), r=full(1.0), v_leak=full(0.0),
                                       v_threshold=full(0.5 / (k[0] * k[1])), v_reset=full(0.0)))
        elif isinstance(m, Flatten) or isinstance(inner, nn.Flatten):
            if isinstance(m, Flatten):
                start, end = 0, -1
            else:
                start = inner.start_dim - 1 if inner.start_dim > 0 else inner.start_dim
                end = inner.end_dim - 1 if inner.end_dim > 0 else inner.end_dim
            add(name, nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=start, end_dim=end))
        else:
            raise _refusal(step)
        i += 1
    nodes["output"] = nir.Output(output_type=np.array(shapes[-1]))
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges,
                        metadata={"producer": "spikedrive", "dt": float(dt), "readout": chain.readout})
