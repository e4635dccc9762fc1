"""Event representations and event-wise ops against hand-computed examples and plain loops."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from spikedrive.data.events import augment as A
from spikedrive.data.events import representations as R
from spikedrive.data.events import transforms as T
from spikedrive.data.events.dtype import EVENT_DTYPE, make_events

W, H = 7, 5
SENSOR = (W, H)


def random_events(n: int = 300, seed: int = 0, t_max: int = 10_000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, t_max, n))
    return make_events(t, rng.integers(0, W, n), rng.integers(0, H, n), rng.integers(0, 2, n))


def loop_frames(events: np.ndarray, bins: list[tuple[int, int]], by_index: bool) -> np.ndarray:
    """Reference: frames[i] counts the events in bins[i] (index range or [t_lo, t_hi))."""
    out = np.zeros((len(bins), 2, H, W), np.float32)
    for i, (lo, hi) in enumerate(bins):
        for k, e in enumerate(events):
            inside = lo <= k < hi if by_index else lo <= e["t"] < hi
            if inside:
                out[i, e["p"], e["y"], e["x"]] += 1
    return out


# ------------------------------------------------------------------------------- frames
def test_frames_tiny_hand_example():
    ev = make_events([0, 10, 20, 30], [0, 1, 1, 1], [0, 0, 1, 1], [1, 0, 1, 1])
    f = R.to_frames(ev, (2, 2), n_time_bins=2)  # span [0, 31): bins [0, 15.5), [15.5, 31)
    assert f.shape == (2, 2, 2, 2) and f.dtype == np.float32
    expected = np.zeros((2, 2, 2, 2), np.float32)
    expected[0, 1, 0, 0] = 1
    expected[0, 0, 0, 1] = 1
    expected[1, 1, 1, 1] = 2
    np.testing.assert_array_equal(f, expected)
    np.testing.assert_array_equal(R.to_frames(ev, (2, 2), n_time_bins=2, binarize=True), expected > 0)


@pytest.mark.parametrize("n_bins", [1, 3, 7])
def test_frames_time_bins_match_loop(n_bins):
    ev = random_events()
    t0, t1 = int(ev["t"][0]), int(ev["t"][-1]) + 1
    d = t1 - t0
    # bin i holds t0 + i d / T <= t < t0 + (i + 1) d / T, i.e. integer edges ceil(i d / T)
    edges = [t0 - (-(i * d) // n_bins) for i in range(n_bins + 1)]
    ref = loop_frames(ev, list(zip(edges[:-1], edges[1:])), by_index=False)
    out = R.to_frames(ev, SENSOR, n_time_bins=n_bins)
    np.testing.assert_array_equal(out, ref)
    assert out.sum() == len(ev)


def test_frames_time_bins_with_overlap():
    ev = make_events(np.arange(0, 100, 5), np.zeros(20), np.zeros(20), np.ones(20))
    # span [0, 100), T = 3, overlap 0.5: length 100 / (1 + 2 * 0.5) = 50, stride 25
    out = R.to_frames(ev, SENSOR, n_time_bins=3, overlap=0.5, end_time_us=100)
    ref = loop_frames(ev, [(0, 50), (25, 75), (50, 100)], by_index=False)
    np.testing.assert_array_equal(out, ref)
    assert out[:, 1, 0, 0].tolist() == [10, 10, 10]


def test_frames_event_bins_and_event_count_match_loop():
    ev = random_events(n=301)
    out = R.to_frames(ev, SENSOR, n_event_bins=4)
    bins = [(i * 301 // 4, (i + 1) * 301 // 4) for i in range(4)]
    np.testing.assert_array_equal(out, loop_frames(ev, bins, by_index=True))

    out = R.to_frames(ev, SENSOR, event_count=50)  # 6 full slices, the last event dropped
    np.testing.assert_array_equal(
        out, loop_frames(ev, [(50 * i, 50 * i + 50) for i in range(6)], by_index=True)
    )
    out = R.to_frames(ev, SENSOR, event_count=50, include_incomplete=True)
    assert out.shape[0] == 7 and out[6].sum() == 1
    out = R.to_frames(ev, SENSOR, event_count=100, overlap=50)  # stride 50: 0, 50, ..., 200
    np.testing.assert_array_equal(
        out, loop_frames(ev, [(50 * i, 50 * i + 100) for i in range(5)], by_index=True)
    )


def test_frames_time_window_matches_loop():
    ev = random_events()
    t0 = int(ev["t"][0])
    t1 = int(ev["t"][-1]) + 1
    out = R.to_frames(ev, SENSOR, time_window_us=2_000)
    n_full = (t1 - t0 - 2_000) // 2_000 + 1
    bins = [(t0 + 2_000 * i, t0 + 2_000 * (i + 1)) for i in range(n_full)]
    np.testing.assert_array_equal(out, loop_frames(ev, bins, by_index=False))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(sensor_size=(7,), n_time_bins=2), "sensor_size"),
        (dict(sensor_size=(7, 5, 3), n_time_bins=2), "sensor_size"),
        (dict(sensor_size=SENSOR, n_time_bins=0), "n_time_bins"),
        (dict(sensor_size=SENSOR, event_count=-3), "event_count"),
        (dict(sensor_size=SENSOR), "exactly one"),
        (dict(sensor_size=SENSOR, n_time_bins=2, event_count=3), "exactly one"),
        (dict(sensor_size=SENSOR, n_time_bins=2, overlap=1.0), "overlap"),
        (dict(sensor_size=(3, 3), n_time_bins=2), "outside sensor_size"),
    ],
)
def test_frames_errors_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        R.to_frames(random_events(), **kwargs)


def test_unsorted_events_rejected():
    ev = random_events()[::-1]
    with pytest.raises(ValueError, match="sorted"):
        R.to_frames(ev, SENSOR, n_time_bins=2)
    with pytest.raises(ValueError, match="events"):
        R.to_frames(np.zeros(3), SENSOR, n_time_bins=2)


def test_frames_empty_stream():
    out = R.to_frames(np.zeros(0, EVENT_DTYPE), SENSOR, n_time_bins=3)
    assert out.shape == (3, 2, H, W) and not out.any()


# ------------------------------------------------------------------------------- Gen1 histogram
def test_histogram_latest_event_wins_hand_example():
    # window [1000 - 400, 1000) = [600, 1000), 2 bins: [600, 800), [800, 1000)
    ev = make_events(
        [500, 600, 650, 700, 900, 1000], [0, 1, 1, 2, 1, 0], [0, 0, 0, 0, 0, 0], [1, 1, 0, 1, 1, 1]
    )
    f = R.to_event_histogram(ev, (3, 1), label_time_us=1000, window_us=400, n_bins=2)
    assert f.shape == (2, 3, 1, 3)
    np.testing.assert_array_equal(f[:, 0, 0], [[127, 0, 255], [127, 255, 127]])
    assert np.all(f == f[:, :1])  # three equal channels
    g = R.to_event_histogram(ev, (3, 1), label_time_us=1000, window_us=400, n_bins=2, normalize=True)
    np.testing.assert_allclose(g, f / 255)


def test_histogram_matches_sequential_loop():
    ev = random_events(n=2000, t_max=5_000)  # many collisions per pixel and bin
    label, window, n_bins = 4_500, 3_000, 3
    ref = np.full((n_bins, H, W), 127.0, np.float32)
    for e in ev:  # a plain loop: later events overwrite earlier ones
        rel = int(e["t"]) - (label - window)
        if 0 <= rel < window:
            ref[rel * n_bins // window, e["y"], e["x"]] = 255.0 * e["p"]
    out = R.to_event_histogram(ev, SENSOR, label_time_us=label, window_us=window, n_bins=n_bins)
    np.testing.assert_array_equal(out, np.repeat(ref[:, None], 3, axis=1))


# ------------------------------------------------------------------------------- cumulative
def test_cumulative_frames_monotone_and_match_loop():
    ev = random_events(n=500)
    label, window, steps = 9_000, 6_000, 4
    out = R.to_cumulative_frames(ev, SENSOR, label_time_us=label, window_us=window, n_steps=steps)
    assert out.shape == (steps, 2, H, W)
    assert np.all(np.diff(out, axis=0) >= 0)
    start = label - window
    ref = loop_frames(ev, [(start, start + (i + 1) * window // steps) for i in range(steps)], False)
    np.testing.assert_array_equal(out, ref)
    whole = R.to_frames(ev, SENSOR, n_time_bins=1, start_time_us=start, end_time_us=label)
    np.testing.assert_array_equal(out[-1], whole[0])
    binary = R.to_cumulative_frames(
        ev, SENSOR, label_time_us=label, window_us=window, n_steps=steps, binarize=True
    )
    np.testing.assert_array_equal(binary, out > 0)


# ------------------------------------------------------------------------------- voxel grid
def test_voxel_grid_hand_example():
    # t0 = 0, t1 = 100, 3 bins: tn = 2 t / 100
    ev = make_events([0, 25, 100], [0, 0, 1], [0, 0, 0], [1, 0, 1])
    g = R.to_voxel_grid(ev, (2, 1), 3)
    # event at tn 0 -> bin 0 (+1); tn 0.5 -> -0.5 in bins 0 and 1; tn 2 -> bin 2 (+1)
    np.testing.assert_allclose(g[:, 0, 0], [0.5, -0.5, 0.0])
    np.testing.assert_allclose(g[:, 0, 1], [0.0, 0.0, 1.0])


def test_voxel_grid_matches_loop_and_sums_to_polarity_balance():
    ev = random_events()
    n_bins = 5
    t0, t1 = int(ev["t"][0]), int(ev["t"][-1])
    ref = np.zeros((n_bins, H, W))
    for e in ev:
        tn = (n_bins - 1) * (int(e["t"]) - t0) / (t1 - t0)
        pol = 1.0 if e["p"] else -1.0
        for b in range(n_bins):
            ref[b, e["y"], e["x"]] += pol * max(0.0, 1.0 - abs(b - tn))
    out = R.to_voxel_grid(ev, SENSOR, n_bins)
    np.testing.assert_allclose(out, ref, atol=1e-5)
    n_on = int(ev["p"].sum())
    assert out.sum() == pytest.approx(n_on - (len(ev) - n_on), abs=1e-3)


# ------------------------------------------------------------------------------- time surface
def test_time_surface_matches_loop():
    ev = random_events(n=200)
    times = [9_000, 2_000, 5_000]
    tau = 1_500.0
    out = R.to_time_surface(ev, SENSOR, times, tau)
    assert out.shape == (3, 2, H, W)
    for k, s in enumerate(times):
        last = np.full((2, H, W), np.nan)
        for e in ev:
            if e["t"] <= s:
                last[e["p"], e["y"], e["x"]] = e["t"]
        ref = np.where(np.isnan(last), 0.0, np.exp(-(s - last) / tau))
        np.testing.assert_allclose(out[k], ref, rtol=1e-6)
    with pytest.raises(ValueError, match="tau_us"):
        R.to_time_surface(ev, SENSOR, times, 0.0)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda ev: R.to_event_histogram(ev, SENSOR, label_time_us=None, n_bins=2), "label_time_us: expected an integer, got None"),
        (lambda ev: R.to_event_histogram(ev, SENSOR, label_time_us="9000", n_bins=2), "label_time_us: expected an integer, got '9000'"),
        (lambda ev: R.to_event_histogram(ev, SENSOR, label_time_us=9_000, n_bins="2"), "n_bins: expected a positive integer, got '2'"),
        (lambda ev: R.to_cumulative_frames(ev, SENSOR, label_time_us=1.5, window_us=10, n_steps=2), "label_time_us: expected an integer, got 1.5"),
        (lambda ev: R.to_cumulative_frames(ev, SENSOR, label_time_us=9_000, window_us=None, n_steps=2), "window_us: expected a positive integer, got None"),
        (lambda ev: R.to_time_surface(ev, SENSOR, [9_000], "x"), "tau_us: expected a positive number, got 'x'"),
        (lambda ev: R.to_time_surface(ev, SENSOR, [9_000], float("nan")), "tau_us: expected a positive number, got nan"),
        (lambda ev: R.to_time_surface(ev, SENSOR, ["soon"], 10.0), "sample_times_us: expected integer times"),
    ],
)
def test_bad_scalar_arguments_are_named_value_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call(random_events())


def test_numpy_scalars_are_accepted():
    ev = random_events()
    a = R.to_event_histogram(ev, SENSOR, label_time_us=np.int64(9_000), n_bins=np.int32(2))
    np.testing.assert_array_equal(a, R.to_event_histogram(ev, SENSOR, label_time_us=9_000, n_bins=2))
    b = R.to_time_surface(ev, SENSOR, [9_000], np.float32(1_500.0))
    np.testing.assert_allclose(b, R.to_time_surface(ev, SENSOR, [9_000], 1_500.0), rtol=1e-6)


# ------------------------------------------------------------------------------- denoise
NEIGHBOURS = {
    8: [(dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dx, dy) != (0, 0)],
    4: [(-1, 0), (1, 0), (0, -1), (0, 1)],
}


def loop_denoise(ev: np.ndarray, filt: int, neighbours: int, w: int = W, h: int = H) -> np.ndarray:
    """Reference: keep an event when a neighbour's latest earlier event is < filt µs before it."""
    last = np.full((h, w), -(10**12))
    keep = []
    for e in ev:
        x, y, t = int(e["x"]), int(e["y"]), int(e["t"])
        keep.append(any(
            0 <= x + dx < w and 0 <= y + dy < h and t - last[y + dy, x + dx] < filt
            for dx, dy in NEIGHBOURS[neighbours]
        ))
        last[y, x] = t
    return np.array(keep, dtype=bool)


@pytest.mark.parametrize("neighbours", [8, 4])
def test_denoise_matches_loop(neighbours):
    ev = random_events(n=400, t_max=20_000)
    out = A.denoise(ev, SENSOR, 1_000, neighbours=neighbours)
    np.testing.assert_array_equal(out, ev[loop_denoise(ev, 1_000, neighbours)])
    assert 0 < len(out) < len(ev)


def test_denoise_dense_stream_with_equal_times_matches_loop():
    # many events per pixel and many equal timestamps: "earlier" means earlier in the stream
    ev = random_events(n=3000, seed=7, t_max=1_500)
    for neighbours in (8, 4):
        keep = loop_denoise(ev, 40, neighbours)
        np.testing.assert_array_equal(A.denoise(ev, SENSOR, 40, neighbours=neighbours), ev[keep])
        assert 0 < keep.sum() < len(ev)
    assert len(A.denoise(ev, SENSOR, 40)) == len(A.denoise(ev, SENSOR, 40, neighbours=8))
    with pytest.raises(ValueError, match="neighbours: expected 4 or 8, got 6"):
        A.denoise(ev, SENSOR, 40, neighbours=6)
    assert T.Denoise(SENSOR, 40, neighbours=4)(ev).tolist() == A.denoise(ev, SENSOR, 40, neighbours=4).tolist()


def tonic_denoise_rule(ev: np.ndarray, filt: int) -> np.ndarray:
    """Tonic's ``denoise_numpy`` rule (tonic/functional/denoise.py), restated as a loop: a
    per-pixel memory of "last time + filter_time", started at ``filter_time``, over a sensor as
    large as the largest x and y seen; keep when one of the 4 neighbours' memory is > t."""
    w, h = int(ev["x"].max()) + 1, int(ev["y"].max()) + 1
    memory = np.full((w, h), filt, dtype=np.int64)
    keep = []
    for e in ev:
        x, y, t = int(e["x"]), int(e["y"]), int(e["t"])
        memory[x, y] = t + filt
        keep.append(any(0 <= x + dx < w and 0 <= y + dy < h and memory[x + dx, y + dy] > t
                        for dx, dy in NEIGHBOURS[4]))
    return np.array(keep, dtype=bool)


def test_denoise_4_neighbours_is_tonics_rule():
    # outside Tonic's two quirks (memory starting at filter_time, size from the data), equal
    ev = random_events(n=600, seed=3, t_max=30_000)
    ev = ev[ev["t"] >= 1_000]
    assert ev["x"].max() == W - 1 and ev["y"].max() == H - 1
    keep = tonic_denoise_rule(ev, 1_000)
    np.testing.assert_array_equal(A.denoise(ev, SENSOR, 1_000, neighbours=4), ev[keep])
    # the quirk: Tonic keeps an isolated event in the first filter_time µs, we do not
    lone = make_events([5], [2], [2], [1])
    assert tonic_denoise_rule(lone, 1_000).tolist() == [True]
    assert len(A.denoise(lone, SENSOR, 1_000, neighbours=4)) == 0


def test_denoise_drops_isolated_and_hot_pixel():
    ev = make_events([0, 10, 20, 30], [3, 3, 4, 0], [3, 3, 3, 0], [1, 1, 1, 1])
    out = A.denoise(ev, SENSOR, 100)
    # (3,3) twice: a pixel does not support itself; (4,3) is supported by (3,3); (0,0) isolated
    assert out["t"].tolist() == [20]


# ------------------------------------------------------------------------------- geometry
def test_crop_downsample_flip():
    ev = make_events([0, 1, 2], [0, 3, 6], [0, 2, 4], [1, 0, 1])
    c = A.crop(ev, SENSOR, target_size=(3, 3))  # x0 = 2, y0 = 1
    assert c["x"].tolist() == [1] and c["y"].tolist() == [1]
    b = A.crop(ev, SENSOR, box=(3, 2, 4, 3))
    assert b["x"].tolist() == [0, 3] and b["y"].tolist() == [0, 2]
    with pytest.raises(ValueError, match="crop"):
        A.crop(ev, SENSOR, box=(5, 0, 4, 3))
    d = A.downsample(ev, SENSOR, factor=2)
    assert d["x"].tolist() == [0, 1, 3] and d["y"].tolist() == [0, 1, 2]
    d = A.downsample(ev, SENSOR, target_size=(3, 2))
    assert d["x"].tolist() == [0, 1, 2] and d["y"].tolist() == [0, 0, 1]
    with pytest.raises(ValueError, match="factor"):
        A.downsample(ev, SENSOR, factor=0)
    f = A.flip(ev, SENSOR, lr=True, flip_polarity=True)
    assert f["x"].tolist() == [6, 3, 0] and f["y"].tolist() == [0, 2, 4]
    assert f["p"].tolist() == [0, 1, 0]
    f = A.flip(ev, SENSOR, ud=True)
    assert f["y"].tolist() == [4, 2, 0] and f.dtype == EVENT_DTYPE


def test_time_jitter_sorted_and_seeded():
    ev = random_events(n=1000)
    a = A.time_jitter(ev, 50.0, np.random.default_rng(3))
    b = A.time_jitter(ev, 50.0, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert np.all(np.diff(a["t"]) >= 0) and a["t"].min() >= 0
    assert len(a) == len(ev) and a["p"].sum() == ev["p"].sum()
    np.testing.assert_array_equal(A.time_jitter(ev, 0.0, np.random.default_rng(0)), ev)


def test_time_slice():
    ev = random_events()
    s = A.time_slice(ev, 2_000, 4_000)
    np.testing.assert_array_equal(s, ev[(ev["t"] >= 2_000) & (ev["t"] < 4_000)])


# ------------------------------------------------------------------------------- transforms
def test_transforms_wrap_functions_and_pickle():
    ev = random_events()
    tfs = [
        T.ToFrame(SENSOR, n_time_bins=3),
        T.ToEventHistogram(SENSOR, n_bins=2, window_us=4_000),
        T.ToCumulativeFrames(SENSOR, n_steps=3, window_us=3_000),
        T.ToVoxelGrid(SENSOR, n_bins=4),
        T.ToTimeSurface(SENSOR, tau_us=1_000.0, n_samples=2),
        T.Denoise(SENSOR, 500),
        T.CenterCrop(SENSOR, (3, 3)),
        T.CropBox(SENSOR, (1, 1, 2, 2)),
        T.Downsample(SENSOR, factor=2),
        T.Flip(SENSOR, lr=True),
        T.TimeSlice(100, 5_000),
    ]
    for tf in tfs:
        clone = pickle.loads(pickle.dumps(tf))
        assert clone == tf and repr(clone) == repr(tf)
        np.testing.assert_array_equal(clone(ev), tf(ev))
    np.testing.assert_array_equal(tfs[0](ev), R.to_frames(ev, SENSOR, n_time_bins=3))
    last = int(ev["t"][-1]) + 1
    np.testing.assert_array_equal(
        tfs[1](ev), R.to_event_histogram(ev, SENSOR, label_time_us=last, n_bins=2, window_us=4_000)
    )
    pipe = T.Compose([T.Flip(SENSOR, ud=True), T.ToFrame(SENSOR, n_event_bins=2)])
    flipped = A.flip(ev, SENSOR, ud=True)
    np.testing.assert_array_equal(pipe(ev), R.to_frames(flipped, SENSOR, n_event_bins=2))
    assert pickle.loads(pickle.dumps(pipe)) == pipe


def test_label_time_reaches_transforms_that_take_it():
    ev = random_events()
    hist = T.ToEventHistogram(SENSOR, n_bins=2, window_us=4_000)
    assert T.takes_label_time(hist) and T.takes_label_time(T.ToCumulativeFrames(SENSOR))
    assert not T.takes_label_time(T.ToFrame(SENSOR, n_time_bins=2)) and not T.takes_label_time(len)
    ref = R.to_event_histogram(ev, SENSOR, label_time_us=6_000, n_bins=2, window_us=4_000)
    np.testing.assert_array_equal(T.apply_transform(hist, ev, 6_000), ref)
    pipe = T.Compose((T.Flip(SENSOR), hist))  # Flip takes no label time, the histogram does
    np.testing.assert_array_equal(T.apply_transform(pipe, ev, 6_000), ref)
    np.testing.assert_array_equal(pipe(ev, label_time_us=6_000), ref)
    np.testing.assert_array_equal(T.apply_transform(pipe, ev), hist(ev))  # no time: last event + 1
    assert T.apply_transform(len, ev, 6_000) == len(ev)


def test_random_transforms_seeded():
    ev = random_events()
    rf = T.RandomFlip(SENSOR, p_lr=1.0, p_ud=0.0)
    np.testing.assert_array_equal(rf(ev, np.random.default_rng(0)), A.flip(ev, SENSOR, lr=True))
    tj = T.TimeJitter(std_us=20.0)
    np.testing.assert_array_equal(tj(ev, np.random.default_rng(1)), tj(ev, np.random.default_rng(1)))
    with pytest.raises(ValueError, match="p_lr"):
        T.RandomFlip(SENSOR, p_lr=2.0)
    with pytest.raises(ValueError, match="sensor_size"):
        T.ToFrame((1, 2, 3, 4), n_time_bins=2)
