"""COCO-protocol evaluation speed: faster-coco-eval (what spikedrive.detection uses) against
pycocotools on the same 5,000 images' worth of synthetic predictions; the numbers must agree.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/coco_eval.py            # 5,000 images
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/coco_eval.py --images 500   # smoke run

Data (seeded): COCO val2017's shape, 5,000 images of 640x480 with 1-15 ground-truth boxes each
over 80 classes (about 40k boxes, sizes spanning COCO's small / medium / large areas) and, per
image, every true box jittered by a few pixels with a score, a few misclassified copies, and
random false positives, up to 100 detections per image (YOLO's ``max_det`` for COCO is 300; 100
is what the protocol scores). Both libraries get the same ground-truth dict and result list
through :func:`spikedrive.detection.evaluate_coco` (index, evaluate, accumulate, summarize),
timed end to end; each run once after one warm-up on 200 images. Writes
benchmarks/results/coco_eval.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from spikedrive.detection.coco_eval import coco_detections, coco_ground_truth, evaluate_coco


def synthetic_set(n_images: int, n_classes: int = 80, seed: int = 0) -> tuple[dict, list[dict]]:
    """``(COCO ground truth, COCO results)`` for ``n_images`` 640x480 images."""
    rng = np.random.default_rng(seed)
    gts, dets = [], []
    for i in range(1, n_images + 1):
        n = int(rng.integers(1, 16))
        wh = np.exp(rng.uniform(np.log(8), np.log(400), size=(n, 2)))
        xy = rng.uniform(0, 1, size=(n, 2)) * (np.array([640, 480]) - wh).clip(1)
        boxes = np.concatenate([xy, xy + wh], 1)
        labels = rng.integers(0, n_classes, n)
        gts.append({"image_id": i, "boxes": torch.from_numpy(boxes), "labels": torch.from_numpy(labels),
                    "width": 640, "height": 480})
        jitter = boxes + rng.normal(0, 1, size=boxes.shape) * np.repeat(wh, 2, axis=0).reshape(n, 4) * 0.08
        wrong = rng.random(n) < 0.1
        n_fp = int(rng.integers(0, 30))
        fp_wh = np.exp(rng.uniform(np.log(8), np.log(300), size=(n_fp, 2)))
        fp_xy = rng.uniform(0, 1, size=(n_fp, 2)) * (np.array([640, 480]) - fp_wh).clip(1)
        det_boxes = np.concatenate([jitter, np.concatenate([fp_xy, fp_xy + fp_wh], 1)])
        det_labels = np.concatenate([np.where(wrong, rng.integers(0, n_classes, n), labels), rng.integers(0, n_classes, n_fp)])
        scores = np.concatenate([rng.uniform(0.3, 1.0, n), rng.uniform(0.0, 0.6, n_fp)])
        order = np.argsort(-scores)[:100]
        dets.append({"image_id": i, "boxes": torch.from_numpy(det_boxes[order]), "labels": torch.from_numpy(det_labels[order]),
                     "scores": torch.from_numpy(scores[order])})
    return coco_ground_truth(gts, [f"class{k}" for k in range(n_classes)]), coco_detections(dets)


def timed(gt: dict, results: list[dict], backend: str) -> tuple[dict[str, float], float]:
    start = time.perf_counter()
    out = evaluate_coco(gt, results, backend=backend)
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "coco_eval.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    warm_gt, warm_res = synthetic_set(200, seed=1)
    gt, results = synthetic_set(args.images)
    record: dict = {"images": args.images, "ground_truth_boxes": len(gt["annotations"]), "detections": len(results),
                    "machine": platform.processor() or platform.machine(), "backends": {}}
    outputs = {}
    for backend in ("faster_coco_eval", "pycocotools"):
        timed(warm_gt, warm_res, backend)
        out, seconds = timed(gt, results, backend)
        outputs[backend] = out
        record["backends"][backend] = {"seconds": seconds, "map50": out["map50"], "map50_95": out["map50_95"],
                                       "map75": out["map75"]}
        print(f"{backend:17s} {seconds:7.2f} s  mAP@50 {out['map50']:.6f}  mAP@50:95 {out['map50_95']:.6f}", flush=True)
    diff = max(abs(outputs["faster_coco_eval"][k] - outputs["pycocotools"][k]) for k in outputs["pycocotools"])
    record["max_abs_difference"] = diff
    record["speedup"] = record["backends"]["pycocotools"]["seconds"] / record["backends"]["faster_coco_eval"]["seconds"]
    print(f"largest difference over mAP@50, @50:95, @75 and 80 per-class APs: {diff:.2e}; speed-up x{record['speedup']:.1f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
