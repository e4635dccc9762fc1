"""End-to-end training time of the demo recipes with the fused neuron kernel vs the reference loop.

Trains each recipe with ``neuron_backend=reference`` (every neuron a plain PyTorch loop over T)
and with ``neuron_backend=auto`` (the fused kernel: the C++ operator on CPU, Triton on CUDA),
the same seed and data, alternating the two ``--rounds`` times so that machine drift hits both.
The time is the engine's own ``epoch_time_s`` summed over epochs (training and validation,
without checkpoint writing); the best round of each backend counts. Held-out accuracy is
reported too: the backends' gradients agree to float rounding, not bit for bit, so the runs
drift apart slowly but should land at the same accuracy.

Writes ``benchmarks/results/training-<device>.json``.

Usage: ``python benchmarks/training.py [--recipes digits ndigits digits_ilif] [--epochs 5] [--rounds 2]``
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from spikedrive.engine import load_config, train

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"

#: name -> (recipe file, extra overrides)
RECIPES = {
    "digits": ("configs/demo/digits.yaml", []),
    "digits_ilif": ("configs/demo/digits.yaml", ["model=digits_ilif"]),
    "ndigits": ("configs/demo/ndigits.yaml", []),
}


def run_once(recipe: str, backend: str, epochs: int, device: str) -> dict[str, float]:
    """Train ``recipe`` for ``epochs`` with every neuron on ``backend``; time and accuracy."""
    path, extra = RECIPES[recipe]
    with tempfile.TemporaryDirectory() as out:
        cfg = load_config(ROOT / path, [*extra, f"epochs={epochs}", f"neuron_backend={backend}",
                                        f"out_dir={out}/run", "progress=false", "energy_report=false",
                                        f"device={device}", "warmup_epochs=0"])
        started = time.perf_counter()
        result = train(cfg)
        wall = time.perf_counter() - started
    return {
        "epoch_time_s": sum(r["epoch_time_s"] for r in result.history),
        "wall_s": wall,
        "accuracy": float(result.metrics["accuracy"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    # Build the CPU kernel (and any cached dataset) before anything is timed.
    for recipe in args.recipes:
        run_once(recipe, "auto", 1, args.device)

    rows = []
    for recipe in args.recipes:
        runs: dict[str, list[dict[str, float]]] = {"reference": [], "auto": []}
        for _ in range(args.rounds):
            for backend in ("reference", "auto"):
                runs[backend].append(run_once(recipe, backend, args.epochs, args.device))
        best = {b: min(r, key=lambda item: item["epoch_time_s"]) for b, r in runs.items()}
        row = {
            "recipe": recipe,
            "epochs": args.epochs,
            "reference_s": best["reference"]["epoch_time_s"],
            "fused_s": best["auto"]["epoch_time_s"],
            "speedup": best["reference"]["epoch_time_s"] / best["auto"]["epoch_time_s"],
            "reference_accuracy": best["reference"]["accuracy"],
            "fused_accuracy": best["auto"]["accuracy"],
            "all_runs": runs,
        }
        rows.append(row)
        print(f"{recipe:12s} reference {row['reference_s']:6.2f} s  fused {row['fused_s']:6.2f} s  "
              f"speedup {row['speedup']:.2f}x  accuracy {row['reference_accuracy']:.3f} / {row['fused_accuracy']:.3f}",
              flush=True)

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"training-{args.device.split(':')[0]}.json"
    out.write_text(json.dumps({
        "what": "demo recipes, time summed over epochs (train + validation), best of rounds",
        "device": args.device,
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "date": time.strftime("%Y-%m-%d"),
        "results": rows,
    }, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
