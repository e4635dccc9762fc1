"""Look at event streams: a strip of frames (PNG/PDF via matplotlib) and an animated GIF.

ON events are drawn red, OFF events blue, on white; a pixel with both turns dark purple, and
the strip carries a legend saying so. Panels are titled with their time span from the start of
the stream ("0-50 ms", "1-2 s"), never absolute (DV writes Unix-epoch microseconds). The
figure is built on matplotlib's ``Figure`` with the Agg canvas and never through ``pyplot``, so
nothing needs a display and no global backend is switched; the GIF is written with Pillow.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import math

import numpy as np
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # matplotlib costs seconds to import: only the plotting calls load it
    from matplotlib.figure import Figure

from .representations import sensor_wh, to_frames

__all__ = ["POLARITY_COLOURS", "polarity_rgb", "span_titles", "plot_event_frames", "save_event_gif"]

#: The colour :func:`polarity_rgb` gives a pixel with events of one polarity only.
POLARITY_COLOURS = {"ON": (1.0, 0.0, 0.0), "OFF": (0.0, 0.0, 1.0)}


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


def _number(v: float, decimals: int) -> str:
    text = f"{v:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def span_titles(edges_us: np.ndarray) -> list[str]:
    """Titles ``"a-b unit"`` for the bins between ``edges_us`` ``[T + 1]`` (us from the start).

    The unit is ms for streams shorter than 1 s, s otherwise; decimals follow the bin width
    (two significant digits of it), trailing zeros dropped: ``"0-50 ms"``, ``"0.33-0.67 s"``.
    """
    edges = np.asarray(edges_us, dtype=np.float64)
    span = float(edges[-1] - edges[0]) if edges.size > 1 else 0.0
    unit, scale = ("ms", 1e3) if span < 1e6 else ("s", 1e6)
    v = edges / scale
    step = span / scale / max(edges.size - 1, 1)
    decimals = 0 if step <= 0 or step >= 10 else max(0, 1 - math.floor(math.log10(step)))
    return [f"{_number(a, decimals)}-{_number(b, decimals)} {unit}" for a, b in zip(v[:-1], v[1:])]


def plot_event_frames(
    events: np.ndarray,
    sensor_size: Sequence[int],
    n_frames: int = 6,
    *,
    path: str | PathLike[str] | None = None,
    title: str | None = None,
    panel_inches: float = 2.0,
    dpi: int = 100,
    t_origin: int | None = None,
) -> Figure:
    """Draw ``n_frames`` equal time bins of a stream side by side, with a polarity legend.

    Args:
        events: sorted event array.
        sensor_size: ``(W, H)``.
        n_frames: number of panels ``T``.
        path: if given, the figure is saved there (format from the suffix: .png, .pdf, .svg).
        title: figure title.
        panel_inches: width of one panel in inches.
        dpi: resolution for raster formats.
        t_origin: the time (us, as in ``events["t"]``) that titles count from; default the
            first event, so a slice of a recording reads "0-50 ms".

    Returns:
        the matplotlib ``Figure`` (Agg canvas, constrained layout so titles never overlap),
        one axis per panel titled with its span (:func:`span_titles`), and one figure legend
        (``fig.legends[0]``) with an ON and an OFF patch in :data:`POLARITY_COLOURS`.
    """
    frames = _frames(events, sensor_size, n_frames)
    w, h = sensor_wh(sensor_size)
    sat = None
    if frames.any():
        sat = float(np.percentile(frames[frames > 0], 99))
    # room for titles above and the legend below each panel row
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    fig = Figure(figsize=(panel_inches * n_frames, panel_inches * h / w + 1.0), dpi=dpi,
                 layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, n_frames, squeeze=False)[0]
    if len(events):
        t0, t1 = int(events["t"][0]), int(events["t"][-1]) + 1
    else:
        t0, t1 = 0, n_frames
    # to_frames bins [first, last] in equal parts; titles count from t_origin
    origin = t0 if t_origin is None else int(t_origin)
    edges = t0 - origin + (t1 - t0) * np.arange(n_frames + 1) / n_frames
    for ax, frame, label in zip(axes, frames, span_titles(edges)):
        ax.imshow(polarity_rgb(frame, sat), interpolation="nearest")
        ax.set_title(label, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [Patch(facecolor=c, edgecolor="none", label=k) for k, c in POLARITY_COLOURS.items()]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
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
