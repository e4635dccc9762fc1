"""Event-camera depth on the synthetic MVSEC-layout set: the spiking U-Net against a
constant-mean-depth baseline and the ANN of the same architecture.

    .venv/bin/python benchmarks/depth.py            # about 5 minutes on 2 CPU cores
    .venv/bin/python benchmarks/depth.py --quick    # smoke run (1 epoch, a short sequence)

Data: ``make_mvsec`` (the synthetic generator in MVSEC's HDF5 layout) on a reduced sensor so a
CPU can train it; train on ``outdoor_day2`` (val = its last 10% of depth maps), test on
``outdoor_day1``, the E2Depth protocol. Input: cumulative stacking over the 50 ms before each
depth map, ``T = 5`` steps. Both networks train with ``spikedrive.engine.train`` (task
:class:`spikedrive.depth.DepthTask`) with the same seed, widths, epochs and optimizer; the
baseline predicts the training set's mean valid depth everywhere. Reported on *test* only.
Energy: :func:`spikedrive.analysis.energy_report` on test frames (45 nm, per sample): the SNN's
energy against the ANN model's MAC energy. Writes benchmarks/results/depth.json and
benchmarks/results/depth_example.png (events | SNN prediction | ground truth).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Subset

from spikedrive.analysis import energy_report
from spikedrive.data.datasets import MVSEC, make_mvsec
from spikedrive.data.events import ToCumulativeFrames
from spikedrive.data.images import time_major_dense_collate
from spikedrive.data.sequence import TimeMajorDataset
from spikedrive.depth import DepthTask, depth_metrics, from_log_depth
from spikedrive.engine import TrainConfig, train
from spikedrive.engine.depth_task import save_depth_png
from spikedrive.models.depth import count_parameters

RESULTS = Path(__file__).resolve().parent / "results"
SHOWN = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "mean_err_10", "mean_err_20", "mean_err_30")


class _Frames(TimeMajorDataset):
    collate_fn = staticmethod(time_major_dense_collate)


def build_splits(root: Path, sensor: tuple[int, int], T: int, train_s: float, test_s: float, seed: int):
    """``(train, val, test)`` of ``(frames [T, 2, H, W], depth [H, W] m)`` on a small synthetic MVSEC."""
    make_mvsec(root, ("outdoor_day2",), seed=seed, sensor_size=sensor, duration_us=int(train_s * 1e6))
    make_mvsec(root, ("outdoor_day1",), seed=seed, sensor_size=sensor, duration_us=int(test_s * 1e6))
    tf = ToCumulativeFrames(sensor, n_steps=T, window_us=50_000)
    train_all = MVSEC(root, sequences=("outdoor_day2",), transform=tf)
    n_val = max(1, len(train_all) // 10)
    cut = len(train_all) - n_val  # contiguous block at the end: neighbouring maps are near copies
    return (_Frames(Subset(train_all, range(cut))), _Frames(Subset(train_all, range(cut, len(train_all)))),
            _Frames(MVSEC(root, sequences=("outdoor_day1",), transform=tf)))


def baseline_metrics(train_set, test_set) -> dict[str, float]:
    """Metrics of predicting the training set's mean valid depth (metres) everywhere."""
    depths = np.stack([np.asarray(train_set[i][1]) for i in range(len(train_set))])
    mean = float(np.nanmean(depths))
    gt = torch.from_numpy(np.stack([np.asarray(test_set[i][1]) for i in range(len(test_set))])).float()
    return {**depth_metrics(torch.full_like(gt, mean), gt), "mean_depth_m": mean}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 epoch on short sequences")
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args()
    torch.set_num_threads(2)
    sensor, T, base, levels = (96, 72), 5, 8, 3
    epochs = args.epochs or (1 if args.quick else 16)
    train_s, test_s = (0.6, 0.3) if args.quick else (4.0, 2.0)
    RESULTS.mkdir(parents=True, exist_ok=True)
    results: dict = {"setup": {"sensor_wh": sensor, "T": T, "base": base, "levels": levels, "epochs": epochs,
                               "train_seconds_of_events": train_s, "test_seconds_of_events": test_s,
                               "d_max_m": 80.0, "alpha": 3.7, "representation": "cumulative stacking, 50 ms"}}
    with tempfile.TemporaryDirectory() as tmp:
        splits = build_splits(Path(tmp) / "mvsec", sensor, T, train_s, test_s, seed=0)
        results["setup"]["samples"] = {k: len(s) for k, s in zip(("train", "val", "test"), splits)}
        rows = {"constant mean depth": baseline_metrics(splits[0], splits[2])}
        models = {}
        for label, name in (("SNN (spiking_unet_depth)", "spiking_unet_depth"), ("ANN (ann_unet_depth)", "ann_unet_depth")):
            cfg = TrainConfig(task="depth", model=name, model_kwargs={"T": T, "base": base, "levels": levels,
                                                                      "attention": True},
                              dataset="mvsec", epochs=epochs, batch_size=8, lr=5e-3, optimizer="adamw",
                              weight_decay=0.01, scheduler="cosine", warmup_epochs=1, clip_grad=1.0,
                              monitor="abs_rel", monitor_mode="min", seed=0, out_dir=str(Path(tmp) / name),
                              device="cpu", progress=False, energy_report=False)
            start = time.perf_counter()
            result = train(cfg, task=DepthTask(), datasets=splits)
            seconds = time.perf_counter() - start
            models[name] = result.model.eval()
            rows[label] = {**result.test_metrics, "parameters": count_parameters(result.model),
                           "train_seconds": round(seconds, 1), "selected_epoch": result.selected_epoch}
            print(f"{label}: {seconds:.0f} s", flush=True)
        batch = time_major_dense_collate([splits[2][i] for i in range(min(8, len(splits[2])))])
        frames, depth = batch
        snn_report = energy_report(models["spiking_unet_depth"], frames, batch_dim=1)
        ann_report = energy_report(models["ann_unet_depth"], frames, batch_dim=1)
        results["energy"] = {"snn_uj_per_sample": snn_report.snn_energy_pj / 1e6,
                             "ann_model_uj_per_sample": ann_report.ann_energy_pj / 1e6,
                             "ann_over_snn": ann_report.ann_energy_pj / snn_report.snn_energy_pj,
                             "snn_vs_own_ann_equivalent": snn_report.ratio}
        with torch.no_grad():
            pred = from_log_depth(models["spiking_unet_depth"](frames[:, :1]))
        save_depth_png(RESULTS / "depth_example.png", pred[0, 0].numpy(), depth[0].numpy(), frames[:, 0].numpy(),
                       title="spiking_unet_depth on synthetic MVSEC outdoor_day1 (test)")
    results["test"] = rows
    (RESULTS / "depth.json").write_text(json.dumps(results, indent=2, default=float) + "\n")
    header = f"| {'model':<26} | " + " | ".join(f"{k:>11}" for k in SHOWN) + " |"
    print(header)
    print("|" + "-" * (len(header) - 2) + "|")
    for label, m in rows.items():
        print(f"| {label:<26} | " + " | ".join(f"{m[k]:>11.3f}" for k in SHOWN) + " |")
    e = results["energy"]
    print(f"energy per sample: SNN {e['snn_uj_per_sample']:.3f} uJ, ANN {e['ann_model_uj_per_sample']:.3f} uJ "
          f"(ANN / SNN = {e['ann_over_snn']:.2f}x)")


if __name__ == "__main__":
    main()
