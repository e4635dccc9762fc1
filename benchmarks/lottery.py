"""Lottery tickets at digits scale: accuracy and energy vs sparsity for four ways to get a sparse SNN.

One dense training (round 0) is shared; from it, on the same budget per round:

* ``imp_magnitude``: iterative global magnitude pruning, rewinding to ``--rewind`` epochs;
* ``imp_spiking``: the same with Yao et al.'s spiking criterion (the encoding conv and the
  classifier keep magnitude, SF-IMP-1);
* ``random``: iterative random pruning (global), rewinding the same way;
* ``reinit``: the winning masks of ``imp_magnitude`` trained from a fresh random initialisation.

Accuracy is on the held-out test split (never used for selection); energy per sample counts only
executed (non-zero input, non-zero weight) products (``sparse_energy_report``). Nothing is tuned
per method: one recipe (``configs/lottery/<recipe>.yaml`` with the overrides below), one seed.

Writes ``benchmarks/results/lottery.json`` and ``benchmarks/results/lottery.png``.

Usage: ``python benchmarks/lottery.py [--model digits_snn] [--epochs 5] [--rewind 1] [--rate 0.45]
[--rounds 5] [--out runs/bench_lottery]`` (about five minutes on two CPU cores).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import time
from pathlib import Path

import torch

from spikedrive.engine import build_datasets
from spikedrive.pruning import load_prune_config, run_imp

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def _rows(rounds: list) -> list[dict]:
    return [{"round": r.round, "sparsity": r.sparsity, "test_accuracy": r.test_metrics.get("accuracy"),
             "val_accuracy": r.val_metrics.get("accuracy"), "energy_pj": r.energy.get("snn_energy_pj"),
             "sops": r.energy.get("total_sops"), "layer_sparsity": r.layer_sparsity} for r in rounds]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="configs/lottery/digits.yaml")
    ap.add_argument("--model", default="digits_snn")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--rewind", type=int, default=1)
    ap.add_argument("--rate", type=float, default=0.45)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/bench_lottery")
    args = ap.parse_args()
    torch.set_num_threads(2)
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    overrides = [f"model={args.model}", f"epochs={args.epochs}", f"lr={args.lr}", f"seed={args.seed}", "device=cpu",
                 "progress=false", f"pruning.rate={args.rate}", f"pruning.rounds={args.rounds}",
                 f"pruning.rewind_epoch={args.rewind}"]
    cfg, pcfg = load_prune_config(ROOT / args.recipe, overrides)
    splits = build_datasets(cfg)
    started = time.perf_counter()
    curves, timing = {}, {}
    for name, criterion, reinit in (("imp_magnitude", "magnitude", True), ("imp_spiking", "spiking", False),
                                    ("random", "random", False)):
        t0 = time.perf_counter()
        folder = out / name
        if name != "imp_magnitude":  # share the dense round 0 (and its init and rewind point)
            folder.mkdir(parents=True)
            base = out / "imp_magnitude"
            shutil.copytree(base / "round_00", folder / "round_00")
            for f in ("init.pt", "rewind.pt"):
                shutil.copy(base / f, folder / f)
        result = run_imp(dataclasses.replace(cfg, out_dir=str(folder)),
                         dataclasses.replace(pcfg, criterion=criterion, reinit_control=reinit),
                         datasets=splits, log=lambda line, n=name: print(f"[{n}] {line}", flush=True))
        curves[name] = _rows(result.rounds)
        if reinit:
            curves["reinit"] = _rows(result.rounds[:1]) + _rows(result.reinit)
        timing[name] = time.perf_counter() - t0
    record = {
        "benchmark": "lottery", "recipe": args.recipe, "model": args.model, "dataset": cfg.dataset,
        "epochs_round0": cfg.epochs, "epochs_later_rounds": cfg.epochs - pcfg.rewind_epoch,
        "rewind_epoch": pcfg.rewind_epoch, "rate": pcfg.rate, "rounds": pcfg.rounds, "scope": pcfg.scope,
        "optimizer": cfg.optimizer, "lr": cfg.lr, "seed": cfg.seed, "curves": curves,
        "seconds": time.perf_counter() - started, "seconds_per_method": timing,
        "command": "python benchmarks/lottery.py " + " ".join(
            f"--{k} {v}" for k, v in vars(args).items() if k not in ("out", "recipe")),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "lottery.json").write_text(json.dumps(record, indent=2) + "\n")
    _plot(record, RESULTS / "lottery.png")
    print(_table(record))


def _table(record: dict) -> str:
    lines = [f"{'method':<14} {'sparsity':>8} {'test acc':>8} {'energy/sample':>13}"]
    for name, rows in record["curves"].items():
        for r in rows:
            e = r["energy_pj"]
            lines.append(f"{name:<14} {100 * r['sparsity']:>7.1f}% {100 * r['test_accuracy']:>7.2f}% "
                         f"{'-' if e is None else f'{e / 1e3:.2f} nJ':>13}")
    return "\n".join(lines)


def _plot(record: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (acc, en) = plt.subplots(1, 2, figsize=(11, 4))
    for name, rows in record["curves"].items():
        s = [100 * r["sparsity"] for r in rows]
        acc.plot(s, [100 * r["test_accuracy"] for r in rows], marker="o", label=name)
        en.plot(s, [r["energy_pj"] / 1e3 for r in rows], marker="o", label=name)
    acc.set(xlabel="sparsity (%)", ylabel="test accuracy (%)",
            title=f"{record['model']} on {record['dataset']}: accuracy vs sparsity")
    en.set(xlabel="sparsity (%)", ylabel="energy per sample (nJ)", title="energy (zero weights cost no SOPs)")
    for ax in (acc, en):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
