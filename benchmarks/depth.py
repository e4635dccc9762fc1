"""Event-camera depth on the synthetic MVSEC-layout set: the spiking U-Net against constant
baselines and the ANN of the same architecture.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/depth.py            # a few minutes on one core
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/depth.py --quick    # smoke run
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/depth.py --overfit 4   # can the nets fit 4 maps?

Data: ``make_mvsec`` (a camera driving sideways at 10 m/s past textured planes, ray-cast and
turned into events by the DVS simulator; MVSEC's HDF5 layout) on a reduced sensor so a CPU can
train it. Train on ``outdoor_day2`` (val = its last 10% of depth maps), test on ``outdoor_day1``,
a different random world of the same distribution (the E2Depth protocol). Input: cumulative
stacking over the 50 ms before each depth map, ``T = 5`` steps. Both networks train with
``spikedrive.engine.train`` (task :class:`spikedrive.depth.DepthTask`) with the same seed, widths,
epochs and optimizer. Baselines, fitted on the training maps: one constant depth everywhere (the
arithmetic mean, and the geometric mean that a log loss prefers), and the per-row mean (the
image-position prior, which a network that ignores the events could still learn). Reported on
*test* only. Energy: :func:`spikedrive.analysis.energy_report` on test frames (45 nm, per
sample): the SNN's energy against the ANN model's MAC energy. Writes
benchmarks/results/depth.json and, through the ``spikedrive depth predict`` body
(:func:`spikedrive.engine.depth_task.predict_pngs`), docs/images/depth_example.png.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Subset

from spikedrive.analysis import energy_report
from spikedrive.data.datasets.event_depth import MVSEC
from spikedrive.data.datasets.synthetic_mvsec import make_mvsec
from spikedrive.data.events import ToCumulativeFrames
from spikedrive.data.images import time_major_dense_collate
from spikedrive.data.sequence import TimeMajorDataset
from spikedrive.depth import DepthTask, depth_metrics
from spikedrive.engine import TrainConfig, train
from spikedrive.engine.checkpoint import load_run
from spikedrive.engine.depth_task import predict_pngs
from spikedrive.models.depth import count_parameters

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
EXAMPLE = ROOT / "docs" / "images" / "depth_example.png"
SHOWN = ("abs_rel", "rmse", "rmse_log", "a1", "mean_err_10", "mean_err_20", "mean_err_30")
LOSS = {"lam": 0.5, "grad_weight": 0.1}  # 0.5 flattens the maps here: see the note in main()


class _Frames(TimeMajorDataset):
    collate_fn = staticmethod(time_major_dense_collate)


def build_splits(root: Path, sensor: tuple[int, int], T: int, train_s: float, test_s: float, seed: int,
                 fps: int) -> tuple[_Frames, _Frames, _Frames]:
    """``(train, val, test)`` of ``(frames [T, 2, H, W], depth [H, W] m)`` on a small synthetic MVSEC."""
    make_mvsec(root, ("outdoor_day2",), seed=seed, sensor_size=sensor, duration_us=int(train_s * 1e6), fps=fps)
    make_mvsec(root, ("outdoor_day1",), seed=seed, sensor_size=sensor, duration_us=int(test_s * 1e6), fps=fps)
    tf = ToCumulativeFrames(sensor, n_steps=T, window_us=50_000)
    train_all = MVSEC(root, sequences=("outdoor_day2",), transform=tf)
    n_val = max(1, len(train_all) // 10)
    cut = len(train_all) - n_val  # contiguous block at the end: neighbouring maps are near copies
    return (_Frames(Subset(train_all, range(cut))), _Frames(Subset(train_all, range(cut, len(train_all)))),
            _Frames(MVSEC(root, sequences=("outdoor_day1",), transform=tf)))


def _depths(dataset) -> np.ndarray:
    return np.stack([np.asarray(dataset[i][1], dtype=np.float64) for i in range(len(dataset))])


def baseline_metrics(train_set, test_set) -> dict[str, dict[str, float]]:
    """Metrics of depth predictors that see no events, fitted on the training maps (metres)."""
    train_d, test_d = _depths(train_set), _depths(test_set)
    gt = torch.from_numpy(test_d)
    arith = float(np.nanmean(train_d))
    geo = float(np.exp(np.nanmean(np.log(train_d))))
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # sky rows have no depth at all
        rows = np.exp(np.nanmean(np.log(train_d), axis=(0, 2)))  # [H], geometric mean per image row
    rows = np.where(np.isfinite(rows), rows, geo)
    per_row = torch.from_numpy(np.broadcast_to(rows[None, :, None], test_d.shape).copy())
    return {"constant (arithmetic mean depth)": {**depth_metrics(torch.full_like(gt, arith), gt), "depth_m": arith},
            "constant (geometric mean depth)": {**depth_metrics(torch.full_like(gt, geo), gt), "depth_m": geo},
            "per-row mean depth (no events)": depth_metrics(per_row, gt)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 epoch on short sequences")
    parser.add_argument("--overfit", type=int, default=0, metavar="N",
                        help="train and test on the first N training maps (a fitting check, no JSON)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--models", default="spiking_unet_depth,ann_unet_depth")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sensor, T, base, levels, fps = (96, 72), 5, 8, 3, 400
    epochs = args.epochs or (1 if args.quick else 6)
    train_s, test_s = (0.6, 0.3) if args.quick else (8.0, 2.0)
    setup = {"sensor_wh": sensor, "T": T, "base": base, "levels": levels, "epochs": epochs, "fps": fps,
             "train_seconds_of_events": train_s, "test_seconds_of_events": test_s, "d_max_m": 80.0, "alpha": 3.7,
             "loss": LOSS, "representation": "cumulative stacking, 50 ms", "camera": "sideways, 10 m/s"}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        splits = build_splits(Path(tmp) / "mvsec", sensor, T, train_s, test_s, seed=0, fps=fps)
        print(f"data: {time.perf_counter() - start:.0f} s", flush=True)
        if args.overfit:
            few = _Frames(Subset(splits[0].dataset, range(args.overfit)))
            splits = (few, few, few)
        setup["samples"] = {k: len(s) for k, s in zip(("train", "val", "test"), splits)}
        rows = baseline_metrics(splits[0], splits[2])
        checkpoints = {}
        for name in args.models.split(","):
            label = f"{'SNN' if name.startswith('spiking') else 'ANN'} ({name})"
            cfg = TrainConfig(task="depth", model=name, model_kwargs={"T": T, "base": base, "levels": levels,
                                                                      "attention": True},
                              dataset="mvsec", epochs=epochs, batch_size=4, lr=3e-3, optimizer="adamw",
                              weight_decay=0.01, scheduler="cosine", warmup_epochs=1, clip_grad=1.0,
                              monitor="abs_rel", monitor_mode="min", seed=0, out_dir=str(Path(tmp) / name),
                              device="cpu", progress=False, energy_report=False)
            start = time.perf_counter()
            result = train(cfg, task=DepthTask(**LOSS), datasets=splits)
            seconds = time.perf_counter() - start
            checkpoints[name] = Path(cfg.out_dir) / "best.pt"
            rows[label] = {**result.test_metrics, "parameters": count_parameters(result.model),
                           "train_seconds": round(seconds, 1), "selected_epoch": result.selected_epoch}
            print(f"{label}: {seconds:.0f} s, test abs_rel {result.test_metrics['abs_rel']:.3f}", flush=True)
        header = f"| {'model':<34} | " + " | ".join(f"{k:>11}" for k in SHOWN) + " |"
        print(header)
        print("|" + "-" * (len(header) - 2) + "|")
        for label, m in rows.items():
            print(f"| {label:<34} | " + " | ".join(f"{m[k]:>11.3f}" for k in SHOWN) + " |")
        if args.overfit or len(checkpoints) < 2:
            return
        models = {name: load_run(path)[1].eval() for name, path in checkpoints.items()}
        frames, _ = time_major_dense_collate([splits[2][i] for i in range(min(8, len(splits[2])))])
        snn = energy_report(models["spiking_unet_depth"], frames, batch_dim=1)
        ann = energy_report(models["ann_unet_depth"], frames, batch_dim=1)
        energy = {"snn_uj_per_sample": snn.snn_energy_pj / 1e6, "ann_model_uj_per_sample": ann.ann_energy_pj / 1e6,
                  "ann_over_snn": ann.ann_energy_pj / snn.snn_energy_pj, "snn_vs_own_ann_equivalent": snn.ratio}
        if not args.quick:
            # the test map with the widest spread of log depth: a figure that shows near and far
            spread = [np.nanstd(np.log(np.asarray(splits[2][i][1]))) for i in range(len(splits[2]))]
            shown = int(np.argmax(spread))
            png = predict_pngs(models["spiking_unet_depth"], DepthTask(**LOSS), Subset(splits[2], [shown]),
                               EXAMPLE.parent, split="example", limit=1,
                               title="spiking_unet_depth, synthetic MVSEC outdoor_day1 (unseen test world)")[0]
            png.replace(EXAMPLE)
    results = {"setup": setup, "energy": energy, "test": rows}
    if not args.quick:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "depth.json").write_text(json.dumps(results, indent=2, default=float) + "\n")
    print(f"energy per sample: SNN {energy['snn_uj_per_sample']:.3f} uJ, ANN {energy['ann_model_uj_per_sample']:.3f} uJ "
          f"(ANN / SNN = {energy['ann_over_snn']:.2f}x)")


if __name__ == "__main__":
    main()
