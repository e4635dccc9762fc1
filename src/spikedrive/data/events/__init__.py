"""Event streams: readers and writers for the real camera formats, representations, event-wise
operations, a DVS simulator and plots.

Events are NumPy structured arrays ``t`` (int64 µs), ``x``, ``y`` (int16), ``p`` (int8, 0/1),
sorted by ``t`` (Tonic's convention). Readers are named ``read_<format>`` (``iter_<format>``
streams a large file in chunks), writers ``write_<format>``; a truncated or corrupt file raises
:class:`CorruptFileError` (a ``ValueError``) naming the file and the byte offset, and a file of
another format :class:`WrongFormatError` (a ``CorruptFileError``) naming both formats, found by
:func:`sniff_format`. The sensor size a file states is asked for apart from its events:
:func:`sensor_size_of` for any file, or ``<format>_sensor_size`` (see :mod:`.sensor_size`).
"""

from .aedat import aedat_sensor_size, read_aedat, read_aedat_header
from .aedat2 import iter_aedat2, read_aedat2, write_aedat2
from .aedat4 import read_aedat4
from .aedat31 import iter_aedat31, read_aedat31, write_aedat31
from .augment import crop, denoise, downsample, flip, time_jitter, time_slice
from .dtype import EVENT_DTYPE, as_events, check_events, empty_events, is_sorted, make_events
from .errors import CorruptFileError, WrongFormatError
from .gen1 import BOX_DTYPE, GEN1_CLASSES, read_gen1_boxes, write_gen1_boxes
from .gesture_labels import DVS_GESTURE_CLASSES, read_dvs_gesture_labels, write_dvs_gesture_labels
from .mvsec import (
    MVSEC_SENSOR_SIZE, MVSECRecording, mvsec_sensor_size, read_mvsec_hdf5, write_mvsec_hdf5,
)
from .nmnist import NMNIST_SENSOR_SIZE, iter_nmnist, nmnist_sensor_size, read_nmnist, write_nmnist
from .plot import plot_event_frames, save_event_gif
from .prophesee import (
    GEN1_SENSOR_SIZE, iter_prophesee_dat, prophesee_dat_sensor_size, read_prophesee_dat,
    write_prophesee_dat,
)
from .prophesee_npy import read_prophesee_npy, write_prophesee_npy
from .representations import (
    to_cumulative_frames, to_event_histogram, to_frames, to_time_surface, to_voxel_grid,
)
from .sensor_size import sensor_size_of
from .shd import SHDData, read_shd, shd_sensor_size, write_shd
from .signature import sniff_format
from .simulator import saccade_sequence, simulate_dvs
from .transforms import (
    CenterCrop, Compose, CropBox, Denoise, Downsample, Flip, RandomFlip, TimeJitter, TimeSlice,
    ToCumulativeFrames, ToEventHistogram, ToFrame, ToTimeSurface, ToVoxelGrid,
)

__all__ = [
    "EVENT_DTYPE", "make_events", "empty_events", "check_events", "as_events", "is_sorted", "CorruptFileError",
    "WrongFormatError", "sniff_format", "sensor_size_of", "aedat_sensor_size", "nmnist_sensor_size",
    "prophesee_dat_sensor_size", "mvsec_sensor_size", "shd_sensor_size",
    "read_nmnist", "iter_nmnist", "write_nmnist", "NMNIST_SENSOR_SIZE",
    "read_aedat", "read_aedat_header", "read_aedat2", "iter_aedat2", "write_aedat2",
    "read_aedat31", "iter_aedat31", "write_aedat31", "read_aedat4",
    "read_dvs_gesture_labels", "write_dvs_gesture_labels", "DVS_GESTURE_CLASSES",
    "read_prophesee_dat", "iter_prophesee_dat", "write_prophesee_dat", "GEN1_SENSOR_SIZE",
    "read_prophesee_npy", "write_prophesee_npy",
    "read_gen1_boxes", "write_gen1_boxes", "BOX_DTYPE", "GEN1_CLASSES",
    "read_mvsec_hdf5", "write_mvsec_hdf5", "MVSECRecording", "MVSEC_SENSOR_SIZE",
    "read_shd", "write_shd", "SHDData",
    "to_frames", "to_event_histogram", "to_voxel_grid", "to_time_surface", "to_cumulative_frames",
    "denoise", "crop", "downsample", "flip", "time_jitter", "time_slice",
    "Compose", "ToFrame", "ToEventHistogram", "ToVoxelGrid", "ToTimeSurface", "ToCumulativeFrames",
    "Denoise", "CenterCrop", "CropBox", "Downsample", "Flip", "RandomFlip", "TimeJitter", "TimeSlice",
    "simulate_dvs", "saccade_sequence", "plot_event_frames", "save_event_gif",
]
