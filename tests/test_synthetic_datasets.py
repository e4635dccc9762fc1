"""Synthetic generators at tiny sizes: real readers read their files back; same seed, same bytes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spikedrive.data.datasets.synthetic import make_gen1, make_gestures, make_mvsec, make_ndigits
from spikedrive.data.datasets.synthetic_common import frame_times, paint_textured_rect
from spikedrive.data.events.aedat import read_aedat
from spikedrive.data.events.dtype import EVENT_DTYPE
from spikedrive.data.events.gen1 import read_gen1_boxes
from spikedrive.data.events.gesture_labels import read_dvs_gesture_labels
from spikedrive.data.events.mvsec import read_mvsec_hdf5
from spikedrive.data.events.nmnist import read_nmnist
from spikedrive.data.events.prophesee import read_prophesee_dat

TINY = {
    "ndigits": lambda root, seed: make_ndigits(
        root, n_per_class=1, n_test_per_class=1, seed=seed, frames_per_saccade=8
    ),
    "gestures": lambda root, seed: make_gestures(
        root, train_users=(1,), test_users=(2,), seed=seed, classes=(1, 4, 11),
        gesture_us=200_000, gap_us=50_000, fps=100,
    ),
    "gen1": lambda root, seed: make_gen1(
        root, n_train=1, n_val=0, n_test=1, seed=seed, duration_us=200_000, fps=100,
        label_period_us=50_000,
    ),
    "mvsec": lambda root, seed: make_mvsec(
        root, ("outdoor_day1", "outdoor_night1"), seed=seed, duration_us=100_000, fps=100
    ),
}


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def sane_events(ev: np.ndarray, width: int, height: int) -> None:
    assert ev.dtype == EVENT_DTYPE and len(ev) > 0
    assert np.all(np.diff(ev["t"]) >= 0)
    assert ev["x"].min() >= 0 and ev["x"].max() < width
    assert ev["y"].min() >= 0 and ev["y"].max() < height
    assert set(np.unique(ev["p"])) == {0, 1}


@pytest.mark.parametrize("name", sorted(TINY))
def test_same_seed_gives_identical_files(name, tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    TINY[name](a, 0)
    TINY[name](b, 0)
    TINY[name](c, 1)
    fa, fb = files(a), files(b)
    assert fa and fa == fb
    assert files(c) != fa


def test_ndigits_reads_back_as_nmnist(tmp_path):
    root = TINY["ndigits"](tmp_path, 0)
    train = sorted((root / "Train").glob("*/*.bin"))
    test = sorted((root / "Test").glob("*/*.bin"))
    assert len(train) == 10 and len(test) == 10
    assert {p.parent.name for p in train} == {str(d) for d in range(10)}
    assert not {p.name for p in train} & {p.name for p in test}  # different sklearn samples
    ev = read_nmnist(train[0])
    sane_events(ev, 34, 34)
    assert ev["t"].max() <= 300_000

    from spikedrive.data.datasets.event_classification import NMNIST

    ds = NMNIST(root, train=False)
    assert len(ds) == 10 and ds[0][1] == 0


def test_gestures_read_back_as_dvs_gesture(tmp_path):
    root = TINY["gestures"](tmp_path, 0)
    assert (root / "trials_to_train.txt").read_text().split() == ["user01_fluorescent.aedat"]
    assert (root / "trials_to_test.txt").read_text().split() == ["user02_fluorescent.aedat"]
    ev = read_aedat(root / "user01_fluorescent.aedat")
    sane_events(ev, 128, 128)
    labels = read_dvs_gesture_labels(root / "user01_fluorescent_labels.csv")
    assert labels["label"].tolist() == [1, 4, 11]
    assert labels["t_start"].tolist() == [50_000, 300_000, 550_000]
    assert np.all(labels["t_end"] - labels["t_start"] == 200_000)
    for row in labels:  # every gesture span has plenty of events, the rests few
        inside = (ev["t"] >= row["t_start"]) & (ev["t"] < row["t_end"])
        assert inside.sum() > 1000
    assert ((ev["t"] < labels["t_start"][0])).sum() < 0.05 * len(ev)

    from spikedrive.data.datasets.event_classification import DVSGesture

    ds = DVSGesture(root, train=True)
    assert [ds[i][1] for i in range(len(ds))] == [0, 3, 10]


def test_gen1_reads_back_with_boxes(tmp_path):
    root = TINY["gen1"](tmp_path, 0)
    dats = sorted(root.glob("*/*_td.dat"))
    assert [p.parent.name for p in dats] == ["test", "train"]
    for dat in dats:
        ev = read_prophesee_dat(dat)
        sane_events(ev, 304, 240)
        boxes = read_gen1_boxes(dat.with_name(dat.name.replace("_td.dat", "_bbox.npy")))
        assert len(boxes) > 0
        assert set(np.unique(boxes["t"])) <= {50_000, 100_000, 150_000, 200_000}
        assert set(np.unique(boxes["class_id"])) <= {0, 1}
        assert np.all(boxes["x"] >= 0) and np.all(boxes["x"] + boxes["w"] <= 304 + 1e-3)
        assert np.all(boxes["y"] >= 0) and np.all(boxes["y"] + boxes["h"] <= 240 + 1e-3)
        assert np.all(boxes["confidence"] == 1.0) and boxes["track_id"].min() >= 1
        cars = boxes[boxes["class_id"] == 0]
        peds = boxes[boxes["class_id"] == 1]
        if len(cars) and len(peds):  # cars are wide, pedestrians tall
            assert np.median(cars["w"] / cars["h"]) > 1 > np.median(peds["w"] / peds["h"])
        # a box has events inside it during the window before its label time
        b = boxes[np.argmax(boxes["w"] * boxes["h"])]
        win = ev[(ev["t"] >= b["t"] - 50_000) & (ev["t"] < b["t"])]
        inside = ((win["x"] >= b["x"]) & (win["x"] < b["x"] + b["w"])
                  & (win["y"] >= b["y"]) & (win["y"] < b["y"] + b["h"]))
        assert inside.sum() > 20


def test_mvsec_reads_back_with_depth(tmp_path):
    root = TINY["mvsec"](tmp_path, 0)
    for name in ("outdoor_day1", "outdoor_night1"):
        assert (root / f"{name}_gt.hdf5").is_file()
        rec = read_mvsec_hdf5(root / f"{name}_data.hdf5")
        sane_events(rec.events, 346, 260)
        assert (rec.width, rec.height) == (346, 260)
        assert rec.depth.shape == (2, 260, 346) and rec.depth.dtype == np.float32
        assert rec.depth_t.tolist() == [50_000, 100_000]
        d = rec.depth[0]
        assert np.isnan(d[:10]).all()  # sky: no lidar return
        finite = d[np.isfinite(d)]
        assert finite.min() > 1.0 and finite.max() <= 80.0
        # the ground gets nearer towards the bottom of the image
        assert d[-1].mean() < d[200].mean() < d[150][np.isfinite(d[150])].mean()
    day = read_mvsec_hdf5(root / "outdoor_day1_data.hdf5").events
    night = read_mvsec_hdf5(root / "outdoor_night1_data.hdf5").events
    assert len(night) < len(day)  # a darker scene gives fewer events


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda r: make_ndigits(r, n_per_class=500), "n_per_class"),
        (lambda r: make_gestures(r, classes=(0,)), "classes"),
        (lambda r: make_gestures(r, train_users=(1,), test_users=(1,)), "train_users"),
        (lambda r: make_gen1(r, n_cars=(3, 1)), "n_cars"),
        (lambda r: make_mvsec(r, ("outdoor_day9",)), "sequences"),
    ],
)
def test_generators_validate_arguments(call, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        call(tmp_path)


def test_frame_times_and_textured_rect_helpers():
    assert frame_times(1_000_000, 200).tolist()[:3] == [0, 5_000, 10_000]
    assert len(frame_times(1_000_000, 200)) == 201 and frame_times(1_000_000, 200)[-1] == 1_000_000
    assert frame_times(10, 1).tolist() == [0, 10]  # at least both ends
    assert frame_times(333_333, 77).tolist()[:3] == [0, 12_820, 25_641]  # 27 frames, rint to even
    img = np.zeros((6, 8))
    # a flat texture (0.5) at brightness 0.8 over [1.5, 4) x [2, 3.25): exact area coverage
    rows, cols, alpha = paint_textured_rect(img, np.full((4, 4), 0.5), 0.8, 1.5, 2.0, 4.0, 3.25)
    assert (rows, cols) == (slice(2, 4), slice(1, 4))
    np.testing.assert_allclose(alpha, [[0.5, 1, 1], [0.125, 0.25, 0.25]])
    np.testing.assert_allclose(img[2:4, 1:4], 0.8 * alpha)
    assert img.sum() == pytest.approx(0.8 * alpha.sum())
    assert paint_textured_rect(img, np.ones((2, 2)), 0.5, 9.0, 0.0, 12.0, 2.0) is None  # off the image
