"""Datasets reading the real on-disk layouts (``root=``), and synthetic generators that write
small datasets in those same formats so demos and tests run the real readers end to end."""

from .event_datasets import CIFAR10DVS, MVSEC, NCARS, NMNIST, SHD, DVSGesture, EventDataset, Gen1
from .synthetic import make_gen1, make_gestures, make_mvsec, make_ndigits

__all__ = [
    "EventDataset", "NMNIST", "DVSGesture", "CIFAR10DVS", "NCARS", "SHD", "Gen1", "MVSEC",
    "make_ndigits", "make_gestures", "make_gen1", "make_mvsec",
]
from .synthetic_coco import make_coco
from .synthetic_images import make_cifar, make_imagefolder

__all__ += ["make_cifar", "make_imagefolder", "make_coco"]
