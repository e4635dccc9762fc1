"""Image datasets in their real layouts: CIFAR pickles, ImageFolder, COCO JSON; generators,
val carving, timm / transforms.v2 pipelines, and bad input named by file and entry."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from spikedrive.data.datasets import make_cifar, make_coco, make_imagefolder
from spikedrive.data.images import (
    CocoDetectionSet,
    build_cifar,
    build_coco,
    build_imagenet,
    carve_val,
    classification_transforms,
    detection_collate,
    load_cifar,
)


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory):
    return make_cifar(tmp_path_factory.mktemp("cifar"), n_train=40, n_test=10, seed=0)


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory):
    return make_coco(tmp_path_factory.mktemp("coco"), n_train=6, n_val=3, seed=0)


# -- generators ---------------------------------------------------------------------------------
def test_make_cifar_is_deterministic_by_seed(tmp_path):
    a, b, c = (make_cifar(tmp_path / n, n_train=10, n_test=5, seed=s) for n, s in (("a", 0), ("b", 0), ("c", 1)))
    name = "cifar-10-batches-py/data_batch_2"
    assert (a / name).read_bytes() == (b / name).read_bytes()
    assert (a / name).read_bytes() != (c / name).read_bytes()


def test_cifar10_reads_the_pickled_rows_through_torchvision(cifar_root):
    ds = load_cifar(cifar_root, "cifar10", train=True)
    with open(cifar_root / "cifar-10-batches-py" / "data_batch_1", "rb") as f:
        batch = pickle.load(f, encoding="latin1")
    # Reference: a CIFAR row is the red plane, then green, then blue, each 32x32 row-major.
    ref = batch["data"][0].reshape(3, 32, 32).transpose(1, 2, 0)
    np.testing.assert_array_equal(np.asarray(ds[0][0]), ref)
    assert ds[0][1] == batch["labels"][0]
    assert len(ds) == 40 and ds.classes[3] == "three"
    assert len(load_cifar(cifar_root, "cifar10", train=False)) == 10


def test_cifar100_fine_labels_are_digit_times_ten_plus_hue(tmp_path):
    root = make_cifar(tmp_path, variant="cifar100", n_train=20, n_test=5, seed=3)
    ds = load_cifar(root, "cifar100", train=True)
    with open(root / "cifar-100-python" / "train", "rb") as f:
        raw = pickle.load(f, encoding="latin1")
    assert len(ds.classes) == 100
    assert ds.targets == raw["fine_labels"]
    assert raw["coarse_labels"] == [y // 5 for y in raw["fine_labels"]]
    assert ds.classes[ds.targets[0]].endswith("_" + ("zero one two three four five six seven eight nine".split()[ds.targets[0] // 10]))


def test_make_imagefolder_and_coco_are_deterministic(tmp_path):
    for make, rel in ((make_imagefolder, "val/digit_0/val_00080.png"), (make_coco, "annotations/instances_train2017.json")):
        a, b = make(tmp_path / f"{make.__name__}a", seed=2), make(tmp_path / f"{make.__name__}b", seed=2)
        assert (a / rel).read_bytes() == (b / rel).read_bytes()


# -- val carving ---------------------------------------------------------------------------------
def test_carve_val_is_disjoint_seeded_and_stratified():
    labels = np.repeat(np.arange(4), [10, 10, 20, 40])
    tr, va = carve_val(len(labels), 0.25, seed=5, labels=labels)
    assert len(va) == 20 and len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == 80
    # each class gives a quarter of its samples
    assert np.bincount(labels[va], minlength=4).tolist() == [2, 3, 5, 10] or \
        np.bincount(labels[va], minlength=4).tolist() == [3, 2, 5, 10]
    np.testing.assert_array_equal(va, carve_val(80, 0.25, seed=5, labels=labels)[1])
    assert not np.array_equal(va, carve_val(80, 0.25, seed=6, labels=labels)[1])
    with pytest.raises(ValueError, match=r"val_fraction: must be in \(0, 1\), got 1.0"):
        carve_val(10, 1.0, 0)


def test_build_cifar_returns_train_val_test_with_val_carved_from_train(cifar_root):
    train, val, test = build_cifar(cifar_root, "cifar10", val_fraction=0.25, seed=0)
    assert (len(train), len(val), len(test)) == (30, 10, 10)
    assert set(train.indices.tolist()).isdisjoint(val.indices.tolist())
    assert test.base.train is False and train.base is val.base
    x, y = val[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    # eval pipeline = to [0, 1] and CIFAR normalization (32 px, crop_pct 1: no resize)
    img, label = train.base[int(val.indices[0])]
    mean, std = torch.tensor([0.4914, 0.4822, 0.4465]), torch.tensor([0.2470, 0.2435, 0.2616])
    ref = (torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 255 - mean[:, None, None]) / std[:, None, None]
    torch.testing.assert_close(x, ref, atol=1e-5, rtol=0)
    assert y == label


def test_timm_training_pipeline_options_reach_create_transform():
    train_tf, eval_tf = classification_transforms(img_size=32, auto_augment="rand-m9-mstd0.5", re_prob=0.5,
                                                  scale=(0.5, 1.0), crop_pct=1.0)
    names = [type(t).__name__ for t in train_tf.transforms]
    assert "RandAugment" in names and "RandomErasing" in names
    rrc = train_tf.transforms[0]
    assert type(rrc).__name__ == "RandomResizedCropAndInterpolation" and tuple(rrc.scale) == (0.5, 1.0)
    out = train_tf(Image.fromarray(np.zeros((40, 40, 3), np.uint8)))
    assert out.shape == (3, 32, 32)
    assert [type(t).__name__ for t in eval_tf.transforms][:2] == ["Resize", "CenterCrop"]


# -- bad CIFAR input ---------------------------------------------------------------------------------
def test_truncated_cifar_pickle_is_a_value_error_naming_the_file(tmp_path):
    root = make_cifar(tmp_path, n_train=10, n_test=5)
    path = root / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match=r"data_batch_3: not a readable pickle .*truncated or corrupt"):
        build_cifar(root, "cifar10")


def test_cifar_batch_of_the_wrong_shape_is_named(tmp_path):
    root = make_cifar(tmp_path, variant="cifar100", n_train=10, n_test=5)
    path = root / "cifar-100-python" / "test"
    entry = pickle.loads(path.read_bytes())
    entry["data"] = entry["data"][:, :1000]
    path.write_bytes(pickle.dumps(entry))
    with pytest.raises(ValueError, match=r"cifar-100-python/test: 'data' has shape \(5, 1000\) for 5 labels"):
        load_cifar(root, "cifar100", train=False)


def test_cifar_missing_batch_and_missing_root_are_one_line(tmp_path):
    root = make_cifar(tmp_path / "c", n_train=10, n_test=5)
    (root / "cifar-10-batches-py" / "batches.meta").unlink()
    with pytest.raises(ValueError, match=r"cifar10: .*batches.meta is missing; expected"):
        build_cifar(root, "cifar10")
    with pytest.raises(ValueError) as err:
        build_cifar(str(tmp_path / "nope"), "cifar10")
    assert str(err.value) == (
        f"cifar10: data_root '{tmp_path / 'nope'}' does not exist; expected {tmp_path / 'nope'}"
        "/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta} (the CIFAR-10 python version)")


# -- ImageFolder ---------------------------------------------------------------------------------
def test_imagenet_layout_splits_and_corrupt_png(tmp_path):
    root = make_imagefolder(tmp_path, n_train_per_class=4, n_val_per_class=1, n_classes=3)
    train, val, test = build_imagenet(root, val_fraction=0.25, img_size=32, augment=False)
    assert (len(train), len(val), len(test)) == (9, 3, 3)
    assert train.classes == ["digit_0", "digit_1", "digit_2"]
    # stratified: one val image per class
    assert sorted(train.base.targets[i] for i in val.indices) == [0, 1, 2]
    x, y = test[0]
    assert x.shape == (3, 32, 32) and y == 0
    bad = root / "val" / "digit_0" / sorted(p.name for p in (root / "val" / "digit_0").iterdir())[0]
    bad.write_bytes(bad.read_bytes()[:60])
    with pytest.raises(ValueError, match=rf"{bad}: not a readable image"):
        test[0]


def test_imagenet_val_classes_must_match_train(tmp_path):
    root = make_imagefolder(tmp_path, n_train_per_class=2, n_val_per_class=1, n_classes=3)
    (root / "val" / "digit_2").rename(root / "val" / "digit_9")
    with pytest.raises(ValueError, match=r"imagenet: .*different class folders \(in one only: \['digit_2', 'digit_9'\]\)"):
        build_imagenet(root)


# -- COCO ---------------------------------------------------------------------------------------------
def _coco_json(root, split="train2017"):
    return root / "annotations" / f"instances_{split}.json"


def test_coco_boxes_are_xyxy_pixels_with_contiguous_labels(coco_root):
    ds = CocoDetectionSet(coco_root / "train2017", _coco_json(coco_root))
    doc = json.loads(_coco_json(coco_root).read_text())
    assert ds.category_ids == [1, 3, 7] and ds.classes == ["rectangle", "ellipse", "triangle"]
    img, target = ds[0]
    info = doc["images"][0]
    anns = [a for a in doc["annotations"] if a["image_id"] == info["id"]]
    assert img.dtype == torch.uint8 and tuple(img.shape) == (3, info["height"], info["width"])
    ref = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)], dtype=torch.float32)
    torch.testing.assert_close(target["boxes"].as_subclass(torch.Tensor), ref)
    assert target["labels"].tolist() == [{1: 0, 3: 1, 7: 2}[a["category_id"]] for a in anns]
    assert target["boxes"].canvas_size == (info["height"], info["width"])
    # the shape is drawn inside its box: the box's border pixels differ from the background corner
    x1, y1, x2, y2 = (int(v) for v in ref[0])
    patch = img[:, y1:y2, x1:x2].float()
    assert patch.mean() > img[:, :2, :2].float().mean() + 30


def test_coco_horizontal_flip_moves_the_box_to_w_minus_x2(coco_root):
    ds = CocoDetectionSet(coco_root / "train2017", _coco_json(coco_root), transforms=v2.RandomHorizontalFlip(p=1.0))
    plain = CocoDetectionSet(coco_root / "train2017", _coco_json(coco_root))
    img, target = ds[1]
    ref_img, ref_target = plain[1]
    W = ref_img.shape[-1]
    x1, y1, x2, y2 = ref_target["boxes"].as_subclass(torch.Tensor).unbind(-1)
    expected = torch.stack([W - x2, y1, W - x1, y2], dim=-1)
    torch.testing.assert_close(target["boxes"].as_subclass(torch.Tensor), expected)
    torch.testing.assert_close(img.as_subclass(torch.Tensor), ref_img.as_subclass(torch.Tensor).flip(-1))


def test_build_coco_resizes_boxes_and_collates(coco_root):
    train, val, test = build_coco(coco_root, img_size=32, val_fraction=0.34, seed=1, hflip=0.0)
    assert (len(train), len(val), len(test)) == (4, 2, 3)
    raw_img, raw_t = test.base[0]
    img, target = test[0]
    assert img.dtype == torch.float32 and img.shape == (3, 32, 32) and 0 <= img.min() and img.max() <= 1
    h, w = raw_img.shape[-2:]
    scale = torch.tensor([32 / w, 32 / h, 32 / w, 32 / h])
    torch.testing.assert_close(target["boxes"].as_subclass(torch.Tensor),
                               raw_t["boxes"].as_subclass(torch.Tensor) * scale, atol=1e-4, rtol=0)
    images, targets = test.collate_fn([test[0], test[1], test[2]])
    assert images.shape == (3, 3, 32, 32) and [t["image_id"] for t in targets] == test.base.ids[:3]
    with pytest.raises(ValueError, match=r"images differ in shape: \(3, 4, 4\) vs \(3, 5, 4\)"):
        detection_collate([(torch.zeros(3, 4, 4), {}), (torch.zeros(3, 5, 4), {})])


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["annotations"][1]["bbox"].__setitem__(0, 1000),
     r"annotation id 2 \(image 000000000001.png\): bbox \[x, y, w, h\] = \[1000, .*outside the \d+x\d+ image"),
    (lambda d: d["annotations"][2]["bbox"].__setitem__(3, 0),
     r"annotation id 3 \(image \d+.png\): bbox \[x, y, w, h\] = \[.*, 0\] is empty \(w, h must be > 0; drop_empty_boxes=True"),
    (lambda d: d["annotations"][0].__setitem__("category_id", 99),
     r"annotation id 1 \(image 000000000001.png\): unknown category_id 99; the categories are \[1, 3, 7\]"),
    (lambda d: d["annotations"][0].__setitem__("image_id", 12345), r"annotation id 1: unknown image_id 12345"),
    (lambda d: d["annotations"][0].__setitem__("bbox", [1, 2, 3]), r"annotation id 1 .*bbox \[1, 2, 3\] is not \[x, y, w, h\]"),
])
def test_bad_coco_json_names_the_file_and_annotation(coco_root, tmp_path, edit, message):
    doc = json.loads(_coco_json(coco_root).read_text())
    edit(doc)
    bad = tmp_path / "instances_train2017.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=rf"{bad}: {message}"):
        CocoDetectionSet(coco_root / "train2017", bad)


def test_drop_empty_boxes_drops_only_on_request(coco_root, tmp_path):
    doc = json.loads(_coco_json(coco_root).read_text())
    doc["annotations"][0]["bbox"][2] = 0
    bad = tmp_path / "instances_train2017.json"
    bad.write_text(json.dumps(doc))
    ds = CocoDetectionSet(coco_root / "train2017", bad, drop_empty_boxes=True)
    full = CocoDetectionSet(coco_root / "train2017", _coco_json(coco_root))
    assert ds.dropped == [1]
    assert len(ds[0][1]["boxes"]) == len(full[0][1]["boxes"]) - 1


def test_corrupt_coco_image_is_named(coco_root, tmp_path):
    import shutil

    images = tmp_path / "train2017"
    shutil.copytree(coco_root / "train2017", images)
    target = images / "000000000002.png"
    target.write_bytes(target.read_bytes()[:40])
    ds = CocoDetectionSet(images, _coco_json(coco_root))
    ds[0]  # others still read
    with pytest.raises(ValueError, match=rf"{target}: not a readable image .*image id 2 of instances_train2017.json"):
        ds[1]


def test_coco_set_exposes_the_faster_coco_eval_index_of_its_file(coco_root):
    ds = CocoDetectionSet(coco_root / "train2017", _coco_json(coco_root))
    doc = json.loads(_coco_json(coco_root).read_text())
    assert sorted(ds.coco.getImgIds()) == ds.ids == sorted(i["id"] for i in doc["images"])
    assert sorted(ds.coco.getCatIds()) == ds.category_ids
    assert len(ds.coco.getAnnIds()) == len(doc["annotations"])
    first = ds.ids[0]
    assert len(ds.coco.getAnnIds(imgIds=[first])) == len(ds.target(first)["labels"])
