"""RSC-SNN on the embedded 8x8 digits: is randomized-smoothing coding markedly more robust?

    .venv/bin/python benchmarks/rsc.py            # 11 min measured on 2 CPU cores shared with other jobs
    .venv/bin/python benchmarks/rsc.py --quick    # smoke run (2 epochs, fewer samples)

One architecture (digits_snn: conv 16 - conv 32 - pool - fc 128 - fc 10) and one training budget
for every variant, each trained by ``spikedrive.engine.train`` on (train, val, test) splits and
reported on *test* only:

* ANN: the same network with ReLU instead of LIF, T = 1;
* SNN, direct coding (T = 4); SNN, Poisson coding (T = 4, straight-through gradient);
* RSC-SNN: RSC-II coding (a fresh Gaussian draw per step, T = 4) at several sigma, and RSC-I.

Attacks are L-inf in intensity units ([0, 1]): FGSM and PGD (7 steps of 2.5 eps / 7, random
start), with EOT (gradients averaged over ``--eot`` coding draws) wherever the coding is
stochastic; the stochastic models are evaluated with one coding draw per image, as deployed.
QTE (METHODS.md) is the trapezoid over [0, eps_max]. Certified accuracy (Cohen et al.'s CERTIFY,
alpha 0.001) for the RSC-SNNs (L2) and the Poisson SNN (L1, radius (p_lower - 1/2) / T).

Where torchattacks is installed, its FGSM / PGD / EOTPGD run on the same models and samples.
Writes benchmarks/results/rsc.json, rsc_attack.png, rsc_certified.png and rsc_sigma.png.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from spikedrive.data.digits import load_digits_split
from spikedrive.engine import TrainConfig, train
from spikedrive.models.small import SmallSpikingCNN
from spikedrive.robustness import (
    CodedModel, accuracy, certified_accuracy, fgsm, is_stochastic, make_coder, pgd, plot_certified_accuracy, qte,
)
from spikedrive.robustness.commands import smooth_for

RESULTS = Path(__file__).parent / "results"


def build(kind: str, sigma: float = 0.0) -> nn.Module:
    """The same network behind each coder; ``kind`` in ann | direct | poisson | rsc1 | rsc2."""
    torch.manual_seed(0)
    if kind == "ann":
        return CodedModel(make_coder("direct", 1), SmallSpikingCNN(T=1, neuron=lambda: nn.ReLU()))
    return CodedModel(make_coder(kind, 4, sigma), SmallSpikingCNN(T=4))


def fit(model: nn.Module, splits, epochs: int, out: Path) -> tuple[nn.Module, float]:
    cfg = TrainConfig(model="digits_snn", dataset="digits", epochs=epochs, batch_size=64, lr=5e-3, seed=0,
                      out_dir=str(out), progress=False, energy_report=False, device="cpu")
    result = train(cfg, model=model, datasets=splits)
    model = result.model
    best = torch.load(result.best_checkpoint, map_location="cpu", weights_only=False) if result.best_checkpoint else None
    if best is not None:
        model.load_state_dict(best["model"])
    return model.eval(), float(result.test_metrics["accuracy"])


def sweep(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps_list: list[float], eot: int) -> dict:
    """Accuracy under FGSM and PGD-7 at each eps (one coding draw per evaluation)."""
    eot = eot if is_stochastic(model) else 1
    out: dict[str, list[float]] = {"fgsm": [], "pgd": []}
    for eps in eps_list:
        torch.manual_seed(1)
        adv_f = x if eps == 0 else fgsm(model, x, y, eps, eot=eot)
        adv_p = x if eps == 0 else pgd(model, x, y, eps, steps=7, eot=eot, generator=torch.Generator().manual_seed(0))
        torch.manual_seed(2)
        out["fgsm"].append(accuracy(model, adv_f, y))
        out["pgd"].append(accuracy(model, adv_p, y))
    out["qte_fgsm"], out["qte_pgd"] = qte(eps_list, out["fgsm"]), qte(eps_list, out["pgd"])
    out["eot"] = eot
    return out


def compare_torchattacks(models: dict, x: torch.Tensor, y: torch.Tensor, eps: float, eot: int) -> dict | None:
    """Our FGSM / PGD-7 / EOT-PGD vs torchattacks' on the same models and samples (None when
    torchattacks is not installed). FGSM is deterministic on deterministic models, so the two
    must agree exactly there; PGD differs only in its random start."""
    try:
        import torchattacks
    except ImportError:
        return None
    out = {"torchattacks": torchattacks.__version__, "eps": eps}
    for name, model in models.items():
        stochastic = is_stochastic(model)
        k = eot if stochastic else 1
        alpha = 2.5 * eps / 7
        theirs_pgd = (torchattacks.EOTPGD(model, eps=eps, alpha=alpha, steps=7, eot_iter=k, random_start=True)
                      if stochastic else torchattacks.PGD(model, eps=eps, alpha=alpha, steps=7, random_start=True))
        row = {}
        for label, adv in (
            ("fgsm_ours", lambda: fgsm(model, x, y, eps, eot=k)),
            ("fgsm_torchattacks", lambda: torchattacks.FGSM(model, eps=eps)(x, y)),
            ("pgd_ours", lambda: pgd(model, x, y, eps, steps=7, eot=k, generator=torch.Generator().manual_seed(0))),
            ("pgd_torchattacks", lambda: theirs_pgd(x, y)),
        ):
            torch.manual_seed(1)
            a = adv()
            torch.manual_seed(2)
            row[label] = accuracy(model, a, y)
        model.eval()
        out[name] = row
        print(f"torchattacks check {name}: {row}", flush=True)
    return out


def certify_model(model: nn.Module, x: torch.Tensor, y: torch.Tensor, n0: int, n: int, grid: list[float]) -> dict:
    smooth = smooth_for(model, 10, seed=0)
    preds, radii = [], []
    for xi in x:
        c, r = smooth.certify(xi, n0, n, 0.001, n)
        preds.append(c)
        radii.append(r)
    return {"noise": smooth.noise, "sigma": smooth.sigma, "T": smooth.T, "norm": "L1" if smooth.noise == "bernoulli"
            else "L2", "grid": grid, "certified_accuracy": certified_accuracy(preds, radii, y.tolist(), grid),
            "abstain": sum(p == -1 for p in preds) / len(preds)}


def plot_sweeps(results: dict, eps_list: list[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, attack in zip(axes, ("fgsm", "pgd")):
        for name, r in results.items():
            ax.plot(eps_list, [100 * a for a in r[attack]], marker="o", ms=3,
                    label=f"{name} (QTE {r['qte_' + attack]:.3f})")
        ax.set_title(f"{attack.upper()}{'-7' if attack == 'pgd' else ''} (EOT where stochastic), L-inf")
        ax.set_xlabel("eps (intensity units)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy (%)")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_sigma(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    s = [r["sigma"] for r in rows]
    ax.plot(s, [100 * r["clean"] for r in rows], marker="o", label="clean")
    ax.plot(s, [100 * r["pgd_at_ref"] for r in rows], marker="s", label=f"PGD-7 at eps {rows[0]['ref_eps']}")
    ax.plot(s, [100 * r["certified_at_ref"] for r in rows], marker="^", label=f"certified at L2 {rows[0]['ref_radius']}")
    ax.set_xlabel("sigma (RSC-II)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 epochs, 60 test samples")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--samples", type=int, default=150, help="test samples attacked")
    parser.add_argument("--cert-samples", type=int, default=100, help="test samples certified")
    parser.add_argument("--n", type=int, default=500, help="Monte Carlo samples of CERTIFY")
    parser.add_argument("--eot", type=int, default=4, help="coding draws per gradient for stochastic codes")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.samples, args.cert_samples, args.n = 2, 60, 10, 100
    torch.set_num_threads(2)
    t0 = time.time()
    splits = load_digits_split(val_fraction=0.15, test_fraction=0.25, seed=0)
    xte, yte = splits[2].tensors
    x, y = xte[: args.samples], yte[: args.samples]
    eps_list = [0.0, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3]
    sigmas = [0.1, 0.25, 0.5]
    variants = [("ANN", "ann", 0.0), ("SNN direct", "direct", 0.0), ("SNN Poisson", "poisson", 0.0)]
    variants += [(f"RSC-II sigma {s}", "rsc2", s) for s in sigmas] + [("RSC-I sigma 0.25", "rsc1", 0.25)]
    models, record = {}, {"epochs": args.epochs, "samples": len(y), "eps": eps_list, "eot": args.eot, "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, kind, sigma in variants:
            t = time.time()
            model, test_acc = fit(build(kind, sigma), splits, args.epochs, Path(tmp) / kind / str(sigma))
            models[name] = model
            r = sweep(model, x, y, eps_list, args.eot)
            r["test_accuracy_full_split"] = test_acc
            record["models"][name] = r
            print(f"{name:>18}: test {100 * test_acc:.1f}%  FGSM {[round(100 * a, 1) for a in r['fgsm']]}  "
                  f"PGD {[round(100 * a, 1) for a in r['pgd']]}  QTE fgsm {r['qte_fgsm']:.4f} pgd {r['qte_pgd']:.4f}"
                  f"  ({time.time() - t:.0f}s)", flush=True)
        # EOT matters: the same RSC-SNN attacked with one draw per gradient.
        rsc = models["RSC-II sigma 0.25"]
        torch.manual_seed(1)
        one = pgd(rsc, x, y, 0.1, steps=7, eot=1, generator=torch.Generator().manual_seed(0))
        torch.manual_seed(2)
        record["eot_ablation"] = {"model": "RSC-II sigma 0.25", "eps": 0.1, "pgd_eot1": accuracy(rsc, one, y),
                                  f"pgd_eot{args.eot}": record["models"]["RSC-II sigma 0.25"]["pgd"][eps_list.index(0.1)]}
        print(f"EOT ablation at eps 0.1: {record['eot_ablation']}", flush=True)
        record["torchattacks"] = compare_torchattacks(
            {k: models[k] for k in ("ANN", "SNN direct", "SNN Poisson", "RSC-II sigma 0.25")}, x, y, 0.1, args.eot)
        grid_l2 = [0.0, 0.1, 0.25, 0.5, 0.75, 1.0]
        grid_l1 = [0.0, 0.01, 0.02, 0.05, 0.1]
        xc, yc = xte[: args.cert_samples], yte[: args.cert_samples]
        cert = {}
        for name in [f"RSC-II sigma {s}" for s in sigmas] + ["RSC-I sigma 0.25"]:
            t = time.time()
            cert[name] = certify_model(models[name], xc, yc, 32, args.n, grid_l2)
            print(f"certified {name}: {[round(100 * a, 1) for a in cert[name]['certified_accuracy']]} at L2 "
                  f"{grid_l2} ({time.time() - t:.0f}s)", flush=True)
        cert["SNN Poisson"] = certify_model(models["SNN Poisson"], xc, yc, 32, args.n, grid_l1)
        print(f"certified SNN Poisson: {[round(100 * a, 1) for a in cert['SNN Poisson']['certified_accuracy']]} at L1 "
              f"{grid_l1}", flush=True)
    record["certified"] = cert
    record["certify"] = {"n0": 32, "n": args.n, "alpha": 0.001, "samples": len(yc)}
    ref_eps, ref_radius = 0.1, 0.25
    rows = []
    for s in sigmas:
        name = f"RSC-II sigma {s}"
        m = record["models"][name]
        rows.append({"sigma": s, "clean": m["pgd"][0], "pgd_at_ref": m["pgd"][eps_list.index(ref_eps)],
                     "qte_pgd": m["qte_pgd"], "ref_eps": ref_eps, "ref_radius": ref_radius,
                     "certified_at_ref": cert[name]["certified_accuracy"][grid_l2.index(ref_radius)]})
    record["sigma_tradeoff"] = rows
    record["seconds"] = round(time.time() - t0, 1)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "rsc.json").write_text(json.dumps(record, indent=2))
    plot_sweeps(record["models"], eps_list, RESULTS / "rsc_attack.png")
    plot_certified_accuracy({k: (v["grid"], v["certified_accuracy"]) for k, v in cert.items() if v["norm"] == "L2"},
                            RESULTS / "rsc_certified.png", xlabel="L2 radius (intensity units)",
                            title="RSC-SNN certified accuracy (digits)")
    plot_sigma(rows, RESULTS / "rsc_sigma.png")
    print(f"wrote {RESULTS / 'rsc.json'} and plots in {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
