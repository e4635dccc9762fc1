"""Synthetic DVS128 Gesture: hand-like blobs performing the 11 gestures, in the release's layout.

DVS128 Gesture holds one AEDAT 3.1 recording per subject and lighting, each with all gestures
in sequence, a label file of their spans, and the train / test trial lists::

    root/user01_fluorescent.aedat
    root/user01_fluorescent_labels.csv     class,startTime_usec,endTime_usec  (class 1..11)
    root/trials_to_train.txt               user01_fluorescent.aedat, ...
    root/trials_to_test.txt

The synthetic subject faces a 128x128 sensor over a faint static background; "hands" are
textured ellipses (bright, about 20x26 px) that fade in, move, and fade out. The subject's right
hand appears on the image's left (the camera looks at the subject). Motions, one per class of
:data:`~spikedrive.data.events.gesture_labels.DVS_GESTURE_CLASSES`:

1 clap (two hands meet and part) | 2 / 3 right / left hand wave (side-to-side at head height) |
4 / 5 right arm clockwise / counter-clockwise circle | 6 / 7 the same with the left arm |
8 arm roll (two hands circling each other) | 9 air drums (two hands beating in antiphase) |
10 air guitar (strumming right hand, still left hand) | 11 other (a random smooth path).

Each trial jitters amplitude, speed, position, size and brightness. Events come from the DVS
simulator (with mismatch, a 100 us refractory period and background noise).

Default size: users 1-2 for training and 3 for testing, one lighting ("fluorescent"), every
class once per recording, 1 s per gesture after a 0.2 s rest (3 recordings of 13.2 s, about
600k events each, 16 MB in all); about 5 s to generate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from os import PathLike
from pathlib import Path

import numpy as np

from ..events.aedat31 import write_aedat31
from ..events.gesture_labels import (
    DVS_GESTURE_CLASSES,
    GESTURE_LABEL_DTYPE,
    write_dvs_gesture_labels,
)
from ..events.simulator import simulate_dvs
from .synthetic_common import (
    child_rng,
    ellipse_alpha,
    frame_times,
    sample_wrapped,
    value_noise,
)

__all__ = ["make_gestures", "GESTURE_SENSOR_SIZE", "N_GESTURE_CLASSES"]

GESTURE_SENSOR_SIZE = (128, 128)
N_GESTURE_CLASSES = len(DVS_GESTURE_CLASSES)  # 11, "other gestures" last
LIGHTINGS = ("fluorescent", "fluorescent_led", "lab", "led", "natural")

Path2D = Callable[[np.ndarray], list[tuple[np.ndarray, np.ndarray]]]


def _trajectory(label: int, rng: np.random.Generator) -> Path2D:
    """Hand centres as a function of the phase ``u in [0, 1]`` (arrays ``[F]``), per class."""
    amp = rng.uniform(0.85, 1.15)
    freq = rng.uniform(0.85, 1.15)
    ox, oy = rng.uniform(-4, 4, 2)
    two_pi = 2 * np.pi
    right_x, left_x, cx = 42 + ox, 86 + ox, 64 + ox  # subject's right hand on the image left

    def fn(u: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        one = np.ones_like(u)  # a still coordinate as a track
        if label == 1:  # clap
            half = 10 + 9 * amp * (1 + np.cos(two_pi * 3 * freq * u))
            return [(cx - half, (70 + oy) * one), (cx + half, (70 + oy) * one)]
        if label in (2, 3):  # wave
            x0 = right_x if label == 2 else left_x
            return [(x0 + 12 * amp * np.sin(two_pi * 3 * freq * u),
                     42 + oy + 3 * np.cos(two_pi * 6 * freq * u))]
        if label in (4, 5, 6, 7):  # arm circles: increasing angle is clockwise on screen (y down)
            x0 = right_x if label in (4, 5) else left_x
            direction = 1.0 if label in (4, 6) else -1.0
            th = direction * two_pi * 1.5 * freq * u
            r = 18 * amp
            return [(x0 + r * np.cos(th), 62 + oy + r * np.sin(th))]
        if label == 8:  # arm roll
            th = two_pi * 3 * freq * u
            r = 9 * amp
            return [(cx + r * np.cos(th), 72 + oy + r * np.sin(th)),
                    (cx - r * np.cos(th), 72 + oy - r * np.sin(th))]
        if label == 9:  # air drums
            s = 10 * amp * np.sin(two_pi * 4 * freq * u)
            return [((cx - 18) * one, 78 + oy + s), ((cx + 18) * one, 78 + oy - s)]
        if label == 10:  # air guitar
            return [((right_x + 6) * one, 78 + oy + 10 * amp * np.sin(two_pi * 5 * freq * u)),
                    (left_x + 2 * np.sin(two_pi * freq * u), (56 + oy) * one)]
        # other: a random smooth path, two random sinusoids per axis
        a = rng.uniform(6, 14, (2, 2))
        f = rng.uniform(0.5, 2.5, (2, 2))
        ph = rng.uniform(0, two_pi, (2, 2))
        xs = cx + sum(a[0, k] * np.sin(two_pi * f[0, k] * u + ph[0, k]) for k in range(2))
        ys = 64 + oy + sum(a[1, k] * np.sin(two_pi * f[1, k] * u + ph[1, k]) for k in range(2))
        return [(xs, ys)]

    if label == N_GESTURE_CLASSES:
        # draw the random path's parameters now, so the closure is a pure function of u
        frozen = fn(np.linspace(0, 1, 2001))
        grid = np.linspace(0, 1, 2001)
        return lambda u: [(np.interp(u, grid, x), np.interp(u, grid, y)) for x, y in frozen]
    return fn


def _render_gesture(background: np.ndarray, label: int, n_frames: int,
                    rng: np.random.Generator) -> np.ndarray:
    """Frames ``[n_frames, H, W]`` of one gesture; the first and last equal the background."""
    h, w = background.shape
    u = np.linspace(0.0, 1.0, n_frames)
    hands = _trajectory(label, rng)(u)
    # fade in and out over the first and last 12 %: the hand enters and leaves gently
    fade = np.clip(np.minimum(u, 1 - u) / 0.12, 0.0, 1.0)
    looks = []
    for _ in hands:
        rx, ry = rng.uniform(8, 12), rng.uniform(11, 15)
        looks.append((rx, ry, value_noise((32, 32), 5.0, rng), rng.uniform(0.6, 0.85)))
    frames = np.empty((n_frames, h, w))
    xs, ys = np.arange(w) + 0.5, np.arange(h) + 0.5
    for k in range(n_frames):
        img = background.copy()
        for (hx, hy), (rx, ry, tex, bright) in zip(hands, looks):
            # draw inside the hand's bounding box only (plus the soft edge)
            c0, c1 = max(int(hx[k] - rx) - 2, 0), min(int(hx[k] + rx) + 3, w)
            r0, r1 = max(int(hy[k] - ry) - 2, 0), min(int(hy[k] + ry) + 3, h)
            if c1 <= c0 or r1 <= r0:
                continue
            alpha = fade[k] * ellipse_alpha(r1 - r0, c1 - c0, hx[k] - c0, hy[k] - r0, rx, ry)
            tex_k = sample_wrapped(tex, xs[c0:c1] - hx[k], ys[r0:r1] - hy[k])
            look = np.clip(bright + 0.4 * (tex_k - 0.5), 0.0, 1.0)
            img[r0:r1, c0:c1] = img[r0:r1, c0:c1] * (1 - alpha) + look * alpha
        frames[k] = img
    return frames


def make_gestures(
    root: str | PathLike[str],
    train_users: Sequence[int] = (1, 2),
    test_users: Sequence[int] = (3,),
    lightings: Sequence[str] = ("fluorescent",),
    *,
    seed: int = 0,
    classes: Sequence[int] = tuple(range(1, N_GESTURE_CLASSES + 1)),
    gesture_us: int = 1_000_000,
    gap_us: int = 200_000,
    fps: int = 200,
    noise_rate_hz: float = 0.2,
) -> Path:
    """Write a DVS128-Gesture-format dataset under ``root``.

    Args:
        root: output folder (the release's ``DvsGesture/``).
        train_users, test_users: subject numbers (``userNN``); their recordings are listed in
            ``trials_to_train.txt`` / ``trials_to_test.txt``.
        lightings: one recording per user and lighting, named like the release's.
        seed: seeds every recording (same seed, byte-identical files).
        classes: the gestures (1..11) in each recording, performed in this order.
        gesture_us: duration of each gesture; ``gap_us``: rest before each gesture.
        fps: rendered frames per second during gestures.
        noise_rate_hz: background activity per pixel.

    Returns:
        ``Path(root)``.
    """
    if set(train_users) & set(test_users):
        raise ValueError(f"train_users, test_users: must not overlap, got {train_users} and {test_users}")
    bad = [c for c in classes if not 1 <= int(c) <= N_GESTURE_CLASSES]
    if bad or not classes:
        raise ValueError(f"classes: expected a non-empty list of 1..{N_GESTURE_CLASSES}, got {classes}")
    unknown = [lt for lt in lightings if lt not in LIGHTINGS]
    if unknown or not lightings:
        raise ValueError(f"lightings: expected names from {LIGHTINGS}, got {lightings}")
    if gesture_us <= 0 or gap_us <= 0 or fps <= 0:
        raise ValueError(
            f"gesture_us, gap_us, fps: expected positive values, got {gesture_us}, {gap_us}, {fps}"
        )
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    width, height = GESTURE_SENSOR_SIZE
    gesture_ts = frame_times(gesture_us, fps)
    n_frames = len(gesture_ts)
    lists: dict[str, list[str]] = {"train": [], "test": []}
    for split, users in (("train", train_users), ("test", test_users)):
        for user in users:
            for lighting in lightings:
                rng = child_rng(seed, int(user), LIGHTINGS.index(lighting))
                background = 0.1 + 0.15 * value_noise((height, width), 16.0, rng)
                chunks, rows, t = [], [], 0
                for label in classes:
                    # one simulation per gap + gesture: both ends show the bare background, so
                    # the pixel state carries over unchanged between segments
                    frames = _render_gesture(background, int(label), n_frames, rng)
                    frames = np.concatenate([frames[:1], frames])
                    ts = t + np.concatenate([[0], gap_us + gesture_ts])
                    chunks.append(simulate_dvs(frames, ts, refractory_us=100,
                                               noise_rate_hz=noise_rate_hz,
                                               seed=int(rng.integers(2**31))))
                    rows.append((int(label), t + gap_us, t + gap_us + gesture_us))
                    t += gap_us + gesture_us
                name = f"user{int(user):02d}_{lighting}"
                write_aedat31(root / f"{name}.aedat", np.concatenate(chunks))
                write_dvs_gesture_labels(root / f"{name}_labels.csv",
                                         np.array(rows, dtype=GESTURE_LABEL_DTYPE))
                lists[split].append(f"{name}.aedat")
    for split, names in lists.items():
        (root / f"trials_to_{split}.txt").write_text("".join(n + "\n" for n in names))
    return root
