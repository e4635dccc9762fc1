"""SpikeYOLO on the synthetic Gen1-format set, end to end, on a CPU.

Writes the set (``make_gen1`` with the arguments in :data:`DATA`), trains the recipe
``configs/spikeyolo/gen1_small.yaml`` (SpikeYOLO-tiny, I-LIF T = 2, D = 4) and its
same-architecture ANN twin (``model=spikeyolo_tiny_ann``) with ``spikedrive detect train``, one
after the other, then on the held-out **test** recordings (never seen in training or in the
choice of ``best.pt``, which is made on val):

* mAP@50 and mAP@50:95 (COCO protocol) of both, and their training wall time;
* the spike-driven check: detections of the trained SNN in integer mode, after
  ``reparameterize()`` and after ``to_spike_driven``, compared image by image in float64 (exact up
  to float noise) and in float32 (where an I-LIF membrane at an x.5 rounding boundary can flip
  one integer), plus the test mAP of the converted model;
* the energy per sample (:func:`spikedrive.engine.report.measure_energy`) of the spike-driven SNN
  and of the ANN twin.

Results go to ``benchmarks/results/spikeyolo_gen1_small.json``, the predicted PNG to
``benchmarks/results/spikeyolo_gen1_small.png`` and ``docs/images/spikeyolo_gen1_example.png``.

    python benchmarks/spikeyolo_gen1.py                      # everything (about 20-30 min on 2 cores)
    python benchmarks/spikeyolo_gen1.py --skip-train         # re-evaluate existing runs
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "spikeyolo" / "gen1_small.yaml"
RESULT = REPO / "benchmarks" / "results" / "spikeyolo_gen1_small.json"
PNG = REPO / "benchmarks" / "results" / "spikeyolo_gen1_small.png"
README_PNG = REPO / "docs" / "images" / "spikeyolo_gen1_example.png"

#: The synthetic set (the same call as in the recipe's header).
DATA: dict[str, Any] = dict(n_train=400, n_val=40, n_test=80, sensor_size=(64, 64), object_scale=0.5,
                            duration_us=750_000, label_period_us=250_000, n_cars=(1, 2), n_pedestrians=(1, 2),
                            pedestrian_scale=1.0)
KINDS = {"snn": [], "ann": ["model=spikeyolo_tiny_ann"]}


def _cli() -> list[str]:
    exe = Path(sys.executable).with_name("spikedrive")
    return [str(exe)] if exe.exists() else [sys.executable, "-c", "import sys; from spikedrive.cli import main; sys.exit(main())"]


def generate(root: Path) -> float:
    """Write the set under ``root`` unless the same one is there; seconds taken (0 if reused)."""
    from spikedrive.data.datasets.synthetic_gen1 import make_gen1

    marker = root / "make_gen1.json"
    wanted = json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in DATA.items()}, sort_keys=True)
    if marker.is_file() and marker.read_text() == wanted:
        return 0.0
    t0 = time.perf_counter()
    make_gen1(root, **DATA)
    marker.write_text(wanted)
    return time.perf_counter() - t0


def train_all(root: Path, runs: Path, extra: list[str], threads: int) -> dict[str, dict[str, Any]]:
    """Train the SNN, then the ANN twin (one after the other: on two shared cores, two parallel
    processes each ran 2-3x slower than one alone); their commands and wall times."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    info = {}
    for kind, over in KINDS.items():
        cmd = [*_cli(), "detect", "train", "--config", str(CONFIG.relative_to(REPO)), f"data_root={root}",
               f"out_dir={runs / kind}", "energy_report=false", *over, *extra]
        t0 = time.perf_counter()
        with open(runs / f"{kind}.log", "w") as log:
            if subprocess.run(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT).returncode:
                raise RuntimeError(f"{kind} training failed; see {runs / kind}.log")
        info[kind] = {"command": f"OMP_NUM_THREADS={threads} spikedrive " + " ".join(cmd[len(_cli()):]),
                      "train_wall_s": time.perf_counter() - t0}
    return info


def _detections(model: torch.nn.Module, x: torch.Tensor, conf: float) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
    """(the three raw maps flattened and concatenated ``[B, N]``, detections per image)."""
    from spikedrive.detection.postprocess import postprocess
    from spikedrive.detection.task import head_spec

    strides, reg_max, nc = head_spec(model)
    with torch.no_grad():
        raw = model(x)
    dets = postprocess(raw, strides, reg_max, nc, conf=conf, iou=0.7, max_det=300, multi_label=True)
    return torch.cat([r.flatten(1) for r in raw], 1), dets


def _canonical(d: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detections sorted by (label, x1, y1): a discrete network gives equal scores at different
    anchors, and float noise then decides their order, not which boxes are found."""
    keys = [d["labels"].double(), d["boxes"][:, 0].double().round(decimals=2), d["boxes"][:, 1].double().round(decimals=2)]
    order = torch.arange(len(d["labels"]))
    for key in reversed(keys):  # stable sorts, least significant key first
        order = order[torch.sort(key[order], stable=True).indices]
    return {k: v[order] for k, v in d.items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], tol: float, ordered: bool = True) -> bool:
    if not ordered:
        a, b = _canonical(a), _canonical(b)
    return (len(a["scores"]) == len(b["scores"]) and torch.equal(a["labels"], b["labels"])
            and torch.allclose(a["boxes"].double(), b["boxes"].double(), rtol=0, atol=tol)
            and torch.allclose(a["scores"].double(), b["scores"].double(), rtol=0, atol=tol))


@dataclass
class OpenedRun:
    """What every measurement of one trained checkpoint shares, read and built once.

    Attributes:
        ckpt: the checkpoint's path.
        cfg: its recipe with ``data_root`` pointed at the benchmark's set.
        val, test: the recipe's evaluation splits.
        task: the recipe's detection task (default confidence threshold).
    """

    ckpt: Path
    cfg: Any
    val: Any
    test: Any
    task: Any


def open_run(ckpt: Path, root: Path) -> tuple[OpenedRun, torch.nn.Module]:
    """Load ``ckpt`` with ``data_root=root`` and build its datasets and task, once; also returns
    the trained model as ``load_run`` builds it (float32, training form)."""
    from spikedrive.engine.checkpoint import load_run
    from spikedrive.engine.data import build_datasets
    from spikedrive.engine.detection_task import build_detection_task

    cfg, model = load_run(ckpt, [f"data_root={root}"])
    _, val, test = build_datasets(cfg)
    return OpenedRun(ckpt, cfg, val, test, build_detection_task(cfg)), model


def _inputs(dataset: Any, cfg: Any) -> list[torch.Tensor]:
    from spikedrive.engine.data import make_eval_loader

    return [x for x, _ in make_eval_loader(dataset, cfg)]


def conversion_check(run: OpenedRun, model: torch.nn.Module, conf: float = 0.25) -> dict[str, Any]:
    """Detections of the trained SNN ``model`` (converted in place): integer vs
    reparameterised vs spike-driven, float64 and float32, on ``run``'s test split."""
    from spikedrive.analysis import assert_spike_driven
    from spikedrive.layers import to_spike_driven

    model.eval()
    batches = _inputs(run.test, run.cfg)
    n_images = sum(x.shape[1] for x in batches)
    out: dict[str, Any] = {"conf": conf, "images": n_images}
    integer64 = [_detections(model.double(), x.double(), conf) for x in batches]
    model.reparameterize()
    rep64 = [_detections(model, x.double(), conf) for x in batches]
    rep32 = [_detections(model.float(), x, conf) for x in batches]
    to_spike_driven(model.double(), batches[0][:, :4].double())  # raises if outputs differ (float64 check)
    sd64 = [_detections(model, x.double(), conf) for x in batches]
    sd32 = [_detections(model.float(), x, conf) for x in batches]
    flat = lambda runs: [d for _, batch in runs for d in batch]  # noqa: E731
    i64, r64, s64, r32, s32 = map(flat, (integer64, rep64, sd64, rep32, sd32))
    gap = lambda a, b: max(float((x.double() - y.double()).abs().max()) for (x, _), (y, _) in zip(a, b))  # noqa: E731
    out["max_abs_output_diff"] = {"reparameterize_float64": gap(integer64, rep64), "spike_driven_float64": gap(rep64, sd64),
                                  "spike_driven_float32": gap(rep32, sd32)}
    out["detections"] = sum(len(d["scores"]) for d in i64)
    out["reparameterize_differs_float64"] = sum(not _same(a, b, 1e-6) for a, b in zip(i64, r64))
    out["spike_driven_differs_float64"] = sum(not _same(a, b, 1e-9) for a, b in zip(r64, s64))
    out["spike_driven_differs_float32"] = sum(not _same(a, b, 1e-3) for a, b in zip(r32, s32))
    out["spike_driven_differs_float32_as_sets"] = sum(not _same(a, b, 1e-3, ordered=False) for a, b in zip(r32, s32))
    out["spike_driven_count_differs_float32"] = sum(len(a["scores"]) != len(b["scores"]) for a, b in zip(r32, s32))
    out["max_abs_score_diff_float64"] = max(
        [float((a["scores"] - b["scores"]).abs().max()) for a, b in zip(r64, s64) if len(a["scores"]) and
         len(a["scores"]) == len(b["scores"])] or [0.0])
    summary = assert_spike_driven(model, batches[0][:, :2])
    out["assert_spike_driven"] = {"encoding": list(summary.encoding), "checked_layers": len(summary.checked)}
    return out


def evaluate_run(run: OpenedRun, model: torch.nn.Module) -> dict[str, dict[str, float]]:
    """COCO-protocol metrics of ``model`` (built from ``run``'s recipe) on ``run``'s val and test."""
    from spikedrive.engine.data import make_eval_loader
    from spikedrive.engine.loop import evaluate

    return {name: evaluate(model.float(), run.task, make_eval_loader(ds, run.cfg), "cpu")
            for name, ds in (("val", run.val), ("test", run.test))}


def energy(run: OpenedRun, model: torch.nn.Module, samples: int = 80, spiking: bool = True) -> dict[str, float]:
    """Energy per test sample (pJ) of ``model`` on ``run``'s test split: the SNN's (encoding MACs
    + SOPs), or for an ANN (``spiking=False``) every MAC it executes at E_MAC."""
    from spikedrive.engine.data import make_eval_loader
    from spikedrive.engine.report import measure_energy

    rep = measure_energy(model.float(), make_eval_loader(run.test, run.cfg), run.task, samples=samples, batch_dim=1)
    if spiking:
        return {"samples": rep.samples, "snn_energy_pj": rep.snn_energy_pj, "sops": rep.total_sops,
                "encoding_macs": rep.encoding_macs, "ann_energy_one_step_pj": rep.ann_energy_pj}
    executed = sum(layer.macs for layer in rep.layers)
    return {"samples": rep.samples, "macs_executed": executed, "mac_energy_executed_pj": rep.e_mac_pj * executed,
            "ann_energy_one_step_pj": rep.ann_energy_pj}


def predict_png(run: OpenedRun, model: torch.nn.Module, runs: Path, samples: int = 4, zoom: int = 4,
                conf: float = 0.25) -> None:
    """``spikedrive detect predict`` of ``run``'s checkpoint on ``samples`` test label times (one PNG
    each, native 64 px), and the same detections of ``model`` (its trained form) drawn on
    ``run``'s test frames enlarged ``zoom`` times, tiled into the README PNG."""
    from PIL import Image

    from spikedrive.detection.draw import draw_detections
    from spikedrive.engine.detection_task import build_detection_task

    subprocess.run([*_cli(), "detect", "predict", str(run.ckpt), "--out", str(runs / "predict"), "--samples",
                    str(samples), f"data_root={run.cfg.data_root}"], cwd=REPO, check=True)
    task = build_detection_task(run.cfg)  # its own: the drawing's confidence threshold differs
    task.post["conf"] = conf
    tiles = []
    for i in range(samples):
        frames, target = run.test[i]
        with torch.no_grad():
            det = task.forward(model.eval(), (frames[:, None], [target]))[0]
        big = torch.nn.functional.interpolate(frames[-1:], scale_factor=zoom, mode="nearest")[0]
        pixels = draw_detections(big, det["boxes"] * zoom, det["labels"], task.class_names, det["scores"],
                                 torch.as_tensor(target["boxes"]).as_subclass(torch.Tensor) * zoom)
        tiles.append(Image.fromarray(pixels.permute(1, 2, 0).numpy()))
    w, h = tiles[0].size
    sheet = Image.new("RGB", (len(tiles) * w + (len(tiles) - 1) * 4, h), "white")
    for i, tile in enumerate(tiles):
        sheet.paste(tile, (i * (w + 4), 0))
    for path in (PNG, README_PNG):
        path.parent.mkdir(parents=True, exist_ok=True)
        sheet.save(path)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; see the module docs."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default="runs/spikeyolo_gen1_bench/gen1_small", help="where the synthetic set is (written if absent)")
    ap.add_argument("--runs", default="runs/spikeyolo_gen1_bench", help="run folders of the SNN and the ANN")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per training process")
    ap.add_argument("--skip-train", action="store_true", help="evaluate the existing runs in --runs")
    ap.add_argument("overrides", nargs="*", help="recipe overrides for both trainings, e.g. epochs=2")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    root, runs = (REPO / args.root).resolve(), (REPO / args.runs).resolve()
    runs.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"command": "python benchmarks/spikeyolo_gen1.py " + " ".join(sys.argv[1:] if argv is None else argv),
                              "device": "cpu", "threads_per_process": args.threads, "make_gen1": DATA,
                              "generate_s": generate(root)}
    if args.skip_train:
        trained = json.loads((runs / "train.json").read_text())
    else:
        trained = train_all(root, runs, list(args.overrides), args.threads)
        (runs / "train.json").write_text(json.dumps(trained, indent=1))
    for kind in KINDS:
        ckpt = runs / kind / "best.pt"
        history = [r for r in json.loads((runs / kind / "metrics.json").read_text()) if "epoch" in r]  # not the final test row
        best = max(history, key=lambda r: r["val_map50"])
        entry = {**trained[kind], "epochs": len(history), "best_epoch": best["epoch"],
                 "steps": history[-1]["global_step"]}
        run, model = open_run(ckpt, root)
        entry["metrics"] = evaluate_run(run, model.eval())  # the training form, as detect eval
        if kind == "snn":
            predict_png(run, model, runs)  # the training form, before the conversion (in place)
            entry["spike_driven"] = conversion_check(run, model)
            entry["metrics_spike_driven"] = evaluate_run(run, model)
        else:
            model.reparameterize()
        entry["energy"] = energy(run, model, spiking=kind == "snn")  # deployed forms: spike-driven SNN, fused ANN
        result[kind] = entry
        print(kind, json.dumps(entry["metrics"]["test"]), flush=True)
    result["energy_note"] = ("pJ per test sample (T = 2 event frames), 45 nm E_MAC 4.6 / E_AC 0.9; snn_energy_pj: "
                             "encoding MACs + SOPs with the D = 4 virtual steps; ANN twin: mac_energy_executed_pj, "
                             "every MAC of both frames; ann_energy_one_step_pj: one frame (the paper's convention)")
    result["energy_ratio_ann_over_snn"] = result["ann"]["energy"]["mac_energy_executed_pj"] / result["snn"]["energy"]["snn_energy_pj"]
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=1, default=float) + "\n")
    print(f"wrote {RESULT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
