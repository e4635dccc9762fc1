"""NIR graph -> spikedrive module (the inverse of :func:`.to_nir.to_nir`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..layers.time_distributed import Synapse, TimeDistributed
from ._deps import require
from .mapping import DEFAULT_DT, if_from_nir_params, lif_from_nir_params, uniform_value
from .nodes import LeakyIntegrator, Threshold

__all__ = ["from_nir", "NIRNetwork"]


class NIRNetwork(nn.Sequential):
    """The spikedrive modules of a NIR chain, run in order on ``[T, B, ...] -> [T, B, ...]``
    (one time step = one Euler step of ``dt`` seconds). ``readout`` is the graph's
    ``metadata["readout"]`` (``"mean"``: the original model's output is the mean over time)."""

    def __init__(self, modules: dict[str, nn.Module], dt: float, readout: str) -> None:
        super().__init__()
        for name, module in modules.items():
            self.add_module(name, module)
        self.dt, self.readout = dt, readout


def _t(a: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float32).copy())


def _ints(v: Any, n: int) -> tuple[int, ...]:
    arr = np.atleast_1d(np.asarray(v)).astype(int).reshape(-1)
    return tuple(int(a) for a in (arr if arr.size == n else np.repeat(arr[:1], n)))


def _node_module(nir: Any, name: str, node: Any, dt: float) -> nn.Module | None:
    kind = type(node).__name__
    if isinstance(node, (nir.Affine, nir.Linear)):
        w = _t(node.weight)
        layer = nn.Linear(w.shape[1], w.shape[0], bias=isinstance(node, nir.Affine))
        with torch.no_grad():
            layer.weight.copy_(w)
            if layer.bias is not None:
                layer.bias.copy_(_t(node.bias))
        return Synapse(layer)
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        w = _t(node.weight)
        dims = 1 if isinstance(node, nir.Conv1d) else 2
        pad = node.padding if isinstance(node.padding, str) else _ints(node.padding, dims)
        cls = nn.Conv1d if dims == 1 else nn.Conv2d
        layer = cls(w.shape[1] * int(node.groups), w.shape[0], tuple(w.shape[2:]), stride=_ints(node.stride, dims),
                    padding=pad, dilation=_ints(node.dilation, dims), groups=int(node.groups), bias=True)
        with torch.no_grad():
            layer.weight.copy_(w)
            layer.bias.copy_(_t(node.bias) if node.bias is not None else torch.zeros(w.shape[0]))
        return Synapse(layer)
    if isinstance(node, nir.Flatten):
        start, end = int(node.start_dim), int(node.end_dim)
        # NIR's dims exclude the batch; the module sees [T * B, ...]
        return TimeDistributed(nn.Flatten(start + 1 if start >= 0 else start, end + 1 if end >= 0 else end))
    if isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
        k, s, p = _ints(node.kernel_size, 2), _ints(node.stride, 2), _ints(node.padding, 2)
        override = 1 if isinstance(node, nir.SumPool2d) else None
        return TimeDistributed(nn.AvgPool2d(k, s, p, divisor_override=override))
    if isinstance(node, nir.LIF):
        return lif_from_nir_params(node.tau, node.r, node.v_leak, node.v_threshold, node.v_reset, dt, name)
    if isinstance(node, nir.IF):
        return if_from_nir_params(node.r, node.v_threshold, node.v_reset, dt, name)
    if isinstance(node, nir.LI):
        tau = uniform_value(node.tau, "tau", name)
        if tau < dt * (1 - 1e-6):
            raise ValueError(f"from_nir: LI node {name!r} has tau={tau:g} s below one step dt={dt:g} s")
        return LeakyIntegrator(min(dt / tau, 1.0), uniform_value(node.r, "r", name),
                               uniform_value(node.v_leak, "v_leak", name))
    if isinstance(node, nir.Threshold):
        return Threshold(_t(node.threshold))
    if isinstance(node, (nir.Input, nir.Output)):
        return None
    reasons = {
        "CubaLIF": "a current-based LIF has a second state (the synaptic current) that spikedrive's LIF lacks",
        "CubaLI": "a current-based integrator has a synaptic-current state that spikedrive has no module for",
        "NIRGraph": "nested graphs (recurrent subgraphs) are not supported; only a chain of nodes is",
        "Delay": "spikedrive has no delay line",
    }
    raise TypeError(f"from_nir: node {name!r} ({kind}) cannot be imported: "
                    f"{reasons.get(kind, 'spikedrive has no module for this NIR node')}")


def _chain_order(graph: Any) -> list[str]:
    succ: dict[str, list[str]] = {n: [] for n in graph.nodes}
    pred: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for a, b in graph.edges:
        for end in (a, b):
            if end not in graph.nodes:
                raise ValueError(f"from_nir: edge ({a!r}, {b!r}) names a node the graph does not have")
        succ[a].append(b)
        pred[b].append(a)
    starts = [n for n in graph.nodes if not pred[n]]
    if len(starts) != 1:
        raise ValueError(f"from_nir: only single-input chains are supported; nodes without input: {starts}")
    order, node = [], starts[0]
    while True:
        order.append(node)
        if len(succ[node]) > 1 or any(len(pred[n]) > 1 for n in succ[node]):
            raise ValueError(f"from_nir: node {node!r} branches or merges ({succ[node]}); only chains are supported")
        if not succ[node]:
            break
        node = succ[node][0]
        if node in order:
            raise ValueError(f"from_nir: the graph has a cycle through {node!r}; recurrent graphs are not supported")
    if len(order) != len(graph.nodes):
        raise ValueError(f"from_nir: nodes {sorted(set(graph.nodes) - set(order))} are not on the input-output chain")
    return order


def from_nir(graph: Any, dt: float | None = None) -> NIRNetwork:
    """The spikedrive network of a NIR chain graph, ``[T, B, *input] -> [T, B, *output]``.

    Args:
        graph: a ``nir.NIRGraph`` whose nodes form one chain from its input to its output:
            Affine / Linear, Conv1d / Conv2d, Flatten, AvgPool2d / SumPool2d, LIF, IF, LI,
            Threshold. Neuron parameters must be equal across a node's neurons.
        dt: seconds per time step; ``None`` takes ``graph.metadata["dt"]`` (written by
            :func:`~spikedrive.export.to_nir`) or else ``1e-4`` (snnTorch's step).

    The neurons map back as :mod:`.mapping` states; they fire on ``>=`` where NIR says ``>``.

    Raises:
        TypeError: a node spikedrive cannot run (CubaLIF, recurrent subgraph, ...), named.
        ValueError: a graph that is not a chain, or neuron parameters without an equivalent.
        ImportError: the ``nir`` package is missing.
    """
    nir = require("nir", "from_nir")
    meta = graph.metadata if isinstance(getattr(graph, "metadata", None), dict) else {}
    if dt is None:
        dt = float(meta.get("dt", DEFAULT_DT))
    modules: dict[str, nn.Module] = {}
    for name in _chain_order(graph):
        module = _node_module(nir, name, graph.nodes[name], dt)
        if module is not None:
            modules[name.replace(".", "_")] = module
    return NIRNetwork(modules, dt, str(meta.get("readout", "none")))
