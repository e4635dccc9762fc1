"""Energy tables of the digits demo models on a batch of real 8x8 digits.

Prints the per-layer table of ``digits_snn`` (LIF, T=4) and ``digits_ilif`` (I-LIF, D=4, after
``spikedrive.to_spike_driven``) and writes ``benchmarks/results/energy.json``.

The models are untrained. An untrained net in eval mode barely fires (BN's running statistics
are still the identity), so BN statistics are first set from the batch itself — one
``torch.no_grad()`` forward in train mode with cumulative averaging — which gives firing rates of
a plausible order without any training.

Usage: ``python benchmarks/energy.py [--batch 256] [--seed 0] [--plot]``
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch
from torch import nn

import spikedrive
from spikedrive.analysis import assert_spike_driven, energy_report, plot_firing_rates
from spikedrive.data.digits import load_digits_split

RESULTS = Path(__file__).resolve().parent / "results"


def calibrate_bn(model: nn.Module, x: torch.Tensor) -> None:
    """Set every BN layer's running statistics from ``x`` (``[B, 1, 8, 8]``), leaving eval mode."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average: one batch sets the statistics exactly
    model.train()
    with torch.no_grad():
        model(x)
    model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256, help="held-out digits to run")
    parser.add_argument("--seed", type=int, default=0, help="weight initialisation seed")
    parser.add_argument("--plot", action="store_true", help="also write a PNG per model")
    args = parser.parse_args()

    test = load_digits_split()[2]
    x = test.tensors[0][: args.batch]  # [B, 1, 8, 8] in [0, 1]
    results = {
        "batch": int(x.shape[0]),
        "seed": args.seed,
        "torch": torch.__version__,
        "machine": platform.machine(),
        "weights": "untrained, BN statistics set from the batch",
        "models": {},
    }
    for name in ("digits_snn", "digits_ilif"):
        torch.manual_seed(args.seed)
        model = spikedrive.create_model(name)
        calibrate_bn(model, x)
        if name == "digits_ilif":
            spikedrive.to_spike_driven(model)
        summary = assert_spike_driven(model, x)
        report = energy_report(model, x)
        print(f"== {name} ==  ({summary})")
        print(report.table())
        print()
        results["models"][name] = report.to_dict()
        if args.plot:
            plot_firing_rates(report, RESULTS / f"energy_{name}.png", title=f"{name}: firing rate per layer")

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "energy.json"
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
