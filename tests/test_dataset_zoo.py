"""Every dataset name of the zoo: missing roots, the three splits, time-major batches, and each
trainable recipe of configs/vision run for one step on generated data through the real loaders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import spikedrive.engine.dataset_zoo  # noqa: F401  (registers the names; engine/__init__ will import it)
from spikedrive.data.datasets import (
    make_cifar, make_coco, make_gen1, make_gestures, make_imagefolder, make_mvsec, make_ndigits,
)
from spikedrive.data.events import (
    NMNIST_SENSOR_SIZE, ToFrame, make_events, read_gen1_boxes, read_nmnist, write_aedat2,
    write_prophesee_dat, write_shd,
)
from spikedrive.engine import list_datasets, list_tasks, load_config, train
from spikedrive.engine.dataset_zoo import ZOO
from spikedrive.models import list_models

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "vision"
TRAINABLE = ["cifar10", "cifar100", "imagenet", "nmnist", "gesture", "cifar10dvs", "ncars", "shd"]
DATA_ONLY = ["coco", "gen1", "mvsec"]  # no registered model / task for them yet


def _events(n: int, width: int, height: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return make_events(np.sort(rng.integers(0, 100_000, n)), rng.integers(0, width, n),
                       rng.integers(0, height, n), rng.integers(0, 2, n))


def _write_cifar10dvs(root: Path) -> Path:
    # four files per class: i = 0 (test split, i < 100) and i = 100..102 (train split)
    for c, name in enumerate(("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")):
        (root / name).mkdir(parents=True)
        for i in (0, 100, 101, 102):
            write_aedat2(root / name / f"cifar10_{name}_{i}.aedat", _events(200, 128, 128, 10 * c + i))
    return root


def _write_ncars(root: Path) -> Path:
    for split, n in (("n-cars_train", 4), ("n-cars_test", 2)):
        for label, name in enumerate(("background", "cars")):
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                write_prophesee_dat(root / split / name / f"obj_{i:06d}_td.dat",
                                    _events(150, 120, 100, 100 * label + i), width=120, height=100)
    return root


def _write_shd(root: Path) -> Path:
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, n in (("shd_train.h5", 6), ("shd_test.h5", 2)):
        times = [rng.uniform(0, 0.5, 40).astype(np.float32) for _ in range(n)]
        units = [rng.integers(0, 700, 40) for _ in range(n)]
        write_shd(root / name, times, units, list(range(n)))
    return root


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    """A small set in each dataset's real layout (seconds in all)."""
    base = tmp_path_factory.mktemp("zoo")
    return {
        "cifar10": make_cifar(base / "cifar10", n_train=20, n_test=4),
        "cifar100": make_cifar(base / "cifar100", variant="cifar100", n_train=20, n_test=4),
        "imagenet": make_imagefolder(base / "imagenet", n_train_per_class=2, n_val_per_class=1, n_classes=4),
        "coco": make_coco(base / "coco", n_train=5, n_val=2),
        "nmnist": make_ndigits(base / "nmnist", n_per_class=1, n_test_per_class=1),
        "gesture": make_gestures(base / "gesture", train_users=(1, 2), test_users=(24,), classes=(1, 2, 3),
                                 gesture_us=200_000, gap_us=50_000, fps=100),
        "cifar10dvs": _write_cifar10dvs(base / "cifar10dvs"),
        "ncars": _write_ncars(base / "ncars"),
        "shd": _write_shd(base / "shd"),
        "gen1": make_gen1(base / "gen1", n_train=1, n_val=1, n_test=1, duration_us=300_000, fps=100),
        "mvsec": make_mvsec(base / "mvsec", duration_us=300_000, fps=100),
    }


def test_every_name_is_registered_and_has_a_recipe():
    assert set(ZOO) == set(TRAINABLE) | set(DATA_ONLY)
    assert set(ZOO) <= set(list_datasets())
    assert sorted(p.stem for p in CONFIGS.glob("*.yaml")) == sorted(ZOO)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_missing_root_is_one_line_naming_path_and_layout(name, tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(ValueError) as err:
        ZOO[name](str(missing))
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{name}: data_root '{missing}' does not exist; expected {missing}/")
    with pytest.raises(ValueError, match=rf"^{name}: data_root is required \(null given\); expected <data_root>/"):
        ZOO[name](None)


@pytest.mark.parametrize("name", ["nmnist", "gesture", "cifar10dvs", "ncars", "shd", "gen1", "mvsec"])
def test_event_root_without_the_files_is_one_line(name, tmp_path):
    with pytest.raises(ValueError) as err:
        ZOO[name](str(tmp_path))
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{name}: ") and f"expected {tmp_path}/" in msg


def test_nmnist_frames_match_tofame_of_the_recording(roots):
    train, val, test = ZOO["nmnist"](roots["nmnist"], T=4, val_fraction=0.2, seed=0)
    assert (len(train), len(val), len(test)) == (8, 2, 10)
    base = train.dataset.dataset  # TimeMajorDataset(Subset(NMNIST))
    assert set(train.dataset.indices).isdisjoint(val.dataset.indices)
    i = train.dataset.indices[0]
    path, label = base.samples[i]
    ref = ToFrame(NMNIST_SENSOR_SIZE, n_time_bins=4, binarize=True)(read_nmnist(path))
    frames, y = train[0]
    np.testing.assert_array_equal(frames, ref)
    assert y == label
    x, labels = train.collate_fn([train[0], train[1]])
    assert x.shape == (4, 2, 2, 34, 34) and labels.dtype == torch.int64


def test_shd_counts_per_channel_sum_to_the_spikes(roots):
    import h5py

    train, val, test = ZOO["shd"](roots["shd"], T=5, val_fraction=0.34, seed=0)
    assert (len(train), len(val), len(test)) == (4, 2, 2)
    counts, label = test[1]
    with h5py.File(roots["shd"] / "shd_test.h5") as f:
        units = f["spikes/units"][1]
    assert counts.shape == (5, 700)
    np.testing.assert_array_equal(counts.sum(0), np.bincount(units, minlength=700))
    x, _ = test.collate_fn([test[0], test[1]])
    assert x.shape == (5, 2, 700)


def test_gen1_boxes_become_xyxy_targets(roots):
    train, val, test = ZOO["gen1"](roots["gen1"], T=3)
    assert min(len(train), len(val), len(test)) >= 1
    frames, target = val[0]
    assert frames.shape == (3, 3, 240, 304)
    rec, t = val.dataset.samples[0]
    boxes = read_gen1_boxes(val.dataset.recordings[rec][0].with_name(
        val.dataset.recordings[rec][0].name.replace("_td.dat", "_bbox.npy")))
    boxes = boxes[boxes["t"] == t]
    ref = np.stack([boxes["x"], boxes["y"], boxes["x"] + boxes["w"], boxes["y"] + boxes["h"]], -1)
    np.testing.assert_allclose(target["boxes"].numpy(), ref, rtol=0, atol=1e-4)
    assert target["labels"].tolist() == boxes["class_id"].tolist()
    x, targets = val.collate_fn([val[0], val[0]])
    assert x.shape == (3, 2, 3, 240, 304) and len(targets) == 2


def test_mvsec_val_is_the_last_block_of_training(roots):
    train, val, test = ZOO["mvsec"](roots["mvsec"], T=2, val_fraction=0.25)
    n = len(train) + len(val)
    assert list(val.dataset.indices) == list(range(n - len(val), n))
    x, depth = val.collate_fn([val[0], val[-1]])
    assert x.shape == (2, 2, 2, 260, 346) and depth.shape == (2, 260, 346)


def _overrides(name: str, root: Path, out: Path) -> list[str]:
    tiny = {"imagenet": ["dataset_kwargs.val_fraction=0.25"], "gesture": ["dataset_kwargs.val_fraction=0.3"],
            "nmnist": ["dataset_kwargs.val_fraction=0.2"]}
    event_T = ["dataset_kwargs.T=3", "model_kwargs.T=3"] if name in ("nmnist", "gesture", "cifar10dvs", "ncars", "shd") else []
    return [f"data_root={root}", "epochs=1", "max_steps_per_epoch=1", "batch_size=2", "eval_batch_size=4",
            "device=cpu", "num_workers=0", "warmup_epochs=0", f"out_dir={out}", "model_kwargs.T=2",
            *event_T, *tiny.get(name, [])]


@pytest.mark.parametrize("name", TRAINABLE)
def test_recipe_trains_one_step_on_generated_data(name, roots, tmp_path):
    cfg = load_config(CONFIGS / f"{name}.yaml", _overrides(name, roots[name], tmp_path / "run"))
    result = train(cfg)
    assert np.isfinite(result.test_metrics["loss"]) and 0.0 <= result.test_metrics["accuracy"] <= 1.0


@pytest.mark.parametrize("name", DATA_ONLY)
def test_data_only_recipe_builds_its_splits(name, roots):
    cfg = load_config(CONFIGS / f"{name}.yaml", [f"data_root={roots[name]}"])
    # When a model and task for it exist, move it to TRAINABLE.
    assert cfg.model not in list_models() or cfg.task not in list_tasks()
    kwargs = dict(cfg.dataset_kwargs)
    if name == "coco":
        kwargs.update(img_size=32, val_fraction=0.2)
    if "T" in kwargs:
        kwargs["T"] = 2
    splits = ZOO[name](cfg.data_root, **kwargs)
    assert len(splits) == 3 and all(len(s) >= 1 for s in splits)
    batch = splits[2].collate_fn([splits[2][0]])
    assert batch[0].shape[0 if name == "coco" else 1] == 1
