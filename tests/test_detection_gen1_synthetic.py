"""The synthetic Gen1 set's ``pedestrian_scale``: pedestrians alone are resized, nothing else moves."""

from __future__ import annotations

import numpy as np
import pytest

from spikedrive.data.datasets.synthetic_gen1 import make_gen1

SMALL = dict(n_train=1, n_val=0, n_test=0, sensor_size=(64, 48), object_scale=0.5, duration_us=100_000, fps=100,
             label_period_us=50_000, n_cars=(1, 1), n_pedestrians=(1, 1))


def _boxes(root) -> np.ndarray:
    return np.load(next((root / "train").glob("*_bbox.npy")))


def test_pedestrian_scale_none_is_object_scale(tmp_path) -> None:
    a = make_gen1(tmp_path / "a", **SMALL)
    b = make_gen1(tmp_path / "b", **SMALL, pedestrian_scale=0.5)
    for name in ("synthetic_train_000_td.dat", "synthetic_train_000_bbox.npy"):
        assert (a / "train" / name).read_bytes() == (b / "train" / name).read_bytes()


def test_pedestrian_scale_resizes_pedestrians_only(tmp_path) -> None:
    tall = {**SMALL, "sensor_size": (64, 96)}
    half = _boxes(make_gen1(tmp_path / "a", **tall))
    full = _boxes(make_gen1(tmp_path / "b", **tall, pedestrian_scale=1.0))
    cars_a, cars_b = half[half["class_id"] == 0], full[full["class_id"] == 0]
    np.testing.assert_array_equal(cars_a, cars_b)
    peds_a, peds_b = half[half["class_id"] == 1], full[full["class_id"] == 1]
    assert len(peds_a) and len(peds_b)
    # the same random draws times 1.0 instead of 0.5: full-size height is twice the half-size one
    # (never clipped vertically: bottoms lie at 0.5-0.95 of 96 px, pedestrians are at most 44 px tall)
    assert peds_b["h"].max() == pytest.approx(2 * peds_a["h"].max(), rel=1e-5)
    assert peds_b["w"].max() >= 10.0 > peds_a["w"].max()


def test_pedestrian_scale_must_be_positive(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"pedestrian_scale: expected > 0 or None, got 0"):
        make_gen1(tmp_path, **SMALL, pedestrian_scale=0)
