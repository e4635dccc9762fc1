"""Event datasets: small fake files written in each real layout, read back through the class."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from spikedrive.data.datasets.event_datasets import (
    CIFAR10DVS, MVSEC, NCARS, NMNIST, SHD, DVSGesture, Gen1,
)
from spikedrive.data.events.aedat2 import write_aedat2
from spikedrive.data.events.aedat31 import write_aedat31
from spikedrive.data.events.dtype import EVENT_DTYPE, make_events
from spikedrive.data.events.gen1 import BOX_DTYPE, write_gen1_boxes
from spikedrive.data.events.gesture_labels import GESTURE_LABEL_DTYPE, write_dvs_gesture_labels
from spikedrive.data.events.mvsec import write_mvsec_hdf5
from spikedrive.data.events.nmnist import write_nmnist
from spikedrive.data.events.prophesee import write_prophesee_dat
from spikedrive.data.events.representations import to_cumulative_frames, to_event_histogram
from spikedrive.data.events.shd import write_shd
from spikedrive.data.events.transforms import Compose, Flip, ToCumulativeFrames, ToEventHistogram


def fake_events(n: int, width: int, height: int, t_max: int, seed: int = 0, t0: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return make_events(t0 + np.sort(rng.integers(0, t_max, n)), rng.integers(0, width, n),
                       rng.integers(0, height, n), rng.integers(0, 2, n))


def with_events_at(ev: np.ndarray, times: list[int]) -> np.ndarray:
    """``ev`` plus one event at each of ``times`` (pixel (1, 2), ON), still sorted by time."""
    extra = make_events(times, [1] * len(times), [2] * len(times), [1] * len(times))
    out = np.concatenate([ev, extra])
    return out[np.argsort(out["t"], kind="stable")]


def label_time_probe(events, label_time_us=None):
    """A transform that reports the label time a dataset hands it."""
    return label_time_us, len(events)


def test_missing_root_names_layout(tmp_path):
    for cls in (NMNIST, DVSGesture, CIFAR10DVS, NCARS, SHD, Gen1, MVSEC):
        with pytest.raises(FileNotFoundError, match="expected layout"):
            cls(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="Train/<digit 0-9>"):
        NMNIST(tmp_path)  # exists but empty


def test_nmnist(tmp_path):
    files = {("Train", 0): 1, ("Train", 7): 2, ("Test", 3): 3}
    written = {}
    for (split, digit), seed in files.items():
        (tmp_path / split / str(digit)).mkdir(parents=True)
        ev = fake_events(50, 34, 34, 300_000, seed)
        write_nmnist(tmp_path / split / str(digit) / f"{seed:05d}.bin", ev)
        written[(split, digit)] = ev
    train = NMNIST(tmp_path, train=True, transform=len)
    assert len(train) == 2
    assert [train[i] for i in range(2)] == [(50, 0), (50, 7)]
    test = NMNIST(tmp_path, train=False)
    ev, label = test[0]
    assert label == 3 and ev.dtype == EVENT_DTYPE and np.array_equal(ev, written[("Test", 3)])
    first = NMNIST(tmp_path, train=False, first_saccade_only=True)[0][0]
    ev = written[("Test", 3)]
    assert np.array_equal(first, ev[ev["t"] < 100_000]) and first["t"].max() < 100_000
    # a dataset without label times calls the transform without one
    assert NMNIST(tmp_path, train=False, transform=label_time_probe)[0][0] == (None, 50)


def test_dvs_gesture(tmp_path):
    root = tmp_path / "DvsGesture"
    root.mkdir()
    recs = {"user01_fluorescent": 0, "user24_led": 1}
    for name, seed in recs.items():
        ev = fake_events(2000, 128, 128, 10_000_000, seed, t0=1_000_000)
        write_aedat31(root / f"{name}.aedat", ev)
        labels = np.array([(1, 2_000_000, 4_000_000), (11, 5_000_000, 9_000_000)], dtype=GESTURE_LABEL_DTYPE)
        write_dvs_gesture_labels(root / f"{name}_labels.csv", labels)
    (root / "trials_to_train.txt").write_text("user01_fluorescent.aedat\n")
    (root / "trials_to_test.txt").write_text("user24_led.aedat\n\n")
    train = DVSGesture(tmp_path, train=True)
    assert len(train) == 2
    ev, label = train[1]
    assert label == 10 and ev["t"].min() >= 5_000_000 and ev["t"].max() < 9_000_000
    full = fake_events(2000, 128, 128, 10_000_000, 0, t0=1_000_000)
    assert np.array_equal(ev, full[(full["t"] >= 5_000_000) & (full["t"] < 9_000_000)])
    assert DVSGesture(root, train=False)[0][1] == 0
    # a recording whose events are out of time order is sorted once, then sliced by time
    shuffled = full[np.random.default_rng(5).permutation(len(full))]
    write_aedat31(root / "user01_fluorescent.aedat", shuffled)
    ev, _ = DVSGesture(tmp_path, train=True)[1]
    assert np.array_equal(ev, full[(full["t"] >= 5_000_000) & (full["t"] < 9_000_000)])
    # without the trial lists the split is by user: 1-23 train, 24-29 test
    (root / "trials_to_train.txt").unlink()
    (root / "trials_to_test.txt").unlink()
    assert len(DVSGesture(root, train=True)) == 2 and len(DVSGesture(root, train=False)) == 2


def test_cifar10dvs(tmp_path):
    for cls, idx in (("airplane", 0), ("airplane", 100), ("truck", 5)):
        (tmp_path / cls).mkdir(exist_ok=True)
        write_aedat2(tmp_path / cls / f"cifar10_{cls}_{idx}.aedat", fake_events(30, 128, 128, 1_000_000, idx))
    assert len(CIFAR10DVS(tmp_path)) == 3
    train = CIFAR10DVS(tmp_path, train=True)
    assert len(train) == 1 and train[0][1] == 0
    test = CIFAR10DVS(tmp_path, train=False)
    assert [t for _, t in test] == [0, 9]
    assert np.array_equal(test[1][0], fake_events(30, 128, 128, 1_000_000, 5))


def test_ncars(tmp_path):
    for split, folder in (("train", "n-cars_train"), ("test", "test")):
        for label, cls in enumerate(("background", "cars")):
            (tmp_path / folder / cls).mkdir(parents=True)
            write_prophesee_dat(tmp_path / folder / cls / f"obj_{label}_td.dat",
                                fake_events(40, 120, 100, 100_000, label), width=120, height=100)
    ds = NCARS(tmp_path, train=True)
    assert len(ds) == 2 and [ds[i][1] for i in range(2)] == [0, 1]
    assert np.array_equal(ds[1][0], fake_events(40, 120, 100, 100_000, 1))
    assert len(NCARS(tmp_path, train=False)) == 2


def test_shd(tmp_path):
    rng = np.random.default_rng(0)
    times = [rng.uniform(0, 1, 20).astype(np.float32) for _ in range(3)]
    units = [rng.integers(0, 700, 20) for _ in range(3)]
    write_shd(tmp_path / "shd_train.h5", times, units, [4, 5, 6])
    ds = SHD(tmp_path, train=True)
    assert len(ds) == 3
    ev, label = ds[2]
    assert label == 6 and ev.dtype == EVENT_DTYPE
    order = np.argsort(times[2], kind="stable")
    assert np.array_equal(ev["x"], units[2][order])
    assert np.array_equal(ev["t"], np.rint(times[2][order].astype(np.float64) * 1e6).astype(np.int64))
    assert set(ev["y"].tolist()) == {0} and set(ev["p"].tolist()) == {1}
    with pytest.raises(FileNotFoundError, match="shd_test.h5"):
        SHD(tmp_path, train=False)


def test_shd_rejects_units_beyond_the_channels(tmp_path):
    # a file whose unit does not name one of the 700 channels is corrupt: no silent int16 wrap
    with h5py.File(tmp_path / "shd_train.h5", "w") as f:
        f.create_dataset("spikes/times", (1,), dtype=h5py.vlen_dtype(np.float32))[0] = np.array([0.1, 0.2], np.float32)
        f.create_dataset("spikes/units", (1,), dtype=h5py.vlen_dtype(np.uint16))[0] = np.array([3, 40000], np.uint16)
        f.create_dataset("labels", data=np.array([1], np.uint16))
    ds = SHD(tmp_path, train=True)
    with pytest.raises(ValueError, match=r"shd_train\.h5.*unit 40000"):
        ds[0]


def test_gen1(tmp_path):
    folder = tmp_path / "detection_dataset_duration_60s_ratio_1.0" / "val"
    folder.mkdir(parents=True)
    # events exactly at a label time and at the window's start: the window is [t - w, t)
    ev = with_events_at(fake_events(3000, 304, 240, 1_000_000, 3), [150_000, 199_999, 250_000, 500_000])
    write_prophesee_dat(folder / "17-04-13_15-05-43_3599500000_3659500000_td.dat", ev)
    boxes = np.zeros(3, dtype=BOX_DTYPE)
    boxes["t"] = [250_000, 250_000, 500_000]
    boxes["w"] = boxes["h"] = 30
    boxes["class_id"] = [0, 1, 0]
    write_gen1_boxes(folder / "17-04-13_15-05-43_3599500000_3659500000_bbox.npy", boxes)
    ds = Gen1(tmp_path, split="val", window_us=100_000)
    assert len(ds) == 2
    events, target = ds[0]
    assert target.dtype == BOX_DTYPE and target["class_id"].tolist() == [0, 1]
    want = ev[(ev["t"] >= 150_000) & (ev["t"] < 250_000)]
    assert np.array_equal(events, want)
    assert events["t"][0] == 150_000 and events["t"][-1] < 250_000
    assert ds[1][1]["t"].tolist() == [500_000]
    assert 500_000 not in ds[1][0]["t"]
    # the label time reaches transforms that take it, also inside a Compose
    assert Gen1(tmp_path, split="val", window_us=100_000, transform=label_time_probe)[0][0] == (250_000, len(want))
    hist = ToEventHistogram((304, 240), n_bins=2, window_us=100_000)
    ref = to_event_histogram(want, (304, 240), label_time_us=250_000, n_bins=2, window_us=100_000)
    for tf in (hist, Compose((Flip((304, 240)), hist))):
        x, _ = Gen1(tmp_path, split="val", window_us=100_000, transform=tf)[0]
        np.testing.assert_array_equal(x, ref)
    with pytest.raises(FileNotFoundError):
        Gen1(tmp_path, train=True)


def test_mvsec(tmp_path):
    t0 = 1_504_645_000_000_000
    depth_t = t0 + np.array([100_000, 300_000, 600_000, 900_000])
    ev = with_events_at(fake_events(4000, 346, 260, 1_000_000, 4, t0=t0),
                        [int(depth_t[2]) - 50_000, int(depth_t[2]) - 1, int(depth_t[2])])
    depth = np.random.default_rng(0).uniform(1, 50, (4, 260, 346)).astype(np.float32)
    depth[:, :5] = np.nan
    write_mvsec_hdf5(tmp_path / "outdoor_day2_data.hdf5", tmp_path / "outdoor_day2_gt.hdf5", ev, depth, depth_t)
    ds = MVSEC(tmp_path, train=True, window_us=50_000)
    assert len(ds) == 4
    events, d = ds[2]
    assert np.array_equal(d, depth[2], equal_nan=True)
    want = ev[(ev["t"] >= depth_t[2] - 50_000) & (ev["t"] < depth_t[2])]
    assert np.array_equal(events, want)
    assert events["t"][0] == depth_t[2] - 50_000 and events["t"][-1] == depth_t[2] - 1
    probe = MVSEC(tmp_path, train=True, window_us=50_000, transform=label_time_probe)
    assert probe[2][0] == (int(depth_t[2]), len(want))
    cum = MVSEC(tmp_path, train=True, window_us=50_000,
                transform=ToCumulativeFrames((346, 260), n_steps=2, window_us=50_000))[2][0]
    ref = to_cumulative_frames(want, (346, 260), label_time_us=int(depth_t[2]), window_us=50_000, n_steps=2)
    np.testing.assert_array_equal(cum, ref)
    assert cum[-1].sum() == len(want)
    with pytest.raises(FileNotFoundError, match="outdoor_day1"):
        MVSEC(tmp_path, train=False)


def test_no_download_url_is_a_clear_error(tmp_path):
    with pytest.raises(RuntimeError, match="download it by hand"):
        DVSGesture(tmp_path, download=True)
