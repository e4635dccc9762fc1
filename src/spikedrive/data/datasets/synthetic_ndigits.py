"""N-digits: scikit-learn's 8x8 digits moved by N-MNIST saccades, written as N-MNIST files.

No download: the digits ship with scikit-learn. Each digit is upscaled to ``digit_px`` (28, as
MNIST) and centred on a 34x34 canvas (N-MNIST's sensor size), moved along three saccades
(:func:`~spikedrive.data.events.simulator.saccade_sequence`, 100 ms each) and recorded by the
DVS simulator. The files use N-MNIST's binary format and directory layout::

    root/Train/<digit>/<id>.bin
    root/Test/<digit>/<id>.bin

with ``<id>`` the 5-digit, 1-based index of the sklearn sample (so a file says which image it
came from). Train and test come from disjoint sklearn samples.

Default size: 10 train + 2 test recordings per class (120 files, about 5,000 events each,
3 MB); about 1.5 s to generate on one CPU core.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np

from ..events.nmnist import NMNIST_SENSOR_SIZE, write_nmnist
from ..events.simulator import saccade_sequence, simulate_dvs
from .synthetic_common import child_rng, resize_bilinear

__all__ = ["make_ndigits"]


def _digit_canvas(image8: np.ndarray, digit_px: int, canvas: int) -> np.ndarray:
    """An sklearn digit (values 0..16) upscaled to ``digit_px`` and centred on a square canvas."""
    digit = np.clip(resize_bilinear(image8 / 16.0, digit_px, digit_px), 0.0, 1.0)
    out = np.zeros((canvas, canvas))
    off = (canvas - digit_px) // 2
    out[off : off + digit_px, off : off + digit_px] = digit
    return out


def make_ndigits(
    root: str | PathLike[str],
    n_per_class: int = 10,
    n_test_per_class: int = 2,
    *,
    seed: int = 0,
    digit_px: int = 28,
    amplitude_px: float = 2.0,
    saccade_duration_us: int = 100_000,
    frames_per_saccade: int = 20,
    noise_rate_hz: float = 0.1,
) -> Path:
    """Write an N-MNIST-format dataset of the 10 digit classes under ``root``.

    Args:
        root: output folder (created; existing files of the same names are overwritten).
        n_per_class: training recordings per digit.
        n_test_per_class: test recordings per digit, from other sklearn samples than training.
        seed: picks the samples and seeds every recording (same seed, byte-identical files).
        digit_px: size of the upscaled digit on the 34x34 canvas.
        amplitude_px: saccade triangle size in pixels.
        saccade_duration_us: duration of each of the three saccades.
        frames_per_saccade: rendered frames per saccade (the simulator interpolates between).
        noise_rate_hz: background activity per pixel.

    Returns:
        ``Path(root)``.
    """
    from sklearn.datasets import load_digits  # ships with scikit-learn: no download

    canvas = NMNIST_SENSOR_SIZE[0]
    if not 0 < digit_px <= canvas - 2 * int(np.ceil(amplitude_px)):
        raise ValueError(
            f"digit_px: expected 1..{canvas - 2 * int(np.ceil(amplitude_px))} so that the saccades "
            f"stay on the {canvas}x{canvas} sensor, got {digit_px}"
        )
    for name, v in (("n_per_class", n_per_class), ("n_test_per_class", n_test_per_class)):
        if int(v) != v or v < 0:
            raise ValueError(f"{name}: expected a non-negative integer, got {v!r}")
    digits = load_digits()
    root = Path(root)
    pick = np.random.default_rng(seed)
    for label in range(10):
        idx = pick.permutation(np.flatnonzero(digits.target == label))
        if len(idx) < n_per_class + n_test_per_class:
            raise ValueError(
                f"n_per_class + n_test_per_class: digit {label} has only {len(idx)} samples, "
                f"asked for {n_per_class + n_test_per_class}"
            )
        splits = {"Train": idx[:n_per_class], "Test": idx[n_per_class : n_per_class + n_test_per_class]}
        for split, chosen in splits.items():
            folder = root / split / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            for i in chosen:
                frames, ts = saccade_sequence(
                    _digit_canvas(digits.images[i], digit_px, canvas),
                    3,
                    amplitude_px=amplitude_px,
                    saccade_duration_us=saccade_duration_us,
                    frames_per_saccade=frames_per_saccade,
                )
                sim_seed = int(child_rng(seed, i).integers(2**31))
                events = simulate_dvs(frames, ts, noise_rate_hz=noise_rate_hz, seed=sim_seed)
                write_nmnist(folder / f"{i + 1:05d}.bin", events)
    return root
