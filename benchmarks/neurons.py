"""Multi-step LIF neuron speed: spikedrive's fused kernel against its reference loop, SpikingJelly
and snnTorch, and against the memory-copy floor.

For every input ``x`` float32 ``[T, N]`` (T in 1, 4, 8; N in 64K, 256K, 1M, 2M, 8M neurons) and
each mode, times one call of:

* ``ours fused``: ``spikedrive.neurons.LIF(backend="cpu")`` on CPU (the C++ operator, compiled on
  first use), ``LIF(backend="triton")`` on CUDA;
* ``ours reference``: ``LIF(backend="reference")``, the plain PyTorch loop over T;
* ``SpikingJelly``: ``spikingjelly.activation_based.neuron.LIFNode(step_mode="m")`` with the same
  defaults (tau=2, V_th=1, V_reset=0, decay_input, Sigmoid(4) surrogate), state reset before each
  call. SpikingJelly 2.0 picks its implementation from the tensor's device (CPU: its Torch
  operator; CUDA: native CUDA, else Triton, else Torch), so on CUDA every one it offers is timed
  by setting what ``SJ_LIF_CUDA_IMPLEMENTATION`` would set; older releases with a per-node
  ``backend=`` are timed with ``"torch"`` and, on CUDA, ``"triton"`` and ``"cupy"``;
* ``snnTorch``: ``snntorch.Leaky(beta=0.5)`` looped over T from ``reset_mem()``, spikes stacked
  (its own dynamics: no input decay, subtractive reset, so its spikes are not compared).

Modes: ``forward`` (under ``torch.no_grad()``) and ``forward+backward`` (input requiring grad,
``out.backward(grad)`` with a fixed random ``grad``; the time covers both; ``x.grad`` cleared
between calls, outside the timing). Each implementation is warmed up once (which also compiles
kernels), then the implementations and the copy below are timed in turns, one call each per
round, with ``time.perf_counter`` (CUDA synchronised around each call), for at least
``--repeats`` rounds and ``--min-time`` seconds, so that noise from a shared machine hits all of
them alike; best and median are kept. One whose warm-up call took over ``--slow-call`` seconds
stops after ``--slow-repeats`` calls.

The floor: ``dst.copy_(src)`` of ``T*N`` float32 gives the copy bandwidth (read + write bytes). The
op must move at least 2 T N 4 bytes forward (read x, write spikes) and 5 T N 4 forward+backward
(also read grad and x, write grad_x); that over the copy bandwidth is the floor time, and
``fused/floor`` how far the fused kernel is above it. The "allocating copy" floor moves the same
bytes with PyTorch ops that allocate their outputs, as every neuron call must (forward:
``x.clone()``; forward+backward: that plus ``x + grad``), timed in the same turns; ``fused /
alloc floor`` compares against it. On CPU every call also allocates fresh
output tensors, which the pre-allocated copy does not: glibc serves tensors of 32 MB and more (here
8M neurons and up) with fresh ``mmap`` pages, so each call pays page faults and those sizes are several
times slower for every framework. ``GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296:``
``glibc.malloc.trim_threshold=4294967296`` keeps freed memory for reuse and shows the kernels
without that cost (the JSON records such settings). On a shared machine other work stalls
PyTorch's worker threads; the JSON records the load average before and after.

Before timing each input, the fused and reference spikes must be equal (``torch.equal``; the
script fails otherwise) and SpikingJelly's are compared with ours (recorded). In
forward+backward, the input gradients of the reference loop and SpikingJelly are compared with
the fused kernel's (largest absolute difference, recorded).

Results go to ``benchmarks/results/neurons-<device>.json`` and a table of best times is printed.

    python benchmarks/neurons.py [--device cpu|cuda] [--repeats 7] [--threads N]
                                 [--steps 1,4,8] [--sizes 64K,256K,1M,2M,8M] [--quick]
                                 [--slow-call 1.0] [--slow-repeats 3] [--min-time 1.0]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import inspect
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

import spikedrive
from spikedrive.neurons import LIF

RESULTS = Path(__file__).resolve().parent / "results"
STEPS = (1, 4, 8)
SIZES = (1 << 16, 1 << 18, 1 << 20, 1 << 21, 1 << 23)
QUICK_STEPS = (1, 4)
QUICK_SIZES = (1 << 16, 1 << 18)
MODES = ("forward", "forward+backward")
FLOOR_BYTES = {"forward": 2, "forward+backward": 5}  # float32 tensors of T*N elements moved
FUSED = "ours fused"
COPY = "copy"
ALLOC = "allocating copy"


@dataclass
class Impl:
    """One neuron implementation: ``fn(x) -> spikes [T, N]``; ``prepare()`` runs untimed before
    each call (state reset, implementation selection)."""

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor] | None
    prepare: Callable[[], None] = lambda: None
    same_dynamics: bool = True  # spikes expected equal to ours
    note: str = ""
    info: dict = field(default_factory=dict)


def parse_count(text: str) -> int:
    """``"64K"`` -> 65536, ``"2M"`` -> 2097152, ``"1000"`` -> 1000."""
    text = text.strip().upper()
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def fmt_count(n: int) -> str:
    for suffix, scale in (("M", 1 << 20), ("K", 1 << 10)):
        if n % scale == 0:
            return f"{n // scale}{suffix}"
    return str(n)


def version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


# ---------------------------------------------------------------------------------------------
# the implementations


def ours(device: torch.device) -> list[Impl]:
    fused = LIF(backend="triton" if device.type == "cuda" else "cpu")
    return [
        Impl(FUSED, fused, note=f"LIF(backend={fused.backend!r})"),
        Impl("ours reference", LIF(backend="reference"), note="LIF(backend='reference')"),
    ]


def spikingjelly(device: torch.device) -> list[Impl]:
    try:
        from spikingjelly.activation_based import functional as sjf
        from spikingjelly.activation_based import neuron as sjn
    except ImportError as err:
        return [Impl("SpikingJelly", None, note=f"not installed ({err})")]

    def node_impl(name: str, node: torch.nn.Module, note: str,
                  select: Callable[[], None] = lambda: None) -> Impl:
        node = node.to(device)

        def prepare() -> None:
            select()
            sjf.reset_net(node)

        return Impl(name, node, prepare, note=note)

    if "backend" in inspect.signature(sjn.LIFNode.__init__).parameters:
        # releases up to 0.0.0.0.14: the node takes its backend
        impls = []
        for backend in ("torch", *(("triton", "cupy") if device.type == "cuda" else ())):
            name = "SpikingJelly" if backend == "torch" else f"SpikingJelly {backend}"
            try:
                impl = node_impl(name, sjn.LIFNode(step_mode="m", backend=backend),
                                 f"LIFNode(step_mode='m', backend={backend!r})")
                probe(impl, device)
                impls.append(impl)
            except Exception as err:  # noqa: BLE001  (missing cupy/triton, no kernel for this GPU: recorded)
                impls.append(Impl(name, None, note=f"backend={backend!r} failed: {type(err).__name__}: {err}"))
        return impls

    # 2.0: the implementation follows the device; on CUDA it is chosen once per device from
    # SJ_LIF_CUDA_IMPLEMENTATION (auto = cuda, then triton, then torch)
    if device.type == "cpu":
        return [node_impl("SpikingJelly", sjn.LIFNode(step_mode="m"),
                          "LIFNode(step_mode='m'), its CPU (Torch) operator")]
    try:  # what SJ_LIF_CUDA_IMPLEMENTATION sets at import, changed here between calls
        from spikingjelly._ops.lif import _selection
    except ImportError as err:
        _selection, knob_error = None, f"{type(err).__name__}: {err}"

    def select(implementation: str) -> Callable[[], None]:
        def run() -> None:
            if _selection is not None and _selection._requested != implementation:
                _selection._requested = implementation
                _selection._selections.clear()
        return run

    default = node_impl("SpikingJelly", sjn.LIFNode(step_mode="m"),
                        "LIFNode(step_mode='m'), SpikingJelly's own choice", select("auto"))
    try:
        select("auto")()
        default.info = sjf.neuron_implementation("lif", device)
        default.note += f" ({default.info['implementation']!r})"
        probe(default, device)
    except Exception as err:  # noqa: BLE001  (recorded, like every failure to run a rival)
        default = Impl("SpikingJelly", None, note=f"failed: {type(err).__name__}: {err}")
    impls = [default]
    for implementation in ("cuda", "triton", "torch"):
        if implementation == default.info.get("implementation"):
            continue
        name = f"SpikingJelly {implementation}"
        if _selection is None:
            impls.append(Impl(name, None, note=f"cannot select it: {knob_error}"))
            continue
        impl = node_impl(name, sjn.LIFNode(step_mode="m"),
                         f"LIFNode(step_mode='m'), SJ_LIF_CUDA_IMPLEMENTATION={implementation}",
                         select(implementation))
        try:
            probe(impl, device)
            impls.append(impl)
        except Exception as err:  # noqa: BLE001
            impls.append(Impl(name, None, note=f"{implementation} failed: {type(err).__name__}: {err}"))
    select("auto")()
    return impls


def snntorch_impl(device: torch.device) -> Impl:
    try:
        import snntorch
    except ImportError as err:
        return Impl("snnTorch", None, note=f"not installed ({err})")
    leaky = snntorch.Leaky(beta=0.5).to(device)

    def run(x: torch.Tensor) -> torch.Tensor:
        mem = leaky.reset_mem()
        spikes = []
        for x_t in x:
            spk, mem = leaky(x_t, mem)
            spikes.append(spk)
        return torch.stack(spikes)

    return Impl("snnTorch", run, same_dynamics=False,
                note="Leaky(beta=0.5) looped over T from reset_mem(); own dynamics, spikes not compared")


def probe(impl: Impl, device: torch.device) -> None:
    """Run ``impl`` forward and backward once on a small input, raising if it cannot."""
    x = torch.randn(2, 64, device=device, requires_grad=True)
    impl.prepare()
    impl.fn(x).sum().backward()


# ---------------------------------------------------------------------------------------------
# timing


def sync_fn(device: torch.device) -> Callable[[], None]:
    return (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)


class Timer:
    """One timed call at a time: ``prepare()`` untimed, then ``call()`` between synchronisations."""

    def __init__(self, call: Callable[[], object], prepare: Callable[[], None], sync: Callable[[], None]):
        self.call, self.prepare, self.sync = call, prepare, sync
        self.secs: list[float] = []
        self.warm = 0.0

    def once(self) -> float:
        self.prepare()
        self.sync()
        t0 = time.perf_counter()
        self.call()
        self.sync()
        return time.perf_counter() - t0

    def summary(self) -> dict:
        return {"best_ms": min(self.secs) * 1e3, "median_ms": statistics.median(self.secs) * 1e3,
                "repeats": len(self.secs), "warmup_ms": self.warm * 1e3}


def time_round_robin(timers: dict[str, Timer], args: argparse.Namespace,
                     after_warmup: Callable[[str], None] = lambda name: None) -> dict[str, dict]:
    """Warm every timer up once, then time them in turns until each has ``args.repeats`` calls
    (``args.slow_repeats`` if its warm-up took over ``args.slow_call`` s) and the rounds have
    lasted ``args.min_time`` s. Taking turns spreads every implementation's calls over the same
    stretch of time, so a burst of noise from a shared machine hits them all alike."""
    target = {}
    for name, timer in timers.items():
        timer.warm = timer.once()
        after_warmup(name)
        target[name] = args.repeats if timer.warm < args.slow_call else max(1, min(args.repeats, args.slow_repeats))
    t0 = time.perf_counter()
    for _ in range(20 * args.repeats):  # rounds, capped
        for name, timer in timers.items():
            fast = target[name] == args.repeats
            if len(timer.secs) < target[name] or fast:
                timer.secs.append(timer.once())
        done = all(len(t.secs) >= target[n] for n, t in timers.items())
        if done and time.perf_counter() - t0 >= args.min_time:
            break
    return {name: timer.summary() for name, timer in timers.items()}


def forward_only(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> Callable[[], None]:
    def call() -> None:
        with torch.no_grad():
            fn(x)
    return call


def forward_backward(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                     grad: torch.Tensor) -> Callable[[], None]:
    def call() -> None:
        fn(x).backward(grad)
    return call


# ---------------------------------------------------------------------------------------------


def check_spikes(impls: list[Impl], x: torch.Tensor) -> dict:
    """Spikes of every implementation against the fused kernel's; raises if ours disagree."""
    out = {}
    with torch.no_grad():
        impls[0].prepare()
        ref = impls[0].fn(x)
        out["firing_rate"] = float(ref.mean())
        for impl in impls[1:]:
            if impl.fn is None:
                continue
            impl.prepare()
            spikes = impl.fn(x)
            if not impl.same_dynamics:
                out[impl.name] = {"firing_rate": float(spikes.mean()), "compared": False}
                continue
            equal = torch.equal(spikes, ref)
            out[impl.name] = {"spikes_equal": equal, "mismatches": int((spikes != ref).sum())}
            if not equal and impl.name.startswith("ours"):
                raise AssertionError(
                    f"{impl.name} and {FUSED} spikes differ on x {tuple(x.shape)}: "
                    f"{out[impl.name]['mismatches']} of {ref.numel()} entries"
                )
    return out


def time_mode(impls: list[Impl], mode: str, x: torch.Tensor, grad: torch.Tensor, copy: Timer,
              alloc: Timer, args: argparse.Namespace) -> dict[str, dict]:
    """Every available implementation (and the two copies) timed in turns in one mode on ``x``."""
    xg = x.detach().clone().requires_grad_(mode != "forward")
    timers = {COPY: copy, ALLOC: alloc}
    for impl in impls:
        if impl.fn is None:
            continue

        def prepare(impl: Impl = impl) -> None:
            xg.grad = None
            impl.prepare()

        call = forward_only(impl.fn, xg) if mode == "forward" else forward_backward(impl.fn, xg, grad)
        timers[impl.name] = Timer(call, prepare, copy.sync)
    same = {impl.name for impl in impls if impl.same_dynamics}
    grads: dict[str, float] = {}
    fused_grad: list[torch.Tensor] = []

    def after_warmup(name: str) -> None:
        # the warm-up call's x.grad: every same-dynamics gradient against the fused one
        if mode == "forward" or name in (COPY, ALLOC):
            return
        if name == FUSED:
            fused_grad.append(xg.grad)
        elif name in same:
            grads[name] = float((xg.grad - fused_grad[0]).abs().max())

    timings = time_round_robin(timers, args, after_warmup)
    for name, diff in grads.items():
        timings[name]["grad_max_abs_diff_vs_fused"] = diff
    return timings


def run_size(impls: list[Impl], steps: int, neurons: int, args: argparse.Namespace,
             device: torch.device) -> dict:
    sync = sync_fn(device)
    gen = torch.Generator().manual_seed(steps * 1_000_003 + neurons)
    # about a third of the neurons fire at the first step (H = X / 2 >= 1)
    x = (torch.randn(steps, neurons, generator=gen) * 2.0 + 1.0).to(device)
    grad = torch.randn(steps, neurons, generator=gen).to(device)
    row: dict = {"T": steps, "N": neurons, "check": check_spikes(impls, x)}
    # the copy is timed in every mode's turns, beside the neurons; its best over both is the floor's
    src, dst = torch.rand_like(x), torch.empty_like(x)
    timings = {}
    copies = []
    allocs = {}
    for mode in MODES:
        copy = Timer(lambda: dst.copy_(src), lambda: None, sync)
        # The same bytes moved by PyTorch ops that allocate their outputs, as every neuron must:
        # forward reads x and writes a new tensor; backward reads grad and x, writes a new one.
        if mode == "forward":
            alloc = Timer(lambda: src.clone(), lambda: None, sync)
        else:
            alloc = Timer(lambda: (src.clone(), torch.add(src, grad)), lambda: None, sync)
        timings[mode] = time_mode(impls, mode, x, grad, copy, alloc, args)
        copies.append(timings[mode].pop(COPY))
        allocs[mode] = timings[mode].pop(ALLOC)
    copy_bytes = 2 * x.numel() * 4
    row["copy"] = {"bytes": copy_bytes, "best_ms": min(c["best_ms"] for c in copies),
                   "median_ms": statistics.median([c["median_ms"] for c in copies]),
                   "repeats": sum(c["repeats"] for c in copies)}
    row["copy"]["best_gb_s"] = copy_bytes / row["copy"]["best_ms"] * 1e-6
    row["modes"] = {}
    for mode in MODES:
        entry: dict = {"floor_bytes": FLOOR_BYTES[mode] * x.numel() * 4}
        entry["floor_ms"] = entry["floor_bytes"] / row["copy"]["best_gb_s"] * 1e-6
        entry.update(timings[mode])
        fused = entry[FUSED]
        fused["best_gb_s"] = entry["floor_bytes"] / fused["best_ms"] * 1e-6
        fused["over_floor"] = fused["best_ms"] / entry["floor_ms"]
        entry["alloc_floor_ms"] = allocs[mode]["best_ms"]
        fused["over_alloc_floor"] = fused["best_ms"] / entry["alloc_floor_ms"]
        for impl in impls[1:]:
            if impl.name in entry:
                entry[impl.name]["over_fused"] = entry[impl.name]["best_ms"] / fused["best_ms"]
        row["modes"][mode] = entry
    return row


def table(rows: list[dict], impls: list[Impl]) -> str:
    timed = [i.name for i in impls if i.fn is not None]
    others = [n for n in timed if n != FUSED]
    head = (["T", "N", "mode", "copy GB/s", "floor ms", *(f"{n} ms" for n in timed), "fused GB/s",
             *(f"{n} / fused" for n in others), "fused / floor", "alloc floor ms", "fused / alloc floor"])
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" for _ in head) + "|"]
    for row in rows:
        for mode, entry in row["modes"].items():
            cells = [str(row["T"]), fmt_count(row["N"]), mode, f"{row['copy']['best_gb_s']:.1f}",
                     f"{entry['floor_ms']:.3f}"]
            cells += [f"{entry[n]['best_ms']:.3f}" for n in timed]
            cells.append(f"{entry[FUSED]['best_gb_s']:.1f}")
            cells += [f"{entry[n]['over_fused']:.2f}x" for n in others]
            cells.append(f"{entry[FUSED]['over_floor']:.2f}x")
            cells += [f"{entry['alloc_floor_ms']:.3f}", f"{entry[FUSED]['over_alloc_floor']:.2f}x"]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: as is)")
    ap.add_argument("--steps", default=None, help="time steps T, comma-separated (default 1,4,8)")
    ap.add_argument("--sizes", default=None,
                    help="neurons N, comma-separated, K/M suffixes (default 64K,256K,1M,2M,8M)")
    ap.add_argument("--quick", action="store_true", help="a tiny subset: T in 1,4 and N in 64K,256K")
    ap.add_argument("--repeats", type=int, default=7, help="timed calls per measurement (best and median)")
    ap.add_argument("--slow-call", type=float, default=1.0,
                    help="seconds: a warm-up call slower than this gets --slow-repeats timed calls")
    ap.add_argument("--slow-repeats", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=1.0,
                    help="seconds: keep taking turns until the timed calls of one input and mode last this long")
    ap.add_argument("--out", type=Path, default=None, help="default benchmarks/results/neurons-<device>.json")
    args = ap.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    steps = tuple(int(s) for s in args.steps.split(",")) if args.steps else QUICK_STEPS if args.quick else STEPS
    sizes = (tuple(parse_count(s) for s in args.sizes.split(",")) if args.sizes
             else QUICK_SIZES if args.quick else SIZES)

    impls = [*ours(device), *spikingjelly(device), snntorch_impl(device)]
    load_before = os.getloadavg()
    t_start = time.perf_counter()
    rows = []
    for t in steps:
        for n in sizes:
            row = run_size(impls, t, n, args, device)
            rows.append(row)
            fb = row["modes"]["forward+backward"]
            print(f"T={t} N={fmt_count(n)}: fused {row['modes']['forward'][FUSED]['best_ms']:.3f} ms forward, "
                  f"{fb[FUSED]['best_ms']:.3f} ms forward+backward "
                  f"({time.perf_counter() - t_start:.0f} s so far)", flush=True)

    result = {
        "benchmark": "multi-step LIF neuron: forward and forward+backward time",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "device": args.device,
        "device_name": device_name(device),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if device.type == "cuda" else None,
        "threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "spikedrive": spikedrive.__version__,
        "spikingjelly": version("spikingjelly"),
        "snntorch": version("snntorch"),
        "repeats": args.repeats, "slow_call_s": args.slow_call, "slow_repeats": args.slow_repeats,
        "min_time_s": args.min_time,
        "input": "x = 2 * randn + 1, float32 [T, N]; grad = randn [T, N]",
        "lif": "tau=2, v_threshold=1, v_reset=0, decay_input=True, detach_reset=False, Sigmoid(4)",
        "floor": "bytes the op must move (forward 2*T*N*4, forward+backward 5*T*N*4) / copy_ bandwidth",
        "alloc_floor": "the same bytes moved by allocating PyTorch ops: x.clone() (forward), plus x + grad (backward)",
        "implementations": {i.name: {"available": i.fn is not None, "note": i.note, **i.info} for i in impls},
        "wall_s": time.perf_counter() - t_start,
        # other work on the machine (1-min load average) and allocator settings move CPU timings
        "loadavg_1min_before_after": [load_before[0], os.getloadavg()[0]],
        "malloc_env": {k: v for k, v in os.environ.items()
                       if k.startswith(("MALLOC_", "GLIBC_TUNABLES", "LD_PRELOAD"))},
        "results": rows,
    }
    out = args.out or RESULTS / f"neurons-{args.device}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")

    print(f"\n{result['device_name']}, torch {torch.__version__}, {result['threads']} threads; "
          f"best of >= {args.repeats} calls taken in turns over >= {args.min_time:g} s "
          f"({args.slow_repeats} where one call > {args.slow_call:g} s); times in ms")
    for impl in impls:
        print(f"  {impl.name}: {impl.note}")
    print(table(rows, impls))
    compared = {name for r in rows for name, c in r["check"].items() if isinstance(c, dict) and "spikes_equal" in c}
    disagree = [(r["T"], fmt_count(r["N"]), name) for r in rows for name, c in r["check"].items()
                if isinstance(c, dict) and c.get("spikes_equal") is False]
    rivals = sorted(n for n in compared if not n.startswith("ours"))
    print("spikes: ours fused == ours reference on every input"
          + (f"; {', '.join(rivals)} == ours on every input" if rivals and not disagree else "")
          + (f"; differ from ours: {disagree}" if disagree else ""))
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
