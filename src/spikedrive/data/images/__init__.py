"""Image datasets from their real layouts (CIFAR pickles, ImageFolder, COCO JSON), their
transforms (timm for classification, torchvision ``transforms.v2`` for boxes), and the
``(train, val, test)`` builders of every image and event dataset the engine registers by name."""

from .builders import IMAGENET_LAYOUT, build_cifar, build_coco, build_imagenet
from .cifar import CIFAR_LAYOUTS, CIFAR_STATS, load_cifar
from .coco import COCO_LAYOUT, CocoDetectionSet, detection_collate
from .event_frames import (
    EVENT_LAYOUTS, ChannelFrames, Gen1Target, build_cifar10dvs, build_gen1, build_gesture, build_mvsec,
    build_ncars, build_nmnist, build_shd, time_major_dense_collate, time_major_detection_collate,
)
from .folder import load_image_folder, load_rgb
from .splits import SplitView, carve_val, require_root
from .transforms import classification_transforms, detection_transforms

__all__ = [
    "load_cifar", "CIFAR_LAYOUTS", "CIFAR_STATS", "load_image_folder", "load_rgb",
    "CocoDetectionSet", "detection_collate", "COCO_LAYOUT", "IMAGENET_LAYOUT",
    "classification_transforms", "detection_transforms",
    "require_root", "carve_val", "SplitView",
    "build_cifar", "build_imagenet", "build_coco",
    "EVENT_LAYOUTS", "build_nmnist", "build_gesture", "build_cifar10dvs", "build_ncars", "build_shd",
    "build_gen1", "build_mvsec", "ChannelFrames", "Gen1Target",
    "time_major_detection_collate", "time_major_dense_collate",
]
