"""Render the README's event-stream figures from the synthetic sets (no download).

    .venv/bin/python docs/make_figures.py        # writes docs/*.png and docs/*.gif
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from spikedrive.data.datasets import make_gestures, make_ndigits
from spikedrive.data.events import NMNIST_SENSOR_SIZE, plot_event_frames, read_aedat, read_nmnist, save_event_gif
from spikedrive.data.datasets.synthetic import GESTURE_SENSOR_SIZE

HERE = Path(__file__).resolve().parent


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = make_ndigits(Path(tmp) / "ndigits", n_per_class=1, n_test_per_class=1, seed=0)
        events = read_nmnist(next((root / "Train" / "3").glob("*.bin")))
        plot_event_frames(events, NMNIST_SENSOR_SIZE, 6, path=HERE / "ndigits_frames.png",
                          title="N-Digits '3': three saccades through the DVS simulator (red ON, blue OFF)")
        save_event_gif(events, NMNIST_SENSOR_SIZE, HERE / "ndigits.gif", n_frames=24, scale=4)

        groot = make_gestures(Path(tmp) / "gesture", seed=0)
        recording = sorted(groot.glob("*.aedat"))[0]
        gesture = read_aedat(recording)
        gesture = gesture[gesture["t"] < gesture["t"][0] + 2_000_000]
        plot_event_frames(gesture, GESTURE_SENSOR_SIZE, 6, path=HERE / "gesture_frames.png",
                          title=f"synthetic DVS128 Gesture ({recording.name}), first 2 s")
    print(f"wrote figures to {HERE}")


if __name__ == "__main__":
    main()
