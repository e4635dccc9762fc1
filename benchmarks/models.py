"""Training step and inference throughput of our Spike-Driven Transformers vs SpikingJelly 2.0's.

Pairs (same input, same loss, same SGD step, in one process, taken in turns so that machine
drift hits both):

* ``sdt_8_384`` (ours) vs ``spikingjelly.activation_based.model.spike_driven_transformer.sdt_8_384``;
* ``sdt_v2_15m`` (ours) vs SpikingJelly's nearest model: it ships no Meta-SpikeFormer, so the
  nearest is ``qkformer_10_384`` (a hierarchical spiking transformer of similar size: a conv /
  patch-embedding front and spike-driven Q-K attention).

Training: ``T = 4``, batch 8, ``64 x 64`` images, 10 classes, cross-entropy, SGD (momentum 0.9);
a step is forward + backward + optimizer step (SpikingJelly's model then ``reset_net``, which
its stateful neurons require). Inference: batch 32, eval mode, ``no_grad``, images per second.
Time: wall-clock on CUDA; on CPU the process's CPU time, because a shared machine's load inflates
wall time unevenly (run with ``OMP_NUM_THREADS=1`` so CPU time is the work done). Memory: on CUDA the allocator's peak (``max_memory_allocated``) over a step; on CPU, where one
process cannot separate two models' heap, the bytes of the distinct tensors autograd saves for
the backward of one step (the activation memory, which is what grows with ``T`` and depth).

Options: ``--compile`` adds ``torch.compile`` of our model as a third row (optional, measured
separately, never required; the fused neuron is opaque to dynamo, so the compiled model uses the
reference neurons); ``--channels-last`` converts all of our model to channels-last memory (v1's
patch-splitting stem already is; the rest runs NCHW); ``--bf16`` adds both models under bfloat16
autocast (each compared with the other at the same precision; on CPUs with AMX, bfloat16 matmuls
and convs run several times faster than float32 ones, and our fused neurons take bfloat16 directly);
``--breakdown`` (CPU) profiles each model's step into its dense products (convolutions and
matmuls, :data:`DENSE_OPS`) and the rest, and gives each row the speed-up over SpikingJelly it
could reach if nothing but its dense products cost time: the ceiling any neuron fusion can reach.

Writes ``benchmarks/results/models.json`` (``--out`` to change).

Usage: ``python benchmarks/models.py [--device cpu|cuda] [--steps 5] [--rounds 3] [--compile]``
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn

import spikedrive.models.sdt  # noqa: F401  (registers the models)
import spikedrive.models.sdt_v2  # noqa: F401
from spikedrive.models.registry import create_model
from spikedrive.analysis import saved_bytes_for_backward
from spikedrive.neurons import LIF

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def spikingjelly_model(name: str, T: int, num_classes: int) -> tuple[nn.Module, Callable[[nn.Module], None]]:
    """SpikingJelly 2.0's ``name`` and its state reset (``make bench-deps`` installs it)."""
    from spikingjelly.activation_based import functional
    from spikingjelly.activation_based.model import qkformer, spike_driven_transformer

    if name == "sdt_8_384":
        # detach_reset as in the SDT release (and ours); every other neuron argument at its default.
        model = spike_driven_transformer.sdt_8_384(T=T, num_classes=num_classes, detach_reset=True)
    elif name == "qkformer_10_384":
        model = qkformer.qkformer_10_384(T=T, num_classes=num_classes, detach_reset=True)
    else:
        raise ValueError(f"spikingjelly_model: name must be 'sdt_8_384' or 'qkformer_10_384', got {name!r}")
    return model, functional.reset_net


def _reference_lif(v_threshold: float = 1.0) -> LIF:
    """SDT's LIF on the plain PyTorch backend (traceable by ``torch.compile``)."""
    return LIF(tau=2.0, v_threshold=v_threshold, v_reset=0.0, decay_input=True, detach_reset=True,
               backend="reference")


class Runner:
    """One model under test: a training step and an inference pass on fixed data."""

    def __init__(self, name: str, model: nn.Module, reset: Callable[[nn.Module], None] | None, device: torch.device,
                 channels_last: bool = False, bf16: bool = False) -> None:
        self.name, self.model, self.reset, self.device = name, model.to(device), reset, device
        self.bf16 = bf16
        self.fmt = torch.channels_last if channels_last else torch.contiguous_format
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=1e-3, momentum=0.9)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            out = self.model(x.contiguous(memory_format=self.fmt))
        if self.reset is not None:
            self.reset(self.model)
        return out[0] if isinstance(out, tuple) else out

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(self._forward(x), y)

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.model.train()
        self.opt.zero_grad(set_to_none=True)
        self.loss(x, y).backward()
        self.opt.step()

    @torch.no_grad()
    def infer(self, x: torch.Tensor) -> None:
        self.model.eval()
        self._forward(x)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


WALL_CLOCK = False  # --wall: wall-clock on CPU too (a quiet machine, several threads)


def timed(fn: Callable[[], None], device: torch.device, repeats: int) -> float:
    """Median seconds of ``repeats`` calls of ``fn``: wall-clock on CUDA (and with ``--wall``); on
    CPU otherwise the process's CPU time (``time.process_time``), which other processes sharing
    the cores do not inflate (with one thread it equals the wall time of an idle machine)."""
    clock = time.perf_counter if device.type == "cuda" or WALL_CLOCK else time.process_time
    times = []
    for _ in range(repeats):
        _sync(device)
        start = clock()
        fn()
        _sync(device)
        times.append(clock() - start)
    return sorted(times)[len(times) // 2]


def peak_memory(runner: Runner, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Memory of one training step: saved-activation MiB, and the CUDA allocator's peak on CUDA."""
    runner.model.train()
    # Parameters included: the weights each side's graph keeps are part of what it holds.
    out = {"saved_activations_mib": saved_bytes_for_backward(lambda: runner.loss(x, y)) / 2**20}
    if runner.device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(runner.device)
        base = torch.cuda.memory_allocated(runner.device)
        runner.train_step(x, y)
        _sync(runner.device)
        out["cuda_peak_mib"] = (torch.cuda.max_memory_allocated(runner.device) - base) / 2**20
    return out


# The dense products: convolutions and matrix multiplies, forward and backward (their own time,
# without the ops they call). The rest of a step is element-wise work, copies and the optimizer.
DENSE_OPS = frozenset({
    "aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::mkldnn_convolution",
    "aten::convolution_backward", "aten::_slow_conv2d_forward", "aten::_slow_conv2d_backward",
    "aten::mkldnn_linear", "aten::_mkldnn_linear_backward",
})


def dense_breakdown(runner: Runner, x: torch.Tensor, y: torch.Tensor, steps: int) -> dict[str, float]:
    """Seconds per training step spent in :data:`DENSE_OPS` and in everything else, from the
    profiler's self CPU time (CPU only; the profiler's own overhead inflates small ops a little)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            runner.train_step(x, y)
    dense = other = 0.0
    for event in prof.key_averages():
        if event.key in DENSE_OPS:
            dense += event.self_cpu_time_total
        else:
            other += event.self_cpu_time_total
    return {"dense_s": dense / 1e6 / steps, "other_s": other / 1e6 / steps}


def compare(pair: str, runners: list[Runner], device: torch.device, steps: int, rounds: int, T: int,
            batch: int, infer_batch: int, size: int, classes: int, breakdown: bool = False) -> list[dict[str, object]]:
    """Time ``runners`` in turns; return one row per runner."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 3, size, size, generator=g).to(device)
    y = torch.randint(0, classes, (batch,), generator=g).to(device)
    xi = torch.rand(infer_batch, 3, size, size, generator=g).to(device)
    for r in runners:  # warm-up: kernels built, allocator and compile caches filled
        r.train_step(x, y)
        r.infer(xi)
    train_s: dict[str, list[float]] = {r.name: [] for r in runners}
    infer_s: dict[str, list[float]] = {r.name: [] for r in runners}
    for _ in range(rounds):
        for r in runners:
            train_s[r.name].append(timed(lambda: r.train_step(x, y), device, steps))
            infer_s[r.name].append(timed(lambda: r.infer(xi), device, max(1, steps // 2)))
    rows = []
    for r in runners:
        step = min(train_s[r.name])
        rows.append({
            "pair": pair, "model": r.name, "precision": "bf16 autocast" if r.bf16 else "float32",
            "params_m": sum(p.numel() for p in r.model.parameters()) / 1e6,
            "train_step_s": step,
            "infer_images_per_s": infer_batch / min(infer_s[r.name]),
            **peak_memory(r, x, y),
            **(dense_breakdown(r, x, y, steps) if breakdown else {}),
        })
    # Each row against SpikingJelly's model at the same precision.
    base = {row["precision"]: row for row in rows if str(row["model"]).startswith("spikingjelly")}
    for row in rows:
        theirs = base[row["precision"]]
        row["train_speedup_vs_spikingjelly"] = theirs["train_step_s"] / row["train_step_s"]
        if breakdown:
            # The most this row's step could gain on SpikingJelly's if everything but its dense
            # products cost nothing (both sides profiled alike, so the profiler's overhead cancels).
            profiled_theirs = theirs["dense_s"] + theirs["other_s"]
            row["speedup_bound_dense_only"] = profiled_theirs / row["dense_s"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=3, help="timed calls per round (median taken)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of turns (best round kept)")
    parser.add_argument("--T", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--infer-batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile of our models")
    parser.add_argument("--bf16", action="store_true",
                        help="also time both models under bfloat16 autocast (CPU AMX / tensor cores)")
    parser.add_argument("--channels-last", action="store_true", help="run our models in channels-last format")
    parser.add_argument("--pairs", nargs="+", default=["sdt_8_384", "sdt_v2_15m"], choices=["sdt_8_384", "sdt_v2_15m"])
    parser.add_argument("--wall", action="store_true",
                        help="time wall-clock on CPU too (only meaningful on a quiet machine; default: CPU time)")
    parser.add_argument("--breakdown", action="store_true",
                        help="also profile each step into dense products (conv, matmul) and the rest (CPU)")
    parser.add_argument("--out", default=str(RESULTS / "models.json"))
    args = parser.parse_args()
    global WALL_CLOCK
    WALL_CLOCK = args.wall
    device = torch.device(args.device)
    args.breakdown = args.breakdown and device.type == "cpu"  # the profiler's CPU self time
    theirs = {"sdt_8_384": "sdt_8_384", "sdt_v2_15m": "qkformer_10_384"}

    rows: list[dict[str, object]] = []
    for pair in args.pairs:
        torch.manual_seed(0)
        ours = create_model(pair, num_classes=args.classes, T=args.T)
        runners = [Runner(f"spikedrive.{pair}", ours, None, device, args.channels_last)]
        if args.compile:
            # The fused C++ neuron op has no fake-tensor kernel, so dynamo cannot trace it; the
            # compiled model uses the reference neurons, which inductor fuses itself.
            compiled = create_model(pair, num_classes=args.classes, T=args.T, neuron=_reference_lif)
            runners.append(Runner(f"spikedrive.{pair}+compile", torch.compile(compiled), None, device,
                                  args.channels_last))
        sj_model, reset = spikingjelly_model(theirs[pair], args.T, args.classes)
        runners.append(Runner(f"spikingjelly.{theirs[pair]}", sj_model, reset, device))
        if args.bf16:
            torch.manual_seed(0)
            runners.append(Runner(f"spikedrive.{pair}+bf16", create_model(pair, num_classes=args.classes, T=args.T),
                                  None, device, args.channels_last, bf16=True))
            sj_bf16, reset = spikingjelly_model(theirs[pair], args.T, args.classes)
            runners.append(Runner(f"spikingjelly.{theirs[pair]}+bf16", sj_bf16, reset, device, bf16=True))
        rows += compare(pair, runners, device, args.steps, args.rounds, args.T, args.batch, args.infer_batch,
                        args.size, args.classes, breakdown=args.breakdown)

    result = {
        "device": str(device), "platform": platform.platform(), "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "command": "python " + " ".join(sys.argv),
        "clock": "wall" if device.type == "cuda" or WALL_CLOCK else "process CPU time",
        "setting": {k: getattr(args, k) for k in ("T", "batch", "infer_batch", "size", "classes", "steps", "rounds",
                                                 "compile", "channels_last", "bf16", "breakdown")},
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    width = max(len(str(r["model"])) for r in rows)
    print(f"{'model':<{width}}  params  train step  speedup  infer img/s  saved MiB" +
          ("  cuda peak MiB" if device.type == "cuda" else ""))
    for r in rows:
        line = (f"{r['model']:<{width}}  {r['params_m']:5.2f}M  {r['train_step_s']:9.3f}s  {r['train_speedup_vs_spikingjelly']:6.2f}x"
                f"  {r['infer_images_per_s']:11.1f}  {r['saved_activations_mib']:9.1f}")
        if "cuda_peak_mib" in r:
            line += f"  {r['cuda_peak_mib']:13.1f}"
        if "dense_s" in r:
            line += (f"  dense {r['dense_s']:.3f}s + other {r['other_s']:.3f}s;"
                     f" bound if only dense cost: {r['speedup_bound_dense_only']:.2f}x")
        print(line)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
