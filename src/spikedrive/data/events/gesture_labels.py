"""DVS128 Gesture label files, ``user<NN>_<lighting>_labels.csv``.

One header line ``class,startTime_usec,endTime_usec`` and one row per gesture: the class
(1..11, 11 = "other gestures") and the time span in us on the clock of the matching
``user<NN>_<lighting>.aedat`` recording. A sample is the events with
``startTime_usec <= t < endTime_usec`` (as in SpikingJelly's split).
"""

from __future__ import annotations

import re

import numpy as np

from ._records import PathLike, as_path
from .errors import CorruptFileError

__all__ = [
    "GESTURE_LABEL_DTYPE",
    "DVS_GESTURE_CLASSES",
    "read_dvs_gesture_labels",
    "write_dvs_gesture_labels",
]

#: One row per gesture: ``label`` as in the file (1..11), ``t_start``/``t_end`` in us.
GESTURE_LABEL_DTYPE = np.dtype([("label", "<i4"), ("t_start", "<i8"), ("t_end", "<i8")])

DVS_GESTURE_CLASSES = (
    "hand clapping", "right hand wave", "left hand wave", "right arm clockwise",
    "right arm counter-clockwise", "left arm clockwise", "left arm counter-clockwise",
    "arm roll", "air drums", "air guitar", "other gestures",
)

_HEADER = "class,startTime_usec,endTime_usec"
_SPLIT = re.compile(r"[,\t ]+")


def read_dvs_gesture_labels(csv_path: PathLike) -> np.ndarray:
    """Read a ``*_labels.csv`` file into ``GESTURE_LABEL_DTYPE`` rows ``[K]``.

    Commas, tabs or spaces separate fields (the release uses commas); blank lines are skipped.

    Raises:
        CorruptFileError (a ValueError): a row without three integers; names the file, the
            line and its byte offset.
    """
    path = as_path(csv_path)
    rows: list[tuple[int, int, int]] = []
    offset = 0
    with open(path, "rb") as f:
        data = f.read()
    for lineno, line in enumerate(data.splitlines(keepends=True), start=1):
        text = line.decode("latin-1").strip()
        start = offset
        offset += len(line)
        if not text or (lineno == 1 and text.lower().startswith("class")):
            continue
        fields = [s for s in _SPLIT.split(text) if s]
        try:
            if len(fields) != 3:
                raise ValueError
            label, t0, t1 = (int(v) for v in fields)
        except ValueError:
            raise CorruptFileError(
                path, start, f"bad label row (line {lineno}: {text[:60]!r}; expected class,start,end)"
            ) from None
        rows.append((label, t0, t1))
    return np.array(rows, dtype=GESTURE_LABEL_DTYPE)


def write_dvs_gesture_labels(csv_path: PathLike, labels: np.ndarray) -> None:
    """Write ``GESTURE_LABEL_DTYPE`` rows ``[K]`` as a DVS128 Gesture ``*_labels.csv`` file.

    Raises ValueError if ``labels`` lacks the fields ``label, t_start, t_end``.
    """
    names = getattr(getattr(labels, "dtype", None), "names", None) or ()
    if any(n not in names for n in GESTURE_LABEL_DTYPE.names):
        raise ValueError(
            f"write_dvs_gesture_labels: labels need fields {GESTURE_LABEL_DTYPE.names}, got {names}"
        )
    lines = [_HEADER] + [f"{int(r['label'])},{int(r['t_start'])},{int(r['t_end'])}" for r in labels]
    with open(csv_path, "w", newline="") as f:
        f.write("\n".join(lines) + "\n")
