"""Synthetic MVSEC worlds (motion parallax, NaN holes, unseen test worlds), the MVSEC dataset's
frame size and crop, recipe loss weights and the predict body."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from spikedrive.data.datasets.event_depth import MVSEC
from spikedrive.data.datasets.synthetic_mvsec import make_mvsec, render_mvsec_scene
from spikedrive.data.events.mvsec import write_mvsec_hdf5
from spikedrive.data.events.dtype import make_events

SENSOR = (64, 48)


@pytest.fixture(scope="module")
def small_mvsec(tmp_path_factory):
    root = tmp_path_factory.mktemp("mvsec_small")
    return make_mvsec(root, ("outdoor_day1", "outdoor_day2"), sensor_size=SENSOR, duration_us=300_000, fps=200)


def _runs(row: np.ndarray, z: float) -> list[tuple[int, int]]:
    """``[start, stop)`` column runs of ``row == z``."""
    hit = np.concatenate([[False], np.isclose(row, z), [False]])
    edges = np.flatnonzero(np.diff(hit.astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def test_surfaces_move_by_focal_times_speed_over_depth():
    # two depth maps 20 ms apart: every plane edge inside the image shifts left by f * v * dt / Z
    f, v, dt = 100.0, 10.0, 0.02
    _, depth = render_mvsec_scene("outdoor_day2", np.array([200_000, 220_000]), sensor_size=(160, 120),
                                  focal_px=f, camera_speed_mps=v)
    checked = set()
    for r in range(0, 60, 3):  # above the horizon: planes only (the ground starts at row 60)
        for z in np.unique(depth[0, r][np.isfinite(depth[0, r])]):
            before, after = _runs(depth[0, r], z), _runs(depth[1, r], z)
            for (a0, _), (b0, _) in zip(before, after):
                if 0 < a0 and 0 < b0:  # left edge visible in both (not occluded by the image border)
                    assert b0 - a0 == pytest.approx(-f * v * dt / z, abs=1.0)
                    checked.add(round(float(z), 2))
    assert len(checked) >= 3  # several depths, hence several speeds
    assert max(checked) / min(checked) > 2


def test_depth_has_sky_holes_and_lidar_range(small_mvsec):
    from spikedrive.data.events.mvsec import read_mvsec_depth

    depth, _ = read_mvsec_depth(small_mvsec / "outdoor_day2_gt.hdf5")
    assert np.isnan(depth[:, :3]).all()  # sky: no return
    valid = depth[np.isfinite(depth)]
    assert 2.4 < valid.min() and valid.max() <= 80.0
    assert 0.05 < np.isnan(depth).mean() < 0.6


def test_near_surfaces_give_more_events_than_far_ones(small_mvsec):
    ds = MVSEC(small_mvsec, sequences=("outdoor_day2",))
    near = far = n_near = n_far = 0
    for i in range(len(ds)):
        ev, d = ds[i]
        counts = np.zeros(d.shape)
        np.add.at(counts, (ev["y"], ev["x"]), 1)
        near += counts[d < 6].sum()
        n_near += (d < 6).sum()
        far += counts[d > 25].sum()
        n_far += (d > 25).sum()
    assert n_near > 0 and n_far > 0
    assert near / n_near > 2 * far / n_far


def test_train_and_test_sequences_are_different_worlds(small_mvsec):
    a = MVSEC(small_mvsec, sequences=("outdoor_day1",))[2][1]
    b = MVSEC(small_mvsec, sequences=("outdoor_day2",))[2][1]
    both = np.isfinite(a) & np.isfinite(b)
    assert (np.abs(a[both] - b[both]) > 0.5).mean() > 0.2


# --- the dataset: frame size from the files, crop ---------------------------------------------

def _tiny_files(root):
    ev = make_events(np.array([10, 20, 30, 40]), np.array([1, 5, 6, 7]), np.array([0, 2, 3, 3]),
                     np.array([1, 0, 1, 1]))
    depth = np.arange(2 * 4 * 8, dtype=np.float32).reshape(2, 4, 8) + 1
    write_mvsec_hdf5(root / "outdoor_day2_data.hdf5", root / "outdoor_day2_gt.hdf5", ev, depth, np.array([50, 100]))
    return depth


def test_mvsec_frame_size_comes_from_the_depth_maps(tmp_path):
    _tiny_files(tmp_path)
    assert MVSEC(tmp_path, window_us=50).sensor_size == (8, 4)


def test_mvsec_crop_shifts_events_and_slices_depth(tmp_path):
    depth = _tiny_files(tmp_path)
    ds = MVSEC(tmp_path, window_us=50, crop=(4, 1, 3, 2))
    assert ds.sensor_size == (3, 2)
    ev, d = ds[0]
    # events at (x, y) = (5, 2) and (6, 3) fall inside x in [4, 7), y in [1, 3); (1, 0) does not
    assert ev["x"].tolist() == [1] and ev["y"].tolist() == [1] and ev["t"].tolist() == [20]
    np.testing.assert_array_equal(d, depth[0, 1:3, 4:7])


@pytest.mark.parametrize("crop", [(0, 0, 9, 4), (-1, 0, 2, 2), (0, 0, 0, 2)])
def test_mvsec_crop_outside_the_frame_is_refused(tmp_path, crop):
    _tiny_files(tmp_path)
    with pytest.raises(ValueError, match=r"MVSEC: crop=.* expected \(x, y, w, h\) with w, h >= 1 inside the 8x4 frame"):
        MVSEC(tmp_path, window_us=50, crop=crop)


# --- the recipe's loss weights and the predict body -------------------------------------------

def test_recipe_task_kwargs_set_the_loss_weights():
    from spikedrive.engine.depth_task import build_depth_task

    task = build_depth_task(types.SimpleNamespace(task_kwargs={"lam": 1.0, "grad_weight": 0.0, "scales": 2}))
    assert task.loss_kwargs == {"lam": 1.0, "grad_weight": 0.0, "scales": 2}
    assert build_depth_task(types.SimpleNamespace()).loss_kwargs == {"lam": 0.5, "grad_weight": 0.5, "scales": 4}
    with pytest.raises(ValueError, match=r"depth task: task_kwargs has unknown key 'grad_wieght', expected some of"):
        build_depth_task(types.SimpleNamespace(task_kwargs={"grad_wieght": 1.0}))


def test_predict_pngs_writes_one_png_per_sample(tmp_path):
    from spikedrive.depth import DepthTask
    from spikedrive.engine.depth_task import predict_pngs

    class Const(torch.nn.Module):
        def forward(self, x):
            return torch.full((x.shape[1], 1, x.shape[3], x.shape[4]), 0.5)

    depth = torch.full((6, 8), 10.0)
    depth[0] = float("nan")
    samples = [(torch.zeros(2, 2, 6, 8), depth)] * 3
    paths = predict_pngs(Const(), DepthTask(), samples, tmp_path, split="test", limit=2)
    assert [p.name for p in paths] == ["test_0000.png", "test_0001.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)
