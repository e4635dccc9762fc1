"""A DVS simulator (image sequence -> events) and N-MNIST-style saccade sequences.

Pixel model (ESIM / v2e style, vectorised over pixels, one Python loop over frames):

* each pixel tracks log intensity ``L = log(I + log_eps)`` and a reference level ``ref``
  (initialised to ``L`` of the first frame, which therefore emits nothing);
* between two frames ``L`` is interpolated linearly in time; every time it crosses
  ``ref + C_on`` (ON) or ``ref - C_off`` (OFF) the pixel emits an event at the interpolated
  crossing time and ``ref`` moves by one threshold, so a large change gives several events per
  frame, each with its own intermediate timestamp;
* thresholds carry per-pixel mismatch: ``C = C_nominal + sigma * N(0, 1)`` (clipped below at
  ``min_threshold``), fixed for the whole recording;
* refractory period: a crossing less than ``refractory_us`` after the pixel's previous emitted
  event is dropped, while ``ref`` still moves past it (the change is lost, as in a pixel held in
  reset);
* background activity: ``noise_rate_hz`` events per pixel per second, Poisson in time, uniform
  over pixels, random polarity, merged into the stream (they do not move ``ref``).

Everything random is drawn from ``np.random.default_rng(seed)``: same inputs and seed, same events.
"""

from __future__ import annotations

import numpy as np

from .dtype import make_events

__all__ = ["simulate_dvs", "saccade_sequence", "shift_image", "shift_images"]


def _check_frames(frames: np.ndarray, timestamps_us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    frames = np.asarray(frames)
    if not np.issubdtype(frames.dtype, np.number):
        raise ValueError(f"frames: expected a numeric array, got dtype {frames.dtype}")
    ts = np.asarray(timestamps_us)
    if frames.ndim != 3 or frames.shape[0] < 1:
        raise ValueError(f"frames: expected shape [N, H, W] with N >= 1, got {frames.shape}")
    if not np.all(np.isfinite(frames)) or frames.min() < 0:
        raise ValueError("frames: expected finite, non-negative intensities (nominally in [0, 1])")
    if ts.shape != (frames.shape[0],):
        raise ValueError(f"timestamps_us: expected shape ({frames.shape[0]},), got {ts.shape}")
    if not np.issubdtype(ts.dtype, np.integer):
        if not np.all(ts == np.round(ts)):
            raise ValueError("timestamps_us: expected whole microseconds")
    ts = ts.astype(np.int64)
    if len(ts) > 1 and np.any(np.diff(ts) <= 0):
        raise ValueError("timestamps_us: expected strictly increasing times")
    if ts[0] < 0:
        raise ValueError(f"timestamps_us: expected non-negative times, got {ts[0]}")
    return frames, ts


def _crossings(
    l_prev: np.ndarray, l_cur: np.ndarray, ref: np.ndarray, thr: np.ndarray, sign: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Level crossings in one direction: ``(pixel, crossing number j >= 1, time fraction)``.

    Crossing ``j`` is at level ``ref + sign * j * thr``; its time fraction in ``(0, 1]`` follows
    from the straight line between ``l_prev`` and ``l_cur``. Moves ``ref`` (in place) past every
    crossing.
    """
    change = sign * (l_cur - ref)
    pix = np.flatnonzero(change >= thr)  # usually few pixels: work on those only
    if pix.size == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0)
    th = thr[pix]
    counts = np.floor(change[pix] / th).astype(np.int64)
    ref_pix = ref[pix]
    ref[pix] = ref_pix + sign * counts * th
    rep = np.repeat(pix, counts)
    # j = 1..n for each pixel, without a Python loop: position minus the pixel's start offset
    starts = np.cumsum(counts) - counts
    j = np.arange(rep.size, dtype=np.int64) - np.repeat(starts, counts) + 1
    level = np.repeat(ref_pix, counts) + sign * j * np.repeat(th, counts)
    lp = np.repeat(l_prev[pix], counts)
    frac = (level - lp) / (np.repeat(l_cur[pix], counts) - lp)
    return rep, j, np.minimum(np.maximum(frac, 0.0), 1.0)


def _refractory_keep(
    pix: np.ndarray, j: np.ndarray, t: np.ndarray, last_t: np.ndarray, refractory_us: int
) -> np.ndarray:
    """Greedy refractory filter; updates ``last_t`` (per pixel) in place.

    Candidates of one pixel are in increasing time with increasing ``j``, so processing all
    pixels' ``j``-th crossings together, ``j = 1, 2, ...``, keeps the per-pixel order while every
    step touches each pixel at most once (no repeated indices in the assignment).
    """
    keep = np.zeros(len(pix), bool)
    order = np.argsort(j, kind="stable")
    bounds = np.searchsorted(j[order], np.arange(1, int(j.max()) + 2))
    for r in range(len(bounds) - 1):
        sel = order[bounds[r] : bounds[r + 1]]
        p, tt = pix[sel], t[sel]
        ok = tt - last_t[p] >= refractory_us
        keep[sel] = ok
        last_t[p[ok]] = tt[ok]
    return keep


def simulate_dvs(
    frames: np.ndarray,
    timestamps_us: np.ndarray,
    *,
    threshold_pos: float = 0.2,
    threshold_neg: float = 0.2,
    threshold_sigma: float = 0.03,
    min_threshold: float = 0.01,
    refractory_us: int = 0,
    noise_rate_hz: float = 0.0,
    log_eps: float = 0.05,
    seed: int = 0,
) -> np.ndarray:
    """Turn an intensity video into DVS events.

    Args:
        frames: ``[N, H, W]`` linear intensities, nominally in ``[0, 1]``.
        timestamps_us: ``[N]`` strictly increasing frame times in µs.
        threshold_pos, threshold_neg: nominal ON / OFF contrast thresholds in log units.
        threshold_sigma: std of the per-pixel threshold mismatch (log units); 0 for ideal pixels.
        min_threshold: lower clip of the per-pixel thresholds.
        refractory_us: dead time after each emitted event, µs (0: none).
        noise_rate_hz: background activity per pixel (events / s), 0 for none.
        log_eps: offset in ``log(I + log_eps)``; bounds the contrast of dark pixels (smaller =
            more events from dark edges and noise).
        seed: seeds thresholds and noise.

    Returns:
        events (``EVENT_DTYPE``, sorted by ``t``) with ``x`` the column, ``y`` the row of
        ``frames``, in ``[timestamps_us[0], timestamps_us[-1]]``.
    """
    frames, ts = _check_frames(frames, timestamps_us)
    for name, v in (("threshold_pos", threshold_pos), ("threshold_neg", threshold_neg)):
        if not v > 0:
            raise ValueError(f"{name}: expected a positive contrast threshold, got {v!r}")
    for name, v in (("threshold_sigma", threshold_sigma), ("refractory_us", refractory_us),
                    ("noise_rate_hz", noise_rate_hz)):
        if not v >= 0:
            raise ValueError(f"{name}: expected a non-negative value, got {v!r}")
    if not log_eps > 0:
        raise ValueError(f"log_eps: expected a positive offset, got {log_eps!r}")
    if not min_threshold > 0:
        raise ValueError(f"min_threshold: expected a positive value, got {min_threshold!r}")

    n_frames, h, w = frames.shape
    n_pix = h * w
    rng = np.random.default_rng(seed)
    c_on = np.maximum(threshold_pos + threshold_sigma * rng.standard_normal(n_pix), min_threshold)
    c_off = np.maximum(threshold_neg + threshold_sigma * rng.standard_normal(n_pix), min_threshold)

    # log intensity frame by frame (float64), never the whole video at once
    def log_frame(k: int) -> np.ndarray:
        return np.log(frames[k].reshape(n_pix).astype(np.float64) + log_eps)

    l_cur = log_frame(0)
    ref = l_cur.copy()
    last_t = np.full(n_pix, np.iinfo(np.int64).min // 2, np.int64)
    chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for k in range(1, n_frames):
        l_prev, l_cur = l_cur, log_frame(k)
        t_prev, dt = ts[k - 1], ts[k] - ts[k - 1]
        # L moves monotonically between two frames, so a pixel crosses in one direction only
        for sign, thr, pol in ((1, c_on, 1), (-1, c_off, 0)):
            pix, j, frac = _crossings(l_prev, l_cur, ref, thr, sign)
            if pix.size == 0:
                continue
            # (ref has advanced past every crossing, emitted or not)
            t = t_prev + np.rint(frac * dt).astype(np.int64)
            if refractory_us > 0:
                keep = _refractory_keep(pix, j, t, last_t, int(refractory_us))
                pix, t = pix[keep], t[keep]
            chunks.append((t, pix, np.full(pix.size, pol, np.int8)))

    if noise_rate_hz > 0 and n_frames > 1:
        duration_s = (ts[-1] - ts[0]) * 1e-6
        n_noise = int(rng.poisson(noise_rate_hz * n_pix * duration_s))
        t_noise = rng.integers(ts[0], ts[-1] + 1, n_noise)
        pix_noise = rng.integers(0, n_pix, n_noise)
        pol_noise = rng.integers(0, 2, n_noise).astype(np.int8)
        chunks.append((t_noise, pix_noise, pol_noise))

    if not chunks:
        return make_events(np.zeros(0, np.int64), np.zeros(0, np.int16), np.zeros(0, np.int16),
                           np.zeros(0, np.int8))
    t_all = np.concatenate([c[0] for c in chunks])
    pix_all = np.concatenate([c[1] for c in chunks])
    p_all = np.concatenate([c[2] for c in chunks])
    # stable sort on time; ties keep generation order (frame, polarity, pixel, crossing), which
    # is deterministic
    order = np.argsort(t_all, kind="stable")
    pix_all = pix_all[order]
    return make_events(t_all[order], pix_all % w, pix_all // w, p_all[order])


# --------------------------------------------------------------------------------------------
# saccades
# --------------------------------------------------------------------------------------------
def _shift_matrices(n: int, shifts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear shift along one axis as matrices ``[K, n, n]``: ``out = M @ signal``.

    Row ``j`` of ``M[k]`` reads the source at ``j - shifts[k]``, splitting its weight between the
    two neighbouring samples; weights falling outside ``[0, n)`` are dropped (the caller fills
    them). Also returns the in-range weight per row ``[K, n]``.
    """
    src = np.arange(n)[None, :] - shifts[:, None]  # [K, n]
    lo = np.floor(src).astype(np.int64)
    frac = src - lo
    m = np.zeros((len(shifts), n, n))
    k_idx, j_idx = np.indices(src.shape)
    for idx, wgt in ((lo, 1.0 - frac), (lo + 1, frac)):
        ok = (idx >= 0) & (idx < n)
        m[k_idx[ok], j_idx[ok], idx[ok]] += wgt[ok]
    return m, m.sum(axis=2)


def shift_images(image: np.ndarray, dx: np.ndarray, dy: np.ndarray, fill: float = 0.0) -> np.ndarray:
    """``[K, H, W]``: ``image [H, W]`` translated by each ``(dx[k], dy[k])`` (right, down).

    Bilinear interpolation, separable, so the whole batch is two matrix products; pixels that
    come from outside the image take ``fill``.
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"image: expected shape [H, W], got {img.shape}")
    h, w = img.shape
    my, ry = _shift_matrices(h, np.atleast_1d(np.asarray(dy, dtype=np.float64)))
    mx, rx = _shift_matrices(w, np.atleast_1d(np.asarray(dx, dtype=np.float64)))
    out = my @ img @ mx.transpose(0, 2, 1)
    if fill:
        out += fill * (1.0 - ry[:, :, None] * rx[:, None, :])
    return out


def shift_image(image: np.ndarray, dx: float, dy: float, fill: float = 0.0) -> np.ndarray:
    """Translate ``image [H, W]`` by ``(dx, dy)`` pixels (right, down) with bilinear interpolation.

    Pixels that come from outside the image take ``fill``. Sub-pixel shifts blend neighbours, so
    an edge moving across a pixel changes its intensity gradually (as an optical image would).
    """
    return shift_images(image, np.array([dx]), np.array([dy]), fill)[0]


def saccade_sequence(
    image: np.ndarray,
    n_saccades: int = 3,
    *,
    amplitude_px: float = 2.0,
    saccade_duration_us: int = 100_000,
    frames_per_saccade: int = 20,
    fill: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Move a static image along N-MNIST-style saccades.

    N-MNIST (Orchard et al., 2015) moved the sensor in three straight saccades of about 100 ms
    tracing an isosceles triangle. Here the image goes from ``(0, 0)`` to
    ``(amplitude/2, amplitude)`` (down-right), to ``(amplitude, 0)`` (up-right) and back to
    ``(0, 0)``; more than three saccades keep going round the triangle. The motion is at constant
    speed within each saccade.

    Args:
        image: ``[H, W]`` intensities in ``[0, 1]`` (already placed on the sensor canvas).
        n_saccades: number of straight moves.
        amplitude_px: size of the triangle in pixels.
        saccade_duration_us: duration of each move, µs.
        frames_per_saccade: frames rendered per move (the simulator interpolates in between).
        fill: intensity entering from outside the image.

    Returns:
        ``(frames [N, H, W] float32, timestamps_us [N] int64)`` with
        ``N = n_saccades * frames_per_saccade + 1``, starting at t = 0.
    """
    if int(n_saccades) != n_saccades or n_saccades < 1:
        raise ValueError(f"n_saccades: expected a positive integer, got {n_saccades!r}")
    if int(frames_per_saccade) != frames_per_saccade or frames_per_saccade < 1:
        raise ValueError(f"frames_per_saccade: expected a positive integer, got {frames_per_saccade!r}")
    if not saccade_duration_us > 0:
        raise ValueError(f"saccade_duration_us: expected a positive duration, got {saccade_duration_us!r}")
    a = float(amplitude_px)
    vertices = np.array([[0.0, 0.0], [a / 2, a], [a, 0.0]])  # (dx, dy)
    n_frames = n_saccades * frames_per_saccade + 1
    i = np.arange(n_frames)
    s = np.minimum(i // frames_per_saccade, n_saccades - 1)  # the final frame ends the last move
    u = (i - s * frames_per_saccade)[:, None] / frames_per_saccade
    pos = (1 - u) * vertices[s % 3] + u * vertices[(s + 1) % 3]  # [N, 2] (dx, dy)
    frames = shift_images(image, pos[:, 0], pos[:, 1], fill).astype(np.float32)
    times = np.rint(np.arange(n_frames) * (saccade_duration_us / frames_per_saccade)).astype(np.int64)
    return frames, times
