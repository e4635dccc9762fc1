"""COCO-protocol evaluation: faster-coco-eval against pycocotools, Gen1 boxes as COCO ground truth."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spikedrive.data.events.gen1 import BOX_DTYPE
from spikedrive.detection.coco_eval import coco_detections, coco_ground_truth, evaluate_coco, gen1_to_coco
from spikedrive.detection.task import DetectionMetrics, DetectionTask, head_spec


def random_set(n_images: int, seed: int) -> tuple[list[dict], list[dict]]:
    """Ground truth and noisy detections (jittered true boxes plus false positives)."""
    g = torch.Generator().manual_seed(seed)
    gts, dets = [], []
    for i in range(1, n_images + 1):
        n = int(torch.randint(1, 5, (1,), generator=g))
        xy = torch.rand(n, 2, generator=g) * 80
        wh = torch.rand(n, 2, generator=g) * 30 + 4
        boxes = torch.cat([xy, xy + wh], 1)
        labels = torch.randint(0, 3, (n,), generator=g)
        gts.append({"image_id": i, "boxes": boxes, "labels": labels, "width": 120, "height": 120})
        noisy = boxes + torch.randn(n, 4, generator=g) * 2
        fp_xy = torch.rand(2, 2, generator=g) * 80
        det_boxes = torch.cat([noisy, torch.cat([fp_xy, fp_xy + 10], 1)])
        dets.append({"image_id": i, "boxes": det_boxes, "scores": torch.rand(n + 2, generator=g),
                     "labels": torch.cat([labels, torch.randint(0, 3, (2,), generator=g)])})
    return gts, dets


def test_faster_coco_eval_gives_pycocotools_numbers():
    pytest.importorskip("pycocotools")
    gts, dets = random_set(30, 0)
    gt = coco_ground_truth(gts, ["a", "b", "c"])
    res = coco_detections(dets)
    ours = evaluate_coco(gt, res)
    ref = evaluate_coco(gt, res, backend="pycocotools")
    assert set(ours) == {"map50", "map50_95", "map75", "ap_a", "ap_b", "ap_c"}
    assert 0.2 < ours["map50"] < 1.0  # a non-trivial case
    for key in ours:
        assert ours[key] == pytest.approx(ref[key], abs=1e-6), key


def test_perfect_and_empty_detections():
    gts, _ = random_set(5, 1)
    gt = coco_ground_truth(gts, ["a", "b", "c"])
    perfect = coco_detections([{"image_id": g["image_id"], "boxes": g["boxes"], "labels": g["labels"],
                                "scores": torch.ones(len(g["labels"]))} for g in gts])
    out = evaluate_coco(gt, perfect)
    assert out["map50"] == pytest.approx(1.0) and out["map50_95"] == pytest.approx(1.0)
    assert evaluate_coco(gt, []) == {"map50": 0.0, "map50_95": 0.0, "map75": 0.0, "ap_a": 0.0, "ap_b": 0.0, "ap_c": 0.0}
    with pytest.raises(ValueError, match="evaluate_coco: backend must be 'faster_coco_eval' or 'pycocotools', got 'x'"):
        evaluate_coco(gt, perfect, backend="x")


def test_gen1_boxes_become_coco_annotations():
    boxes = np.zeros(3, dtype=BOX_DTYPE)
    boxes["t"] = [100, 100, 300]
    boxes["x"], boxes["y"], boxes["w"], boxes["h"] = [1, 5, 9], [2, 6, 10], [10, 20, 30], [11, 21, 31]
    boxes["class_id"] = [0, 1, 1]
    gt = gen1_to_coco(boxes)
    assert [img["id"] for img in gt["images"]] == [1, 2]
    assert [(a["image_id"], a["category_id"], a["bbox"]) for a in gt["annotations"]] == [
        (1, 1, [1.0, 2.0, 10.0, 11.0]), (1, 2, [5.0, 6.0, 20.0, 21.0]), (2, 2, [9.0, 10.0, 30.0, 31.0])]
    assert [c["name"] for c in gt["categories"]] == ["car", "pedestrian"]
    # the converted ground truth scores its own boxes perfectly
    dets = [{"image_id": 1, "boxes": torch.tensor([[1.0, 2, 11, 13], [5, 6, 25, 27]]), "scores": torch.ones(2),
             "labels": torch.tensor([0, 1])},
            {"image_id": 2, "boxes": torch.tensor([[9.0, 10, 39, 41]]), "scores": torch.ones(1), "labels": torch.tensor([1])}]
    assert evaluate_coco(gt, coco_detections(dets))["map50_95"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="gen1_to_coco: 1 image_ids for 2 label times"):
        gen1_to_coco(boxes, image_ids=[5])


def test_metric_accumulator_equals_a_direct_evaluation():
    gts, dets = random_set(6, 2)
    metrics = DetectionMetrics(["a", "b", "c"])
    for lo in (0, 3):  # two batches of three images
        batch = (torch.zeros(3, 3, 120, 120), [{"boxes": g["boxes"], "labels": g["labels"]} for g in gts[lo:lo + 3]])
        metrics.update([{k: d[k] for k in ("boxes", "scores", "labels")} for d in dets[lo:lo + 3]], batch)
    metrics.reduce(lambda t: t)
    got = metrics.compute()
    ref = evaluate_coco(coco_ground_truth(gts, ["a", "b", "c"]), coco_detections(dets))
    for key in ref:
        assert got[key] == pytest.approx(ref[key], abs=1e-9)
    assert got["fitness"] == pytest.approx(0.1 * ref["map50"] + 0.9 * ref["map50_95"])
    assert np.isnan(DetectionMetrics(["a"]).compute()["map50"])


def test_task_checks_the_model_and_the_batch():
    with pytest.raises(AttributeError, match="DetectionTask: the model \\(Linear\\) has no attribute 'strides'"):
        head_spec(torch.nn.Linear(1, 1))
    task = DetectionTask(["car", "pedestrian"])
    with pytest.raises(ValueError, match=r"DetectionTask: inputs must be \[B, 3, H, W\] or \[T, B, 3, H, W\], got shape \(3, 8, 8\)"):
        task.to_device((torch.zeros(3, 8, 8), [{}]), torch.device("cpu"))
    with pytest.raises(ValueError, match="DetectionTask: 1 targets for a batch of 2 inputs"):
        task.to_device((torch.zeros(2, 3, 8, 8), [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0)}]),
                       torch.device("cpu"))
