"""The detection task through the engine: training, resume, NaN stop, recipes, predict PNGs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision import tv_tensors

import spikedrive.engine.detection_task as detection_task
from spikedrive.engine import TrainingDiverged, build_task, config_from_dict, load_config, train
from spikedrive.detection.data import DetectionView

from detection_standin import TinyDetector

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "spikeyolo"


def squares(n: int, seed: int) -> DetectionView:
    """``n`` 64x64 images with one bright square (class 0) or tall bar (class 1) each."""
    g = torch.Generator().manual_seed(seed)
    items = []
    for _ in range(n):
        img = torch.zeros(3, 64, 64, dtype=torch.uint8)
        label = int(torch.randint(0, 2, (1,), generator=g))
        w, h = (20, 20) if label == 0 else (8, 28)
        x, y = (int(v) for v in torch.randint(0, 64 - 28, (2,), generator=g))
        img[:, y:y + h, x:x + w] = 255
        boxes = tv_tensors.BoundingBoxes(torch.tensor([[x, y, x + w, y + h]], dtype=torch.float32), format="XYXY",
                                         canvas_size=(64, 64))
        items.append((tv_tensors.Image(img), {"boxes": boxes, "labels": torch.tensor([label])}))
    return DetectionView(items, None, 64)


def recipe(tmp_path: Path, **extra) -> object:
    values = dict(task="detection", model="unused", model_kwargs={"num_classes": 2}, dataset="gen1_detection",
                  epochs=2, batch_size=4, lr=2e-3, optimizer="adamw", warmup_epochs=0, monitor="map50",
                  monitor_mode="max", out_dir=str(tmp_path / "run"), progress=False, energy_report=False, device="cpu")
    values.update(extra)
    return config_from_dict(values)


def test_engine_trains_evaluates_and_resumes_a_detector(tmp_path):
    torch.manual_seed(0)
    data = (squares(8, 0), squares(2, 1), squares(2, 2))
    cfg = recipe(tmp_path, epochs=1)
    assert build_task(cfg).class_names == ["car", "pedestrian"]
    result = train(cfg, model=TinyDetector(), datasets=data)
    assert set(result.test_metrics) == {"map50", "map50_95", "map75", "fitness", "ap_car", "ap_pedestrian"}
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    history = [r for r in lines if "epoch" in r]  # the last line is the test record
    assert [h["epoch"] for h in history] == [1]
    assert {"train_loss", "train_box", "train_cls", "train_dfl", "val_map50"} <= set(history[0])
    # resume continues from the last checkpoint to the new epoch count
    again = train(recipe(tmp_path, epochs=2, resume=True), model=TinyDetector(), datasets=data)
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines if "epoch" in r] == [1, 2]
    assert set(again.val_metrics) == set(result.val_metrics)


def test_nan_loss_stops_training(tmp_path):
    model = TinyDetector()
    with torch.no_grad():
        model.heads[0].weight.fill_(float("nan"))
    with pytest.raises(TrainingDiverged):
        train(recipe(tmp_path, epochs=1), model=model, datasets=(squares(4, 0), squares(2, 1), squares(2, 2)))


def test_class_names_of_recipes():
    assert detection_task.class_names(config_from_dict({"task": "detection", "dataset": "coco_detection",
                                                        "model_kwargs": {"num_classes": 80}}))[:2] == ["person", "bicycle"]
    assert detection_task.class_names(config_from_dict({"task": "detection", "dataset": "coco_detection",
                                                        "model_kwargs": {"num_classes": 3}})) == ["0", "1", "2"]
    with pytest.raises(ValueError, match="config: task detection on dataset 'x' needs model_kwargs.num_classes"):
        detection_task.class_names(config_from_dict({"task": "detection", "dataset": "x", "model_kwargs": {}}))


@pytest.mark.parametrize("name", ["coco", "gen1", "gen1_small"])
def test_recipes_load_with_the_papers_settings(name):
    cfg = load_config(CONFIGS / f"{name}.yaml")
    assert cfg.task == "detection" and cfg.dataset in ("coco_detection", "gen1_detection")
    if name == "coco":
        assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.optimizer, cfg.momentum, cfg.weight_decay) == (300, 40, 0.01, "sgd", 0.937, 5e-4)
        assert cfg.dataset_kwargs["img_size"] == 640 and cfg.dataset_kwargs["close_mosaic"] == 10
    if name == "gen1":
        assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.optimizer) == (80, 80, 0.02, "sgd")
        assert cfg.dataset_kwargs["img_size"] == 320 and cfg.dataset_kwargs["window_us"] == 250_000


def test_predict_draws_boxes_into_pngs(tmp_path):
    from spikedrive.detection.draw import save_detections_png

    frames = torch.full((2, 3, 64, 64), 0.5)
    det = {"boxes": torch.tensor([[4.0, 4.0, 30.0, 20.0]]), "scores": torch.tensor([0.9]), "labels": torch.tensor([1])}
    path = save_detections_png(tmp_path / "a.png", frames, det, ["car", "pedestrian"], gt_boxes=torch.tensor([[40.0, 40, 60, 60]]))
    from PIL import Image

    img = torch.from_numpy(np.array(Image.open(path))).permute(2, 0, 1)
    assert img.shape == (3, 64, 64)
    assert img[:, 40, 40:60].eq(255).all()  # the ground truth in white
    assert img[:, 10, 4].tolist() == [0, 255, 0]  # class 1 in lime, left edge of the box
    assert img[:, 30, 10].tolist() == [128, 128, 128]  # untouched pixels keep the last frame


@pytest.mark.slow  # about 100 s on a loaded 2-core CPU: SpikeYOLO-pico trains one step, then eval and predict
def test_detect_commands_train_eval_and_predict_spikeyolo(tmp_path, capsys):
    pytest.importorskip("spikedrive.models.spikeyolo")
    import argparse

    from spikedrive.data.datasets.synthetic_gen1 import make_gen1

    root = make_gen1(tmp_path / "gen1", 1, 1, 1, duration_us=200_000, fps=100, sensor_size=(64, 48), object_scale=0.4)
    overrides = [f"data_root={root}", f"out_dir={tmp_path / 'run'}", "epochs=1", "batch_size=2", "progress=false",
                 "energy_report=false", "device=cpu", "model_kwargs.T=1", "dataset_kwargs.T=1", "dataset_kwargs.img_size=64",
                 "dataset_kwargs.sensor_size=[64,48]"]
    assert detection_task.detect_train(argparse.Namespace(config=str(CONFIGS / "gen1_small.yaml"), overrides=overrides,
                                                          resume=False)) == 0
    ckpt = str(tmp_path / "run" / "best.pt")
    assert detection_task.detect_eval(argparse.Namespace(checkpoint=ckpt, overrides=[])) == 0
    out = capsys.readouterr().out
    assert "test: map50" in out and "ap_pedestrian" in out
    assert detection_task.detect_predict(argparse.Namespace(checkpoint=ckpt, overrides=[], out=str(tmp_path / "png"),
                                                            split="test", samples=2, conf=0.0)) == 0
    pngs = sorted((tmp_path / "png").glob("*.png"))
    assert [p.name for p in pngs] == ["test_0000.png", "test_0001.png"]
    with pytest.raises(ValueError, match="detect train: --config .* has task 'depth', expected 'detection'"):
        detection_task.detect_train(argparse.Namespace(
            config=str(CONFIGS.parent / "depth" / "synthetic.yaml"), overrides=[], resume=False))
