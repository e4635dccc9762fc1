"""Switching an I-LIF model between integer training and spike-driven inference.

The conversion is decided on data, not assumed: a dry run in integer mode under a
:class:`~.provenance.ProvenanceTracer` follows every tensor I-LIF emits, and only the synaptic
layers (and spike products) that receive I-LIF output sum virtual steps; a layer fed by real
frames, by binary neurons or by the encoder keeps one step per time step. What cannot be decided
(an I-LIF tensor through an operation that does not commute with the expansion, a neuron fed by
I-LIF without a synapse between, a spike-input module that cannot expand, a weight module the
library does not know) is refused with the module's name. The converted model is then run once
more and its outputs compared with the integer model's: a mismatch undoes the conversion and
raises, so a model the tracer misjudged is never returned silently wrong.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from itertools import chain
from typing import Any, Iterator

import torch
from torch import nn
from torch.utils._pytree import tree_flatten, tree_map

from ..neurons import ILIF, SpikingNeuron
from .provenance import Mark, ProvenanceTracer
from .time_distributed import SYNAPTIC_TYPES, Synapse
from .weights import evaluating, refuse_unknown_weights, seeded

__all__ = ["to_spike_driven", "to_integer", "plan_virtual_steps", "integer_mode", "outputs_differ",
           "conversion_mismatch"]


def _example(model: nn.Module, example_input: Any, who: str) -> Any:
    if example_input is not None:
        return example_input
    make = getattr(model, "example_input", None)
    if callable(make):
        return make()
    raise ValueError(
        f"{who}: needs an example input to trace which layers I-LIF feeds: call {who}(model, x) with one "
        f"batch as {type(model).__name__} takes it (or give the model an example_input() method)"
    )


class _Planner:
    """Hooks for the dry run: records each sink's virtual steps, or why it cannot have any."""

    def __init__(self, model: nn.Module, tracer: ProvenanceTracer) -> None:
        self.tracer = tracer
        self.steps: dict[nn.Module, Any] = {}
        self.problems: list[str] = []
        self.names = {m: name or "(model)" for name, m in model.named_modules()}
        wrapped = {id(m.module) for m in model.modules() if isinstance(m, Synapse)}
        self.handles = []
        for m in model.modules():
            if isinstance(m, ILIF):
                self.handles.append(m.register_forward_pre_hook(self._neuron_input))
                self.handles.append(m.register_forward_hook(self._ilif_output))
            elif isinstance(m, SpikingNeuron):
                self.handles.append(m.register_forward_pre_hook(self._neuron_input))
            elif isinstance(m, Synapse):
                self.handles.append(m.register_forward_pre_hook(self._synapse_input))
                self.handles.append(m.register_forward_hook(self._clear_output))
            elif isinstance(m, SYNAPTIC_TYPES) and id(m) not in wrapped:
                self.handles.append(m.register_forward_pre_hook(self._bare_input))
            elif getattr(m, "spike_inputs", False):
                self.handles.append(m.register_forward_pre_hook(self._spike_module_input, with_kwargs=True))
                self.handles.append(m.register_forward_hook(self._clear_output))

    def remove(self) -> None:
        for h in self.handles:
            h.remove()

    def _record(self, module: nn.Module, steps: Any) -> None:
        previous = self.steps.setdefault(module, steps)
        if previous != steps:
            self.problems.append(f"{self.names[module]} is called on inputs with different virtual steps "
                                 f"({previous} and {steps})")

    def _poison(self, module: nn.Module, marks: list[Mark]) -> bool:
        bad = next((m for m in marks if m.poison), None)
        if bad is not None:
            self.problems.append(f"{self.names[module]} ({type(module).__name__}) receives I-LIF output after "
                                 f"{bad.poison}")
        return bad is not None

    def _neuron_input(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        marks = self.tracer.marks_in(args)
        if marks and not self._poison(module, marks):
            self.problems.append(f"{self.names[module]} ({type(module).__name__}) is fed I-LIF spikes with no "
                                 "synaptic layer between: it would run the D virtual steps as real time steps")

    def _ilif_output(self, module: nn.Module, args: tuple[Any, ...], out: torch.Tensor) -> None:
        self.tracer.mark(out, Mark(module.D, thermometer=True))

    def _synapse_input(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        marks = self.tracer.marks_in(args[:1])
        if not self._poison(module, marks):
            self._record(module, marks[0].D if marks else 1)

    def _bare_input(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        marks = self.tracer.marks_in(args[:1])
        if marks and not self._poison(module, marks):
            self.problems.append(f"{self.names[module]} ({type(module).__name__}) is fed I-LIF output but is not "
                                 "wrapped in spikedrive.layers.Synapse, so it cannot sum virtual steps")

    def _spike_module_input(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if self.tracer.marks_in(kwargs):
            self.problems.append(f"{self.names[module]} ({type(module).__name__}) gets I-LIF output as a keyword "
                                 "argument; pass spike tensors to spike-input modules positionally")
            return
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        marks = [self.tracer.mark_of(a) for a in tensors]
        present = [m for m in marks if m is not None]
        if not present or self._poison(module, present):
            return
        expected = getattr(module, "input_virtual_steps", None)
        if expected is not None and len(tuple(expected)) != len(tensors):
            self.problems.append(f"{self.names[module]} ({type(module).__name__}) takes {len(tuple(expected))} spike "
                                 f"tensors but was called with {len(tensors)}")
            return
        if not hasattr(module, "input_virtual_steps"):
            self.problems.append(
                f"{self.names[module]} ({type(module).__name__}) is a spike-input module fed by I-LIF but cannot "
                "expand virtual steps: the product of two integers is the sum over D x D pairs of virtual steps, "
                "not over D matching ones; use spikedrive.layers.SpikeProduct / SpikeMatmul or give it "
                "`input_virtual_steps`")
            return
        self._record(module, tuple(m.D if m is not None else 1 for m in marks))

    def _clear_output(self, module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        # A synapse (or spike product) sums the virtual steps back: its output is real time.
        for o in tree_flatten(out)[0]:
            self.tracer.mark(o, None)


def plan_virtual_steps(model: nn.Module, example_input: Any) -> dict[nn.Module, Any]:
    """Dry-run ``model`` on ``example_input`` (integer mode, eval, no grad) and return, for every
    :class:`Synapse` and spike-input module that ran, how many virtual steps its input carries
    once I-LIF is expanded (an int, or a tuple per input for spike products; 1 = real time).

    Raises:
        ValueError: naming every module the expansion cannot be made exact for.
    """
    tracer = ProvenanceTracer()
    planner = _Planner(model, tracer)
    try:
        with evaluating(model), tracer:
            out = model(example_input)
        planner.problems.extend(tracer.problems)
        if tracer.marks_in(out):
            planner.problems.append(f"{type(model).__name__} returns I-LIF output directly: after expansion it "
                                    "would have D times as many time steps")
    finally:
        planner.remove()
    if planner.problems:
        listed = "\n".join(f"  {p}" for p in dict.fromkeys(planner.problems))
        raise ValueError(f"to_spike_driven: cannot make {type(model).__name__} spike-driven exactly:\n{listed}")
    return planner.steps


def _apply(model: nn.Module, steps: dict[nn.Module, Any], enabled: bool) -> None:
    for m in model.modules():
        if isinstance(m, ILIF):
            m.to_spike_driven(enabled)
        elif isinstance(m, Synapse):
            m.virtual_steps = steps.get(m, 1) if enabled else 1
        elif hasattr(m, "input_virtual_steps"):
            m.input_virtual_steps = steps.get(m, (1, 1)) if enabled else (1, 1)


@contextmanager
def integer_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Temporarily run a converted model in integer mode (for a reference output), then restore
    every neuron's expansion and every layer's virtual steps as they were."""
    restore = _snapshot(model)
    _apply(model, {}, False)
    try:
        yield model
    finally:
        restore()


def _outputs(model: nn.Module, x: Any, seed: int) -> list[torch.Tensor]:
    with evaluating(model), seeded(seed):
        return [o for o in tree_flatten(model(x))[0] if isinstance(o, torch.Tensor)]


def outputs_differ(before: Any, after: Any, rtol: float = 1e-4, atol: float = 1e-4) -> str | None:
    """How two model outputs (tensors or nests of them) differ — count, shape (time steps
    included) or values beyond ``rtol`` / ``atol`` — or ``None`` when they agree."""
    before = [o for o in tree_flatten(before)[0] if isinstance(o, torch.Tensor)]
    after = [o for o in tree_flatten(after)[0] if isinstance(o, torch.Tensor)]
    if len(before) != len(after):
        return f"{len(before)} output tensors before, {len(after)} after"
    for i, (a, b) in enumerate(zip(before, after)):
        if a.shape != b.shape:
            return f"output {i} has shape {tuple(a.shape)} in integer mode but {tuple(b.shape)} after conversion"
        if not torch.allclose(a.double(), b.double(), rtol=rtol, atol=atol, equal_nan=True):
            diff = (a.double() - b.double()).abs().nan_to_num(float("inf")).max().item()
            return f"output {i} differs by up to {diff:.3g} from the integer model's"
    return None


def _in_float64(model: nn.Module, x: Any) -> tuple[nn.Module, Any]:
    """``model`` and ``x`` themselves when already float64, else float64 copies (the model's
    conversion state is copied with it)."""
    floats = {t.dtype for t in chain(model.parameters(), model.buffers()) if t.is_floating_point()}
    floats |= {t.dtype for t in tree_flatten(x)[0] if isinstance(t, torch.Tensor) and t.is_floating_point()}
    if floats <= {torch.float64}:
        return model, x
    twin = copy.deepcopy(model).double()
    return twin, tree_map(lambda t: t.double() if isinstance(t, torch.Tensor) and t.is_floating_point() else t, x)


def conversion_mismatch(model: nn.Module, x: Any, rtol: float = 1e-4, atol: float = 1e-4) -> str | None:
    """How a converted model's outputs on ``x`` differ from the same model's in integer mode, or
    ``None`` when they agree.

    Both runs happen in float64 (on a copy when the model is in a lower precision). The two paths
    are equal in exact arithmetic but sum in different orders (one integer times a weight against
    ``D`` binary terms), so in float32 a pre-activation that lands on an I-LIF rounding boundary
    can flip one integer, and in a large network one flip moves the outputs far beyond any
    tolerance: a float32 comparison would refuse correct conversions. Float64 keeps the check
    about structure, which is what it is for.
    """
    twin, x64 = _in_float64(model, x)
    converted = _outputs(twin, x64, seed=0)
    with integer_mode(twin):
        reference = _outputs(twin, x64, seed=0)
    return outputs_differ(reference, converted, rtol, atol)


def to_spike_driven(model: nn.Module, example_input: Any = None, *, check: bool = True,
                    rtol: float = 1e-4, atol: float = 1e-4) -> nn.Module:
    """Make an I-LIF model spike-driven, in place, and return it.

    Every ILIF then emits ``D`` binary virtual steps per time step, and exactly the synaptic
    layers (and spike products) that receive I-LIF output sum them back, so outputs equal the
    integer model's (to float tolerance) while those layers only accumulate binary spikes. Which
    layers those are is found by a dry run on ``example_input`` (see :func:`plan_virtual_steps`).

    Args:
        model: a model with :class:`~spikedrive.neurons.ILIF` neurons, weight layers built from
            :mod:`spikedrive.layers`.
        example_input: one batch as the model takes it (e.g. ``[B, C, H, W]`` or
            ``[T, B, C, H, W]``); defaults to ``model.example_input()`` where the model has one.
        check: run the converted model on ``example_input`` and compare with the integer model,
            both in float64 (see :func:`conversion_mismatch`); on a mismatch the conversion is
            undone and ``ValueError`` raised.
        rtol, atol: tolerances of that comparison.

    Raises:
        ValueError: no ILIF neuron; no example input; a module the expansion cannot be exact
            for (named); outputs that differ after conversion.
        TypeError: a module with weights that neither the conversion nor the energy model knows.
    """
    who = "to_spike_driven"
    if not any(isinstance(m, ILIF) for m in model.modules()):
        raise ValueError(f"{who}: the model has no ILIF neurons; it is already binary")
    refuse_unknown_weights(model, who)
    x = _example(model, example_input, who)
    restore = _snapshot(model)
    try:
        _apply(model, {}, False)  # plan from the integer model, whatever state it was in
        steps = plan_virtual_steps(model, x)
        _apply(model, steps, True)
        if check:
            try:
                problem = conversion_mismatch(model, x, rtol, atol)
            except Exception as exc:  # the converted model cannot even run on the example
                problem = f"it fails on the example input: {type(exc).__name__}: {str(exc).splitlines()[0]}"
            if problem is not None:
                raise ValueError(f"{who}: {type(model).__name__} gives different outputs after conversion "
                                 f"({problem}); it was left as it was. An operation between I-LIF and a synaptic "
                                 "layer does not commute with the expansion into virtual steps")
    except BaseException:
        restore()  # never leave a model half converted
        raise
    return model


def _snapshot(model: nn.Module):
    """A function that puts every neuron's expansion and every layer's virtual steps back."""
    neurons = [(m, m.spike_driven) for m in model.modules() if isinstance(m, ILIF)]
    synapses = [(m, m.virtual_steps) for m in model.modules() if isinstance(m, Synapse)]
    pairs = [(m, m.input_virtual_steps) for m in model.modules() if hasattr(m, "input_virtual_steps")]

    def restore() -> None:
        for m, on in neurons:
            m.to_spike_driven(on)
        for m, d in synapses:
            m.virtual_steps = d
        for m, pair in pairs:
            m.input_virtual_steps = pair

    return restore


def to_integer(model: nn.Module) -> nn.Module:
    """Undo :func:`to_spike_driven`: I-LIF emits integers again and every layer sees real time."""
    if not any(isinstance(m, ILIF) for m in model.modules()):
        raise ValueError("to_integer: the model has no ILIF neurons; it is already binary")
    _apply(model, {}, False)
    return model
