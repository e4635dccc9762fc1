"""Event plots: a PNG strip and an animated GIF are written without a display."""

from __future__ import annotations

import numpy as np
import pytest

from spikedrive.data.events.dtype import EVENT_DTYPE, make_events
from spikedrive.data.events.plot import plot_event_frames, polarity_rgb, save_event_gif


def _events() -> np.ndarray:
    rng = np.random.default_rng(0)
    n = 500
    t = np.sort(rng.integers(0, 100_000, n))
    return make_events(t, rng.integers(0, 20, n), rng.integers(0, 10, n), rng.integers(0, 2, n))


def test_polarity_rgb_colours():
    frame = np.zeros((2, 1, 3))
    frame[1, 0, 0] = 4  # ON only -> red
    frame[0, 0, 1] = 4  # OFF only -> blue
    rgb = polarity_rgb(frame, saturation=4)
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 3, 3)
    assert rgb[0, 0].tolist() == [255, 0, 0]
    assert rgb[0, 1].tolist() == [0, 0, 255]
    assert rgb[0, 2].tolist() == [255, 255, 255]
    with pytest.raises(ValueError, match="frame"):
        polarity_rgb(np.zeros((3, 2, 2)))


def test_plot_event_frames_writes_png(tmp_path):
    path = tmp_path / "frames.png"
    fig = plot_event_frames(_events(), (20, 10), n_frames=4, path=path, title="test")
    assert len(fig.axes) == 4
    assert path.stat().st_size > 1000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_save_event_gif(tmp_path):
    from PIL import Image

    path = save_event_gif(_events(), (20, 10), tmp_path / "ev.gif", n_frames=5, fps=5, scale=3)
    assert path.stat().st_size > 100
    with Image.open(path) as im:
        assert im.format == "GIF" and im.n_frames == 5 and im.size == (60, 30)


def test_plots_accept_an_empty_stream(tmp_path):
    empty = np.zeros(0, EVENT_DTYPE)
    plot_event_frames(empty, (8, 8), n_frames=2, path=tmp_path / "e.png")
    save_event_gif(empty, (8, 8), tmp_path / "e.gif", n_frames=2)
    assert (tmp_path / "e.png").stat().st_size > 0 and (tmp_path / "e.gif").stat().st_size > 0
