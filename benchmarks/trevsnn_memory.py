"""T-RevSNN training memory and step time: reversible backward vs BPTT, same network.

For T in {1, 2, 4, 8} and two depths (blocks per level), each configuration runs in its own
subprocess and reports:

* ``saved_bytes``: distinct storages autograd saves for backward in one training forward (counted
  with ``torch.autograd.graph.saved_tensors_hooks``, parameters excluded);
* ``peak_rss_delta``: the process's peak resident memory during the first training step (forward
  + backward, ``resource.getrusage(...).ru_maxrss``) minus its resident memory just before it;
* ``step_s``: fastest wall time of a training step (forward, compound loss, backward, SGD step).

Writes ``benchmarks/results/trevsnn_memory.json`` and prints a markdown table. Runs on CPU in a
few minutes with the defaults (tiny widths, 32x32 images, batch 16):

    python benchmarks/trevsnn_memory.py [--batch 16] [--steps 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

WIDTHS = (16, 32, 64, 64)
T_VALUES = (1, 2, 4, 8)
DEPTHS = (2, 4)
RESULTS = Path(__file__).resolve().parent / "results" / "trevsnn_memory.json"


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run_one(T: int, depth: int, reversible: bool, batch: int, steps: int, threads: int) -> dict:
    """One configuration in this process → its measurements (see the module docstring)."""
    import torch

    from spikedrive.engine.multihead import multihead_loss
    from spikedrive.analysis import saved_bytes_for_backward
    from spikedrive.models.trevsnn import TRevSNN

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = TRevSNN(WIDTHS, T=T, num_classes=10, blocks_per_level=depth, reversible=reversible).train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    img = torch.rand(batch, 3, 32, 32)
    labels = torch.randint(0, 10, (batch,))

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        multihead_loss(model(img), labels).backward()
        opt.step()

    # The first step is the measured one: afterwards the allocator keeps freed pages and a later
    # peak no longer shows. Its delta includes the gradients (the same for both backwards).
    rss_before = _rss_bytes()
    step()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    saved = saved_bytes_for_backward(lambda: multihead_loss(model(img), labels), exclude=list(model.parameters()))
    return {
        "T": T, "depth": depth, "reversible": reversible, "batch": batch,
        "saved_bytes": saved,
        "peak_rss_delta": max(0, peak - rss_before),
        "peak_rss": peak,
        "step_s": min(times),  # min: the least disturbed by other processes on a shared machine
        "params": sum(p.numel() for p in model.parameters()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--one", nargs=3, type=int, metavar=("T", "DEPTH", "REVERSIBLE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        T, depth, rev = args.one
        print(json.dumps(run_one(T, depth, bool(rev), args.batch, args.steps, args.threads)))
        return

    rows = []
    for depth in DEPTHS:
        for T in T_VALUES:
            for rev in (1, 0):
                cmd = [sys.executable, __file__, "--one", str(T), str(depth), str(rev), "--batch", str(args.batch),
                       "--steps", str(args.steps), "--threads", str(args.threads)]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                rows.append(json.loads(out.strip().splitlines()[-1]))
                print(f"done T={T} depth={depth} reversible={bool(rev)}", file=sys.stderr)

    def get(T: int, depth: int, rev: bool) -> dict:
        return next(r for r in rows if r["T"] == T and r["depth"] == depth and r["reversible"] == rev)

    summary = {}
    for depth in DEPTHS:
        r1, r8, b8 = get(1, depth, True), get(8, depth, True), get(8, depth, False)
        summary[f"depth{depth}"] = {
            "reversible_T8_over_T1_saved": r8["saved_bytes"] / r1["saved_bytes"],
            "bptt_over_reversible_T8_saved": b8["saved_bytes"] / r8["saved_bytes"],
            "bptt_over_reversible_T8_peak_rss_delta": (b8["peak_rss_delta"] / r8["peak_rss_delta"]
                                                        if r8["peak_rss_delta"] else None),
            "reversible_over_bptt_T8_step_time": r8["step_s"] / b8["step_s"],
        }
    import torch

    result = {"widths": WIDTHS, "image": [3, 32, 32], "batch": args.batch, "threads": args.threads,
              "torch": torch.__version__, "command": "python benchmarks/trevsnn_memory.py " + " ".join(sys.argv[1:]),
              "rows": rows, "summary": summary}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")

    mib = 1 / 2**20
    print("| depth | T | saved rev (MiB) | saved BPTT (MiB) | BPTT/rev | peak RSS delta rev (MiB) | "
          "peak RSS delta BPTT (MiB) | step rev (ms) | step BPTT (ms) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for depth in DEPTHS:
        for T in T_VALUES:
            r, b = get(T, depth, True), get(T, depth, False)
            print(f"| {depth} | {T} | {r['saved_bytes'] * mib:.2f} | {b['saved_bytes'] * mib:.2f} | "
                  f"{b['saved_bytes'] / r['saved_bytes']:.1f}x | {r['peak_rss_delta'] * mib:.1f} | "
                  f"{b['peak_rss_delta'] * mib:.1f} | {r['step_s'] * 1e3:.0f} | {b['step_s'] * 1e3:.0f} |")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
