"""Look at event streams: a strip of frames (PNG/PDF via matplotlib) and an animated GIF.

ON events are drawn red, OFF events blue, on white; a pixel with both turns dark purple. The
figure is built on matplotlib's ``Figure`` with the Agg canvas and never through ``pyplot``, so
nothing needs a display and no global backend is switched; the GIF is written with Pillow.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .representations import sensor_wh, to_frames

__all__ = ["polarity_rgb", "plot_event_frames", "save_event_gif"]


def polarity_rgb(frame: np.ndarray, saturation: float | None = None) -> np.ndarray:
    """Colour one polarity frame ``[2, H, W]`` (OFF, ON counts) as an RGB image.

    Args:
        frame: ``[2, H, W]`` counts (channel 0 OFF, 1 ON).
        saturation: the count drawn at full colour; default the 99th percentile of the non-zero
            counts, so a few hot pixels do not wash everything else out.

    Returns:
        ``[H, W, 3]`` uint8.
    """
    frame = np.asarray(frame, dtype=np.float64)
    if frame.ndim != 3 or frame.shape[0] != 2:
        raise ValueError(f"frame: expected shape [2, H, W], got {frame.shape}")
    if saturation is None:
        nz = frame[frame > 0]
        saturation = float(np.percentile(nz, 99)) if nz.size else 1.0
    if not saturation > 0:
        raise ValueError(f"saturation: expected a positive count, got {saturation!r}")
    off = np.clip(frame[0] / saturation, 0.0, 1.0)
    on = np.clip(frame[1] / saturation, 0.0, 1.0)
    # subtractive on white: ON removes green and blue (-> red), OFF removes red and green (-> blue)
    rgb = np.stack([1.0 - off, 1.0 - np.clip(on + off, 0.0, 1.0), 1.0 - on], axis=-1)
    return np.rint(rgb * 255).astype(np.uint8)


def _frames(events: np.ndarray, sensor_size: Sequence[int], n_frames: int) -> np.ndarray:
    w, h = sensor_wh(sensor_size)
    if len(events) == 0:
        return np.zeros((n_frames, 2, h, w), np.float32)
    return to_frames(events, sensor_size, n_time_bins=n_frames)


def plot_event_frames(
    events: np.ndarray,
    sensor_size: Sequence[int],
    n_frames: int = 6,
    *,
    path: str | PathLike[str] | None = None,
    title: str | None = None,
    panel_inches: float = 2.0,
    dpi: int = 100,
) -> Figure:
    """Draw ``n_frames`` equal time bins of a stream side by side.

    Args:
        events: sorted event array.
        sensor_size: ``(W, H)``.
        n_frames: number of panels ``T``.
        path: if given, the figure is saved there (format from the suffix: .png, .pdf, .svg).
        title: figure title.
        panel_inches: width of one panel in inches.
        dpi: resolution for raster formats.

    Returns:
        the matplotlib ``Figure`` (Agg canvas), one axis per panel titled with its time span.
    """
    frames = _frames(events, sensor_size, n_frames)
    w, h = sensor_wh(sensor_size)
    sat = None
    if frames.any():
        sat = float(np.percentile(frames[frames > 0], 99))
    fig = Figure(figsize=(panel_inches * n_frames, panel_inches * h / w + 0.6), dpi=dpi)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, n_frames, squeeze=False)[0]
    if len(events):
        t0, t1 = int(events["t"][0]), int(events["t"][-1]) + 1
    else:
        t0, t1 = 0, n_frames
    edges = t0 + (t1 - t0) * np.arange(n_frames + 1) / n_frames
    for i, ax in enumerate(axes):
        ax.imshow(polarity_rgb(frames[i], sat), interpolation="nearest")
        ax.set_title(f"{edges[i] / 1e3:.1f}-{edges[i + 1] / 1e3:.1f} ms", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)
    return fig


def save_event_gif(
    events: np.ndarray,
    sensor_size: Sequence[int],
    path: str | PathLike[str],
    n_frames: int = 20,
    *,
    fps: float = 10.0,
    scale: int = 4,
) -> Path:
    """Write the stream as an animated GIF of ``n_frames`` equal time bins.

    Args:
        events: sorted event array.
        sensor_size: ``(W, H)``.
        path: output file (.gif).
        n_frames: number of GIF frames.
        fps: playback frames per second.
        scale: integer upscaling (nearest neighbour) so that small sensors stay visible.

    Returns:
        the path written.
    """
    from PIL import Image  # Pillow ships with matplotlib; imported here to keep imports light

    if int(scale) != scale or scale < 1:
        raise ValueError(f"scale: expected a positive integer, got {scale!r}")
    if not fps > 0:
        raise ValueError(f"fps: expected a positive rate, got {fps!r}")
    frames = _frames(events, sensor_size, n_frames)
    sat = float(np.percentile(frames[frames > 0], 99)) if frames.any() else None
    images = []
    for f in frames:
        rgb = polarity_rgb(f, sat).repeat(scale, axis=0).repeat(scale, axis=1)
        images.append(Image.fromarray(rgb))
    path = Path(path)
    images[0].save(
        path, save_all=True, append_images=images[1:], duration=int(round(1000 / fps)), loop=0
    )
    return path
