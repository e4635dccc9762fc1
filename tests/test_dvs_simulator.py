"""The DVS simulator: crossings, interpolated timestamps, refractory period, mismatch and noise."""

from __future__ import annotations

import numpy as np
import pytest

from spikedrive.data.events.dtype import EVENT_DTYPE
from spikedrive.data.events.simulator import saccade_sequence, shift_image, simulate_dvs

EPS = 0.05  # the simulator's log_eps: L = log(I + EPS)


def pixel_video(log_levels, shape=(1, 1)) -> np.ndarray:
    """Frames ``[N, *shape]`` whose log intensity is exactly ``log_levels`` at every pixel."""
    i = np.exp(np.asarray(log_levels, dtype=np.float64)) - EPS
    return np.broadcast_to(i[:, None, None], (len(i),) + shape).copy()


IDEAL = dict(threshold_sigma=0.0, log_eps=EPS)


def test_log_ramp_gives_expected_events_and_interpolated_times():
    # up from 0.03 to 1.05 over [0, 1000] µs, then down to 0.05 over [1000, 3000] µs
    frames = pixel_video([0.03, 1.05, 0.05])
    ev = simulate_dvs(frames, np.array([0, 1000, 3000]), **IDEAL)
    assert ev.dtype == EVENT_DTYPE
    # ON crossings at 0.23, 0.43, ..., 1.03: t = (level - 0.03) / 1.02 * 1000
    on_levels = 0.03 + 0.2 * np.arange(1, 6)
    t_on = np.rint((on_levels - 0.03) / 1.02 * 1000).astype(int)
    # reference ends at 1.03; OFF crossings at 0.83, ..., 0.23 (0.03 < 0.05 is not reached)
    off_levels = 1.03 - 0.2 * np.arange(1, 5)
    t_off = np.rint(1000 + (1.05 - off_levels) / 1.0 * 2000).astype(int)
    assert t_on.tolist() == [196, 392, 588, 784, 980]
    assert t_off.tolist() == [1440, 1840, 2240, 2640]
    assert ev["t"].tolist() == t_on.tolist() + t_off.tolist()
    assert ev["p"].tolist() == [1] * 5 + [0] * 4
    assert np.all(ev["x"] == 0) and np.all(ev["y"] == 0)


def test_asymmetric_thresholds_and_pixel_coordinates():
    frames = np.full((2, 3, 4), 0.5)
    frames[1, 1, 2] = np.exp(np.log(0.5 + EPS) + 0.95) - EPS  # +0.95 in log at column 2, row 1
    frames[1, 2, 0] = np.exp(np.log(0.5 + EPS) - 0.95) - EPS  # -0.95 at column 0, row 2
    ev = simulate_dvs(frames, np.array([0, 100]), threshold_pos=0.3, threshold_neg=0.1, **IDEAL)
    on, off = ev[ev["p"] == 1], ev[ev["p"] == 0]
    assert len(on) == 3 and set(zip(on["x"], on["y"])) == {(2, 1)}
    assert len(off) == 9 and set(zip(off["x"], off["y"])) == {(0, 2)}
    np.testing.assert_array_equal(on["t"], np.rint(100 * np.array([0.3, 0.6, 0.9]) / 0.95))


def test_refractory_period_drops_close_crossings():
    frames = pixel_video([0.03, 1.05, 0.05])
    ev = simulate_dvs(frames, np.array([0, 1000, 3000]), refractory_us=300, **IDEAL)
    # candidates 196 392 588 784 980 | 1440 1840 2240 2640; greedy with 300 µs dead time
    assert ev["t"].tolist() == [196, 588, 980, 1440, 1840, 2240, 2640]


def test_refractory_respected_on_a_busy_video():
    rng = np.random.default_rng(0)
    frames = rng.random((30, 6, 6))
    ts = np.arange(30) * 1000
    ev = simulate_dvs(frames, ts, refractory_us=700, seed=1)
    assert len(ev) > 0
    pix = ev["y"].astype(int) * 6 + ev["x"]
    for p in np.unique(pix):
        assert np.all(np.diff(ev["t"][pix == p]) >= 700)
    assert np.all(np.diff(ev["t"]) >= 0)


def test_static_image_without_noise_gives_no_events():
    frames = np.repeat(np.random.default_rng(0).random((1, 8, 8)), 10, axis=0)
    ev = simulate_dvs(frames, np.arange(10) * 1000, threshold_sigma=0.05, seed=3)
    assert len(ev) == 0 and ev.dtype == EVENT_DTYPE


def test_mismatch_is_seeded():
    frames = pixel_video([0.0, 2.0], shape=(8, 8))
    ts = np.array([0, 10_000])
    a = simulate_dvs(frames, ts, threshold_sigma=0.05, seed=7)
    b = simulate_dvs(frames, ts, threshold_sigma=0.05, seed=7)
    c = simulate_dvs(frames, ts, threshold_sigma=0.05, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    counts = np.bincount(a["y"].astype(int) * 8 + a["x"], minlength=64)
    assert counts.min() < counts.max()  # thresholds differ between pixels
    ideal = simulate_dvs(frames, ts, threshold_sigma=0.0)
    assert np.all(np.bincount(ideal["y"].astype(int) * 8 + ideal["x"]) == 10)  # 2.0 / 0.2


def test_background_noise_rate_and_seed():
    frames = np.full((2, 20, 20), 0.5)
    ts = np.array([0, 500_000])  # 0.5 s
    a = simulate_dvs(frames, ts, noise_rate_hz=2.0, seed=5)
    b = simulate_dvs(frames, ts, noise_rate_hz=2.0, seed=5)
    np.testing.assert_array_equal(a, b)
    expected = 2.0 * 400 * 0.5  # rate x pixels x seconds = 400
    assert abs(len(a) - expected) < 5 * np.sqrt(expected)
    assert np.all(np.diff(a["t"]) >= 0) and a["t"].min() >= 0 and a["t"].max() <= 500_000
    assert set(np.unique(a["p"])) == {0, 1}


@pytest.mark.parametrize(
    "frames, ts, match",
    [
        (np.zeros((4, 4)), np.arange(4), "frames"),
        (np.zeros((3, 4, 4)), np.array([0, 5, 5]), "timestamps_us"),
        (np.zeros((3, 4, 4)), np.arange(2), "timestamps_us"),
        (-np.ones((2, 4, 4)), np.arange(2), "frames"),
    ],
)
def test_simulator_validates_inputs(frames, ts, match):
    with pytest.raises(ValueError, match=match):
        simulate_dvs(frames, ts)


def test_shift_image_integer_and_half_pixel():
    img = np.arange(12, dtype=float).reshape(3, 4)
    s = shift_image(img, 1, 0)
    np.testing.assert_array_equal(s[:, 1:], img[:, :-1])
    np.testing.assert_array_equal(s[:, 0], 0)
    s = shift_image(img, 0, -1, fill=9)
    np.testing.assert_array_equal(s[:-1], img[1:])
    np.testing.assert_array_equal(s[-1], 9)
    s = shift_image(img, 0.5, 0)
    np.testing.assert_allclose(s[:, 1:], (img[:, 1:] + img[:, :-1]) / 2)


def test_saccade_sequence_closes_triangle_and_makes_both_polarities():
    img = np.zeros((16, 16))
    img[5:11, 6:10] = 1.0
    frames, ts = saccade_sequence(img, 3, amplitude_px=2.0, frames_per_saccade=10)
    assert frames.shape == (31, 16, 16) and ts.shape == (31,)
    assert ts[0] == 0 and ts[-1] == 300_000 and np.all(np.diff(ts) > 0)
    np.testing.assert_allclose(frames[0], img)
    np.testing.assert_allclose(frames[-1], img, atol=1e-6)  # back at the start
    np.testing.assert_allclose(frames[10], shift_image(img, 1.0, 2.0), atol=1e-6)
    ev = simulate_dvs(frames, ts, seed=0)
    assert len(ev) > 100 and set(np.unique(ev["p"])) == {0, 1}
    np.testing.assert_array_equal(ev, simulate_dvs(frames, ts, seed=0))
