"""Which tensors of a forward pass carry I-LIF integers: a dry-run tracer for the conversion.

I-LIF's spike-driven form emits ``D`` binary virtual steps per time step (``[T * D, B, ...]``),
and a synaptic layer sums them back. That is only exact where the layer's input *is* I-LIF output,
possibly moved through operations that commute with the expansion. This module finds those
layers by running the model once in integer mode and following every tensor I-LIF produced:

* **structural** operations (reshape, permute, flatten, max-pooling, zero padding, slicing away
  from time, concatenation along a non-time dim, nearest up-sampling, eval-mode dropout) keep
  the thermometer code intact: max of thermometer codes is the thermometer code of the max;
* **linear** operations (sums of two I-LIF tensors, scaling by a constant that does not vary in
  time, average pooling, linear maps) commute with the synapse's sum over virtual steps, but a
  max taken afterwards would not: the tensor stays "linear";
* **anything else** on an I-LIF tensor (adding a constant or a tensor that is not I-LIF output,
  multiplying two I-LIF tensors, batch norm, comparisons, reductions over time) "poisons" it: no
  layer may sum virtual steps of it, and the conversion refuses the model if it reaches one.

The tracer only marks; what to do with the marks is :mod:`.spike_driven`'s business.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.overrides import TorchFunctionMode, resolve_name
from torch.utils._pytree import tree_flatten

__all__ = ["Mark", "ProvenanceTracer"]


@dataclass(frozen=True)
class Mark:
    """What a tensor carries: I-LIF integers with ``D`` levels, still a per-element thermometer
    code (``thermometer``) or a linear combination of such (``not thermometer``); or, when
    ``poison`` is set, something derived from I-LIF output that no expansion reproduces."""

    D: int = 0
    thermometer: bool = False
    poison: str = ""


# Operations that move or select elements without combining them (they commute with the
# thermometer code). Names are the last component of torch.overrides.resolve_name.
_STRUCTURAL = {
    "reshape", "view", "view_as", "flatten", "unflatten", "permute", "transpose", "swapaxes",
    "squeeze", "unsqueeze", "contiguous", "clone", "detach", "to", "type", "float", "double", "half",
    "bfloat16", "max_pool1d", "max_pool2d", "max_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d",
    "adaptive_max_pool3d", "pixel_shuffle", "pixel_unshuffle", "relu", "relu_", "identity",
    "dropout", "dropout1d", "dropout2d", "dropout3d", "feature_alpha_dropout", "alpha_dropout",
    "cat", "concat", "concatenate", "stack", "chunk", "split", "unbind", "narrow", "__getitem__",
    "flip", "roll", "expand", "expand_as", "repeat", "interpolate", "upsample",
    "upsample_nearest", "amax", "max",
}
# Linear in the marked operand(s): commute with the synapse's sum over virtual steps.
_LINEAR = {
    "add", "add_", "__add__", "__radd__", "__iadd__", "sub", "sub_", "__sub__", "__isub__",
    "neg", "__neg__", "mul", "mul_", "__mul__", "__rmul__", "__imul__", "div", "div_", "__truediv__",
    "__itruediv__", "avg_pool1d", "avg_pool2d", "avg_pool3d", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
    "adaptive_avg_pool3d", "sum", "mean", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
    "conv_transpose2d", "conv_transpose3d", "linear", "matmul", "__matmul__", "mm", "bmm", "einsum",
}
_WEIGHTED = {"conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "linear"}
_ADDITIVE = {"add", "add_", "__add__", "__radd__", "__iadd__", "sub", "sub_", "__sub__", "__isub__"}
_PRODUCTS = {"mul", "mul_", "__mul__", "__rmul__", "__imul__", "matmul", "__matmul__", "mm", "bmm", "einsum"}
# Operations taking a ``dim`` that must not be time (dim 0) for the result to stay exact.
_DIM_OPS = {"cat", "concat", "concatenate", "stack", "chunk", "split", "unbind", "narrow", "flip", "roll",
            "sum", "mean", "amax", "max"}
# Operations whose (non-tensor) result steers Python: data-dependent control flow on I-LIF
# output would take other paths once the output is binary virtual steps.
_CONTROL = {"__bool__", "item", "tolist", "__int__", "__float__", "__index__", "nonzero", "any", "all",
            "equal", "numpy"}
_DROPOUT = {"dropout", "dropout1d", "dropout2d", "dropout3d", "feature_alpha_dropout", "alpha_dropout"}
# Where ``dim`` sits positionally for the ops above (after the tensor argument).
_DIM_POSITION = {"cat": 1, "concat": 1, "concatenate": 1, "stack": 1, "chunk": 2, "split": 2, "unbind": 1,
                 "narrow": 1, "flip": 1, "roll": 2, "sum": 1, "mean": 1, "amax": 1, "max": 1}


def _op_name(func: Any) -> str:
    try:
        return resolve_name(func).rsplit(".", 1)[-1] if resolve_name(func) else getattr(func, "__name__", repr(func))
    except Exception:  # resolve_name may not know every callable
        return getattr(func, "__name__", repr(func))


def _touches_time(name: str, args: tuple[Any, ...], kwargs: dict[str, Any], ndim: int) -> bool:
    """Whether a dim-taking op acts on dim 0 (or on every dim, when no dim is given)."""
    pos = _DIM_POSITION[name]
    dim = kwargs.get("dim", kwargs.get("dims", args[pos] if len(args) > pos else None))
    if name in ("sum", "mean", "amax", "max") and dim is None and "axis" in kwargs:
        dim = kwargs["axis"]
    if name in ("sum", "mean", "amax", "max") and (dim is None or (isinstance(dim, (tuple, list)) and not dim)):
        return True  # reduces everything, time included
    if dim is None:
        dim = 0  # cat / stack / chunk / split / unbind default to dim 0
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    if name == "stack":
        return any(d == 0 or d == -(ndim + 1) for d in dims)
    return any(isinstance(d, int) and d % max(ndim, 1) == 0 for d in dims)


def _index_touches_time(index: Any, ndim: int) -> bool:
    """Whether an index selects along dim 0 (an Ellipsis first is expanded against ``ndim``)."""
    items = list(index) if isinstance(index, tuple) else [index]
    if items and items[0] is Ellipsis:
        used = sum(1 for i in items[1:] if i is not None and i is not Ellipsis)
        if used < ndim:
            return False  # the Ellipsis covers dim 0
        items = items[1:]
    if not items:
        return False
    first = items[0]
    return not (isinstance(first, slice) and first == slice(None))


def _pad_reaches_time(pad: Any, ndim: int) -> bool:
    return isinstance(pad, (tuple, list)) and len(pad) // 2 >= ndim


_IN_PLACE_DUNDERS = {"__iadd__", "__isub__", "__imul__", "__itruediv__", "__ifloordiv__", "__imod__", "__ipow__",
                     "__iand__", "__ior__", "__ixor__", "__ilshift__", "__irshift__", "__imatmul__"}


def _in_place(name: str) -> bool:
    """``add_``, ``mul_``, ``__iadd__``: operations that write into their first argument."""
    return (name.endswith("_") and not name.startswith("__")) or name in _IN_PLACE_DUNDERS


def _varies_in_time(other: torch.Tensor, marked: torch.Tensor) -> bool:
    """Whether ``other`` (unmarked) broadcast against ``marked`` [T, B, ...] differs along time."""
    if other.dim() < marked.dim():
        return False
    return other.shape[0] != 1


class ProvenanceTracer(TorchFunctionMode):
    """Marks the tensors of one forward pass by where they came from (see the module docstring).

    Use as a context manager around a dry run; :meth:`mark` records a source (an I-LIF output)
    and :meth:`mark_of` reads the mark of any tensor seen. Marks are kept by object identity, and
    the tracer holds a reference to every marked tensor so identities stay unique for its life.
    """

    def __init__(self) -> None:
        super().__init__()
        self._marks: dict[int, tuple[torch.Tensor, Mark]] = {}
        #: What the tracer saw that no marking can express (data-dependent control flow).
        self.problems: list[str] = []

    def mark(self, x: torch.Tensor, mark: Mark | None) -> None:
        """Set (or with ``None`` clear) the mark of ``x``."""
        if mark is None:
            self._marks.pop(id(x), None)
        else:
            self._marks[id(x)] = (x, mark)

    def mark_of(self, x: Any) -> Mark | None:
        """The mark of ``x`` (``None`` for unmarked tensors and non-tensors)."""
        entry = self._marks.get(id(x)) if isinstance(x, torch.Tensor) else None
        return entry[1] if entry is not None and entry[0] is x else None

    def marks_in(self, values: Any) -> list[Mark]:
        """Marks of every tensor inside ``values`` (nested tuples, lists, dicts)."""
        leaves, _ = tree_flatten(values)
        return [m for m in (self.mark_of(v) for v in leaves) if m is not None]

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        leaves, _ = tree_flatten((args, kwargs))
        marked = [(v, self.mark_of(v)) for v in leaves if self.mark_of(v) is not None]
        if not marked:
            return out
        name = _op_name(func)
        if name in _CONTROL:
            self.problems.append(f"{name} on I-LIF output steers Python (data-dependent control flow): after "
                                 "expansion it would see binary virtual steps, not the integers")
        result = self._combine(name, args, kwargs, leaves, marked)
        outs, _ = tree_flatten(out)
        for o in outs:
            if isinstance(o, torch.Tensor):
                self.mark(o, result)
        # In-place writes change the tensor written into, whatever they return.
        if args and isinstance(args[0], torch.Tensor) and (name == "__setitem__" or _in_place(name)):
            self.mark(args[0], result)
        return out

    def _combine(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], leaves: list[Any],
                 marked: list[tuple[torch.Tensor, Mark]]) -> Mark:
        """The mark of an op's output from its name and its inputs' marks."""
        marks = [m for _, m in marked]
        poisoned = next((m for m in marks if m.poison), None)
        if poisoned is not None:
            return poisoned
        levels = {m.D for m in marks}
        if len(levels) > 1:
            return Mark(poison=f"{name} combines I-LIF outputs of different D {sorted(levels)}")
        (D,) = levels
        ref = marked[0][0]
        thermometer = all(m.thermometer for m in marks)
        unmarked = [v for v in leaves if isinstance(v, torch.Tensor) and self.mark_of(v) is None]
        if name in _DIM_OPS and _touches_time(name, args, kwargs, ref.dim()):
            return Mark(poison=f"{name} acts along time (dim 0) on I-LIF output")
        if name in ("__getitem__", "__setitem__") and len(args) > 1 and _index_touches_time(args[1], ref.dim()):
            return Mark(poison="indexing time (dim 0) of I-LIF output")
        if name == "__setitem__":
            value = args[2] if len(args) > 2 else None
            target, value_mark = self.mark_of(args[0]), self.mark_of(value)
            zero = isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0
            if target is not None and (zero or value_mark is not None):
                return Mark(D, thermometer and (zero or value_mark.thermometer))
            return Mark(poison="writing values that are not I-LIF output into it (or it into another tensor)")
        if name == "pad":
            mode = kwargs.get("mode", args[2] if len(args) > 2 else "constant")
            value = kwargs.get("value", args[3] if len(args) > 3 else None) or 0
            if _pad_reaches_time(kwargs.get("pad", args[1] if len(args) > 1 else ()), ref.dim()):
                return Mark(poison="padding time (dim 0) of I-LIF output")
            if mode == "constant" and value != 0:
                return Mark(poison="non-zero padding of I-LIF output")
            return Mark(D, thermometer)  # zero, replicate, reflect and circular padding copy elements
        if name == "hardtanh":
            lo = kwargs.get("min_val", args[1] if len(args) > 1 else -1.0)
            hi = kwargs.get("max_val", args[2] if len(args) > 2 else 1.0)
            if lo <= 0 and hi >= D:
                return Mark(D, thermometer)
            return Mark(poison=f"hardtanh clamps to [{lo}, {hi}]: the integers up to D={D} would be clipped, "
                               "their binary virtual steps not")
        if name in ("to", "type") and any(a is torch.bool for a in (*args[1:], *kwargs.values())):
            return Mark(poison=f"{name}(torch.bool) clips the integers to 1")
        if name in _DROPOUT:
            training = kwargs.get("training", args[2] if len(args) > 2 else True)
            p = kwargs.get("p", args[1] if len(args) > 1 else 0.5)
            if training and p > 0:
                return Mark(poison=f"{name} in training draws a fresh mask for each virtual step")
            return Mark(D, thermometer)
        if name in ("max", "amax") and unmarked:
            return Mark(poison=f"{name} against a tensor that is not I-LIF output does not commute with the "
                               "expansion")
        if name == "interpolate" and kwargs.get("mode", args[3] if len(args) > 3 else "nearest") != "nearest":
            return Mark(D, thermometer=False)  # bilinear and friends are linear
        if name in _STRUCTURAL:
            if name in ("amax", "max") and not thermometer:
                return Mark(poison=f"{name} of a sum of I-LIF outputs does not commute with the expansion")
            if name in ("cat", "concat", "concatenate", "stack") and unmarked:
                return Mark(poison=f"{name} joins I-LIF output with tensors that are not I-LIF output")
            if name in ("max_pool1d", "max_pool2d", "max_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d",
                        "adaptive_max_pool3d") and not thermometer:
                return Mark(poison=f"{name} of a sum of I-LIF outputs does not commute with the expansion")
            return Mark(D, thermometer)
        if name in _PRODUCTS:
            if len(marked) > 1:
                return Mark(poison=(f"{name} multiplies two I-LIF spike tensors: summed over D virtual steps "
                                    "a product of binary steps gives min(a, b), not a * b; use a spike-product "
                                    "module from spikedrive.layers"))
            if any(_varies_in_time(u, ref) for u in unmarked):
                return Mark(poison=f"{name} by a tensor that varies over time")
            return Mark(D, thermometer=False)
        if name in _ADDITIVE:
            scalars = [a for a in args[1:] if isinstance(a, (int, float)) and not isinstance(a, bool)]
            if unmarked or any(v != 0 for v in scalars):
                return Mark(poison=(f"{name} adds something that is not I-LIF output to it: summed over D "
                                    "virtual steps the addend would count D times"))
            return Mark(D, thermometer=False)
        if name in _LINEAR:
            divisor = kwargs.get("other", args[1] if len(args) > 1 else None)
            if name in ("div", "div_", "__truediv__", "__itruediv__") and self.mark_of(divisor) is not None:
                return Mark(poison="division by I-LIF output")
            if name in _WEIGHTED:
                bias = kwargs.get("bias", args[2] if len(args) > 2 else None)
                if bias is not None:
                    return Mark(poison=f"{name} with a bias: summed over D virtual steps it would count D times")
            elif any(_varies_in_time(u, ref) for u in unmarked):
                return Mark(poison=f"{name} with a tensor that varies over time")
            return Mark(D, thermometer=False)
        return Mark(poison=f"{name} on I-LIF output does not commute with its expansion into virtual steps")

