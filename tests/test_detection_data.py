"""Detection data: Gen1 label handling, the synthetic Gen1 set, box-aware augmentation, collate."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision import tv_tensors

from spikedrive.data.datasets.event_detection import Gen1
from spikedrive.data.events.dtype import EVENT_DTYPE
from spikedrive.data.events.gen1 import BOX_DTYPE, write_gen1_boxes
from spikedrive.data.events.prophesee import write_prophesee_dat


def _events(n: int, t_max: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ev = np.zeros(n, dtype=EVENT_DTYPE)
    ev["t"] = np.sort(rng.integers(0, t_max, n))
    ev["x"], ev["y"], ev["p"] = rng.integers(0, 304, n), rng.integers(0, 240, n), rng.integers(0, 2, n)
    return ev


def test_gen1_keeps_the_last_box_per_track_at_a_label_time(tmp_path):
    folder = tmp_path / "test"
    folder.mkdir()
    write_prophesee_dat(folder / "rec_td.dat", _events(500, 600_000))
    boxes = np.zeros(5, dtype=BOX_DTYPE)
    boxes["t"] = [300_000, 300_000, 300_000, 300_000, 500_000]
    boxes["track_id"] = [7, 8, 7, 9, 7]
    boxes["x"] = [1, 2, 3, 4, 5]
    boxes["w"] = boxes["h"] = 20
    boxes["class_id"] = [0, 1, 0, 1, 0]
    write_gen1_boxes(folder / "rec_bbox.npy", boxes)
    ds = Gen1(tmp_path, split="test", window_us=250_000)
    _, target = ds[0]
    # track 7 appears twice at t = 300 ms: its later row (x = 3) is kept, rows stay in file order
    assert target["track_id"].tolist() == [8, 7, 9]
    assert target["x"].tolist() == [2, 3, 4]
    assert ds[1][1]["x"].tolist() == [5]


# --- box-aware augmentation -------------------------------------------------------------------

from spikedrive.data.images.coco import detection_collate  # noqa: E402
from spikedrive.data.images.event_frames import time_major_detection_collate  # noqa: E402
from spikedrive.detection.data import DetectionView, build_gen1_detection  # noqa: E402
from spikedrive.detection.transforms import Letterbox, RandomFlip, drop_small_boxes, mosaic4  # noqa: E402


def boxed(h: int, w: int, boxes: list[list[float]], labels: list[int], video: bool = False):
    img = torch.zeros((2, 3, h, w) if video else (3, h, w), dtype=torch.float32 if video else torch.uint8)
    target = {"boxes": tv_tensors.BoundingBoxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), format="XYXY",
                                                canvas_size=(h, w)),
              "labels": torch.tensor(labels)}
    return (tv_tensors.Video(img) if video else tv_tensors.Image(img)), target


def test_letterbox_keeps_aspect_pads_grey_and_moves_boxes():
    img, target = boxed(72, 96, [[10, 20, 30, 50]], [1], video=True)
    out, t = Letterbox(96)(img, target)
    assert out.shape == (2, 3, 96, 96)
    assert out[..., :12, :].eq(114 / 255).all() and out[..., 84:, :].eq(114 / 255).all()  # 12 px bands
    assert out[..., 12:84, :].eq(0).all()
    assert t["boxes"].tolist() == [[10, 32, 30, 62]] and t["letterbox"].tolist() == [1.0, 0.0, 12.0]
    small, t2 = Letterbox(48)(*boxed(72, 96, [[10, 20, 30, 50]], [1]))
    assert small.shape == (3, 48, 48) and small[:, :6].eq(114).all()
    torch.testing.assert_close(t2["boxes"].as_subclass(torch.Tensor), torch.tensor([[5.0, 16.0, 15.0, 31.0]]))


def test_flip_mirrors_pixels_and_boxes():
    img, target = boxed(8, 10, [[1, 2, 4, 6]], [0])
    img[:, 2:6, 1:4] = 255
    out, t = RandomFlip(p=1.0)(img, target)
    assert t["boxes"].tolist() == [[6, 2, 9, 6]]
    assert out[:, 2:6, 6:9].eq(255).all() and out.sum() == img.sum()


def test_mosaic_boxes_still_frame_their_objects():
    torch.manual_seed(0)
    samples = []
    for k in range(4):
        img, target = boxed(32, 48, [[8, 6, 28, 22]], [k])
        img[:, 6:22, 8:28] = 40 * (k + 1)  # each object its own grey level
        samples.append((img, target))
    for _ in range(5):
        out, t = mosaic4(samples, 64)
        assert out.shape == (3, 64, 64) and isinstance(t["boxes"], tv_tensors.BoundingBoxes)
        assert len(t["boxes"]) >= 1
        for box, label in zip(t["boxes"].round().long().tolist(), t["labels"].tolist()):
            x1, y1, x2, y2 = box  # resizing blurs the outermost pixel: look inside it
            assert out[:, y1 + 1:y2 - 1, x1 + 1:x2 - 1].eq(40 * (label + 1)).all(), (box, label)


def test_mosaic_switches_off_for_the_last_epochs():
    base = [boxed(32, 32, [[4, 4, 20, 20]], [0]) for _ in range(4)]
    view = DetectionView(base, None, 32, train=True, mosaic=1.0, close_mosaic=2, epochs=10)
    view.set_epoch(7)
    assert view.mosaic_on
    view.set_epoch(8)
    assert not view.mosaic_on
    x, t = view[0]
    assert x.dtype == torch.float32 and t["boxes"].tolist() == [[4, 4, 20, 20]] and t["image_id"] == 0
    with pytest.raises(ValueError, match="DetectionView: img_size must be a multiple of 32 .* got 40"):
        DetectionView(base, None, 40)


def test_collate_stacks_images_and_frame_sequences():
    imgs = [torch.rand(3, 32, 32) for _ in range(2)]
    x, targets = detection_collate([(tv_tensors.Image(imgs[0]), {"a": 1}), (imgs[1], {"a": 2})])
    assert type(x) is torch.Tensor and x.dtype == torch.float32 and [t["a"] for t in targets] == [1, 2]
    torch.testing.assert_close(x, torch.stack(imgs), rtol=0, atol=0)
    frames = [torch.rand(5, 3, 8, 8, dtype=torch.float64) for _ in range(3)]
    x, _ = detection_collate([(f, {}) for f in frames])  # [T, 3, H, W] items: time-major
    assert x.shape == (5, 3, 3, 8, 8) and x.dtype == torch.float32
    torch.testing.assert_close(x, torch.stack(frames, dim=1).float(), rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"detection_collate: images differ in shape: \(3, 32, 32\) vs \(3, 64, 64\)"):
        detection_collate([(imgs[0], {}), (torch.zeros(3, 64, 64), {})])
    # raw uint8 pixels are not silently turned into 0..255 floats
    x, _ = detection_collate([(torch.full((3, 4, 4), 200, dtype=torch.uint8), {})] * 2)
    assert x.dtype == torch.uint8 and x.shape == (2, 3, 4, 4)
    assert DetectionView.collate_fn is detection_collate


def test_time_major_collate_stacks_numpy_frames_and_names_mismatched_shapes():
    frames = [np.random.default_rng(i).random((4, 2, 6, 6)) for i in range(2)]
    x, targets = time_major_detection_collate([(frames[0], {"i": 0}), (frames[1], {"i": 1})])
    assert x.dtype == torch.float32 and [t["i"] for t in targets] == [0, 1]
    torch.testing.assert_close(x, torch.from_numpy(np.stack(frames, axis=1)).float(), rtol=0, atol=0)
    # 2-d items [T, channels] are time-major only when asked
    x, _ = detection_collate([(torch.zeros(7, 3), {})] * 2, time_major=True)
    assert x.shape == (7, 2, 3)
    mismatch = r"detection_collate: frames differ in shape: \(4, 2, 6, 6\) vs \(5, 2, 6, 6\)"
    with pytest.raises(ValueError, match=mismatch):
        time_major_detection_collate([(frames[0], {}), (np.zeros((5, 2, 6, 6)), {})])


def test_drop_small_boxes_clamps_then_drops_by_the_shorter_side():
    # XYXY on a 20 (h) x 30 (w) canvas: inside; partly outside (clamped to 28x8); exactly min_side
    # wide; under min_side tall; degenerate; wholly outside; inverted
    raw = torch.tensor([[2, 2, 10, 10], [-5, 12, 28, 40], [0, 0, 3, 9], [0, 0, 9, 2.5], [5, 5, 5, 9],
                        [40, 0, 50, 5], [9, 9, 4, 15]], dtype=torch.float32)
    target = {"boxes": tv_tensors.BoundingBoxes(raw, format="XYXY", canvas_size=(20, 30)),
              "labels": torch.arange(7), "iscrowd": torch.tensor([0, 1, 0, 0, 0, 0, 1]), "image_id": 4}
    clamped = torch.stack([raw[:, 0].clamp(0, 30), raw[:, 1].clamp(0, 20), raw[:, 2].clamp(0, 30),
                           raw[:, 3].clamp(0, 20)], dim=1)
    for min_side in (3.0, 0.5):
        keep = ((clamped[:, 2] - clamped[:, 0]) >= min_side) & ((clamped[:, 3] - clamped[:, 1]) >= min_side)
        out = drop_small_boxes(target, min_side)
        assert isinstance(out["boxes"], tv_tensors.BoundingBoxes) and out["boxes"].canvas_size == (20, 30)
        torch.testing.assert_close(out["boxes"].as_subclass(torch.Tensor), clamped[keep], rtol=0, atol=0)
        assert out["labels"].tolist() == torch.arange(7)[keep].tolist()
        assert out["iscrowd"].tolist() == target["iscrowd"][keep].tolist() and out["image_id"] == 4
    assert drop_small_boxes(target, 3.0)["labels"].tolist() == [0, 1, 2]
    # a 0.6 x 0.9 box has an area under 1 pixel: kept all the same at min_side 0.5
    tiny = {"boxes": tv_tensors.BoundingBoxes(torch.tensor([[1, 1, 1.6, 1.9]]), format="XYXY", canvas_size=(4, 4)),
            "labels": torch.tensor([3])}
    assert drop_small_boxes(tiny, 0.5)["labels"].tolist() == [3]
    # boxes that opted out of clamping are not clamped: those reaching outside the canvas go
    loose = {"boxes": tv_tensors.BoundingBoxes(raw, format="XYXY", canvas_size=(20, 30), clamping_mode=None),
             "labels": torch.arange(7)}
    assert drop_small_boxes(loose, 3.0)["labels"].tolist() == [0, 2]


def test_drop_small_boxes_measures_sides_in_the_boxes_own_format():
    # CXCYWH: centre (10, 10), 6 x 4 pixels on a 20 x 20 canvas
    target = {"boxes": tv_tensors.BoundingBoxes(torch.tensor([[10.0, 10.0, 6.0, 4.0], [10.0, 10.0, 6.0, 1.0]]),
                                                format="CXCYWH", canvas_size=(20, 20)),
              "labels": torch.tensor([0, 1])}
    out = drop_small_boxes(target, 2.0)
    assert out["labels"].tolist() == [0]
    assert out["boxes"].format == tv_tensors.BoundingBoxFormat.CXCYWH
    assert out["boxes"].tolist() == [[10.0, 10.0, 6.0, 4.0]]


def test_set_loader_epoch_switches_the_mosaic_off_for_the_last_epochs():
    from spikedrive.engine import TrainConfig, make_train_loader, set_loader_epoch

    base = [boxed(32, 32, [[4, 4, 20, 20]], [0]) for _ in range(4)]
    view = DetectionView(base, None, 32, train=True, mosaic=1.0, close_mosaic=2, epochs=300)
    loader = make_train_loader(view, TrainConfig(batch_size=2))
    set_loader_epoch(loader, 0, 7, epochs=10)  # the run's epochs, not the view's default, decide
    assert view.mosaic_on
    set_loader_epoch(loader, 0, 8, epochs=10)
    assert not view.mosaic_on


# --- the synthetic Gen1 set -------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_gen1(tmp_path_factory):
    from spikedrive.data.datasets.synthetic_gen1 import make_gen1

    return make_gen1(tmp_path_factory.mktemp("gen1"), n_train=1, n_val=1, n_test=1, sensor_size=(64, 48),
                     object_scale=0.4, duration_us=500_000, fps=200)


def test_synthetic_gen1_events_mark_the_objects(small_gen1):
    # learnable: in the last time bin, pixels inside the boxes are far more often painted by an
    # event than pixels outside them (the noise floor)
    train, _, test = build_gen1_detection(small_gen1, T=2, img_size=64, sensor_size=(64, 48))
    inside = outside = n_in = n_out = 0.0
    for i in range(len(test)):
        frames, target = test[i]
        active = (frames[-1, 0] - 127 / 255).abs() > 0.1  # [64, 64]
        mask = torch.zeros_like(active)
        for x1, y1, x2, y2 in target["boxes"].round().long().tolist():
            mask[y1:y2, x1:x2] = True
        inside += float(active[mask].sum())
        n_in += float(mask.sum())
        outside += float(active[~mask].sum())
        n_out += float((~mask).sum())
    assert n_in > 0 and inside / n_in > 5 * (outside / n_out)
    frames, target = train[0]
    assert frames.shape == (2, 3, 64, 64) and set(target["labels"].tolist()) <= {0, 1}
    # pedestrians are tall, cars wide
    for (x1, y1, x2, y2), label in zip(target["boxes"].tolist(), target["labels"].tolist()):
        if x1 > 0 and x2 < 64:  # whole boxes only
            assert ((y2 - y1) > (x2 - x1)) == (label == 1)


def test_gen1_detection_boxes_follow_the_letterbox(small_gen1):
    from spikedrive.data.events.gen1 import read_gen1_boxes

    _, val, _ = build_gen1_detection(small_gen1, T=2, img_size=64, sensor_size=(64, 48))
    _, target = val[0]
    # the split is the Gen1 dataset itself (frames by its transform, targets by its target_transform)
    assert isinstance(val.base, Gen1) and val.base.split == "val" and val.classes == Gen1.classes
    rec, t = val.base.samples[0]
    dat = val.base.recordings[rec][0]
    boxes = read_gen1_boxes(dat.with_name(dat.name.replace("_td.dat", "_bbox.npy")))
    boxes = boxes[boxes["t"] == t]
    ref = np.stack([boxes["x"], boxes["y"] + 8, boxes["x"] + boxes["w"], boxes["y"] + boxes["h"] + 8], -1)
    np.testing.assert_allclose(target["boxes"].numpy(), np.clip(ref, 0, 64), atol=1e-4)
    with pytest.raises(ValueError, match="gen1: data_root '.*nowhere' does not exist"):
        build_gen1_detection(small_gen1 / "nowhere")
