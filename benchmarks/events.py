"""Event-file reader throughput (million events / s) for Prophesee DAT and N-MNIST binary.

Writes one large synthetic file of each format (default 5 M events) to a temporary folder,
reads it ``--repeats`` times with spikedrive's readers (whole-file and streamed), and, when
the ``tonic`` package is available, with Tonic's N-MNIST reader on the same file (Tonic has
no DAT reader). Results go to ``benchmarks/results/events.json`` and a table is printed.

    python benchmarks/events.py [--events 5000000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np

from spikedrive.data.events.dtype import make_events
from spikedrive.data.events.nmnist import iter_nmnist, read_nmnist, write_nmnist
from spikedrive.data.events.prophesee import iter_prophesee_dat, read_prophesee_dat, write_prophesee_dat

RESULTS = Path(__file__).resolve().parent / "results" / "events.json"


def synthetic(n: int, width: int, height: int, t_max: int, seed: int = 0) -> np.ndarray:
    """``n`` sorted random events inside a ``width x height`` sensor over ``t_max`` us."""
    rng = np.random.default_rng(seed)
    return make_events(np.sort(rng.integers(0, t_max, n)), rng.integers(0, width, n),
                       rng.integers(0, height, n), rng.integers(0, 2, n))


def tonic_io() -> tuple[ModuleType | None, str]:
    """Tonic's ``io`` module and how it was found, or (None, reason).

    ``import tonic`` imports every dataset and its optional dependencies (librosa, numba,
    importRosbag); when only those are missing, Tonic's ``io.py`` (numpy only) is loaded on
    its own so the reader itself can still be compared.
    """
    try:
        import tonic.io as tio

        return tio, f"tonic {getattr(sys.modules.get('tonic'), '__version__', '?')}"
    except ImportError as err:
        spec = importlib.util.find_spec("tonic")
        if spec is None or not spec.submodule_search_locations:
            return None, f"tonic not installed ({err})"
        path = Path(list(spec.submodule_search_locations)[0]) / "io.py"
        io_spec = importlib.util.spec_from_file_location("tonic_io_standalone", path)
        module = importlib.util.module_from_spec(io_spec)
        io_spec.loader.exec_module(module)
        return module, f"tonic io.py loaded standalone (import tonic failed: {err})"


def time_reader(fn: Callable[[], object], repeats: int) -> list[float]:
    fn()  # warm the page cache and any lazy imports
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def streamed(it: Callable[[], object]) -> Callable[[], int]:
    def run() -> int:
        return sum(chunk.shape[0] for chunk in it())
    return run


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=5_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    n = args.events
    tio, tonic_note = tonic_io()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        dat, nbin = Path(tmp) / "big_td.dat", Path(tmp) / "big.bin"
        write_prophesee_dat(dat, synthetic(n, 304, 240, 60_000_000), date="2020-01-01 00:00:00")
        write_nmnist(nbin, synthetic(n, 34, 34, (1 << 23) - 1, seed=1))
        cases: list[tuple[str, str, Callable[[], object]]] = [
            ("DAT", "spikedrive read_prophesee_dat", lambda: read_prophesee_dat(dat)),
            ("DAT", "spikedrive iter_prophesee_dat (1M chunks)",
             streamed(lambda: iter_prophesee_dat(dat, chunk_events=1 << 20))),
            ("N-MNIST", "spikedrive read_nmnist", lambda: read_nmnist(nbin)),
            ("N-MNIST", "spikedrive iter_nmnist (1M chunks)",
             streamed(lambda: iter_nmnist(nbin, chunk_events=1 << 20))),
        ]
        if tio is not None:
            cases.append(("N-MNIST", "tonic io.read_mnist_file",
                          lambda: tio.read_mnist_file(str(nbin), dtype=tio.events_struct)))
            # same answer, so the comparison is like for like
            ours, theirs = read_nmnist(nbin), tio.read_mnist_file(str(nbin), dtype=tio.events_struct)
            assert all(np.array_equal(ours[k], theirs[k]) for k in ("t", "x", "y", "p"))
        for fmt, reader, fn in cases:
            secs = time_reader(fn, args.repeats)
            rows.append({
                "format": fmt, "reader": reader, "events": n,
                "best_s": min(secs), "median_s": statistics.median(secs),
                "best_mev_s": n / min(secs) / 1e6, "median_mev_s": n / statistics.median(secs) / 1e6,
            })
    result = {
        "benchmark": "event file reader throughput",
        "events": n, "repeats": args.repeats, "tonic": tonic_note,
        "python": platform.python_version(), "numpy": np.__version__,
        "machine": platform.machine(), "processor": platform.processor() or platform.platform(),
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{n:,} events, best / median of {args.repeats} reads ({tonic_note})")
    print(f"| {'format':8} | {'reader':42} | {'best Mev/s':>10} | {'median Mev/s':>12} |")
    print(f"|{'-' * 10}|{'-' * 44}|{'-' * 12}|{'-' * 14}|")
    for r in rows:
        print(f"| {r['format']:8} | {r['reader']:42} | {r['best_mev_s']:10.1f} | {r['median_mev_s']:12.1f} |")
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
