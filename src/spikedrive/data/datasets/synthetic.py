"""Synthetic datasets written in the real on-disk formats, so the real readers run end to end.

Each generator takes a ``root`` folder and a ``seed`` (same seed, byte-identical files) and
writes a small dataset in seconds:

* :func:`make_ndigits` - sklearn digits through N-MNIST saccades, N-MNIST ``.bin`` layout;
* :func:`make_gestures` - 11 hand-blob gestures, DVS128 Gesture AEDAT 3.1 + label CSVs;
* :func:`make_gen1` - cars and pedestrians, Gen1 ``_td.dat`` + ``_bbox.npy``;
* :func:`make_mvsec` - objects at known depths, MVSEC ``_data.hdf5`` + ``_gt.hdf5``.

All events come from :func:`spikedrive.data.events.simulator.simulate_dvs`.
"""

from __future__ import annotations

from .synthetic_gen1 import make_gen1
from .synthetic_gesture import GESTURE_SENSOR_SIZE, N_GESTURE_CLASSES, make_gestures
from .synthetic_mvsec import MVSEC_SEQUENCE_NAMES, make_mvsec
from .synthetic_ndigits import make_ndigits

__all__ = [
    "make_ndigits",
    "make_gestures",
    "make_gen1",
    "make_mvsec",
    "GESTURE_SENSOR_SIZE",
    "N_GESTURE_CLASSES",
    "MVSEC_SEQUENCE_NAMES",
]
