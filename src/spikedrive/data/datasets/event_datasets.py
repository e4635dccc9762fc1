"""All event-camera datasets that read real on-disk layouts, in one import."""

from .event_base import EventDataset
from .event_classification import CIFAR10DVS, NCARS, NMNIST, SHD, DVSGesture
from .event_depth import MVSEC
from .event_detection import Gen1

__all__ = ["EventDataset", "NMNIST", "DVSGesture", "CIFAR10DVS", "NCARS", "SHD", "Gen1", "MVSEC"]
