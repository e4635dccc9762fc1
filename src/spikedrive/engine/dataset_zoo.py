"""Every image and event dataset by name: ``dataset: <name>`` with ``data_root:`` in a recipe.

Each builder is called as ``builder(data_root, **dataset_kwargs)`` and returns
``(train, val, test)``; ``val`` is for model selection, ``test`` is never used for it. The
builders live in :mod:`spikedrive.data.images`; this module only names them.

=============  ==========================================================  ===========================
name           on-disk layout under ``data_root``                          generator (small, seeded)
=============  ==========================================================  ===========================
cifar10        cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}  ``make_cifar``
cifar100       cifar-100-python/{train,test,meta}                          ``make_cifar(variant="cifar100")``
imagenet       train/<class>/*, val/<class>/*                              ``make_imagefolder``
coco           annotations/instances_{train,val}2017.json, train2017/, val2017/  ``make_coco``
nmnist         Train/<digit>/*.bin, Test/<digit>/*.bin                     ``make_ndigits``
gesture        user<NN>_<lighting>.aedat + _labels.csv, trials_to_*.txt     ``make_gestures``
cifar10dvs     <class>/cifar10_<class>_<i>.aedat                           (none; write_aedat2)
ncars          n-cars_{train,test}/{background,cars}/*.dat                 (none; write_prophesee_dat)
shd            shd_train.h5, shd_test.h5                                   (none; write_shd)
gen1           {train,val,test}/<name>_td.dat + <name>_bbox.npy            ``make_gen1``
mvsec          <sequence>_data.hdf5 + <sequence>_gt.hdf5                   ``make_mvsec``
=============  ==========================================================  ===========================
"""

from __future__ import annotations

from typing import Any

from torch.utils.data import Dataset

from ..data.images import (
    build_cifar, build_cifar10dvs, build_coco, build_gen1, build_gesture, build_imagenet, build_mvsec,
    build_ncars, build_nmnist, build_shd,
)
from .data import register_dataset

__all__ = ["ZOO"]

Splits = tuple[Dataset, Dataset, Dataset]


def _cifar10(root: Any, **kwargs: Any) -> Splits:
    return build_cifar(root, variant="cifar10", **kwargs)


def _cifar100(root: Any, **kwargs: Any) -> Splits:
    return build_cifar(root, variant="cifar100", **kwargs)


ZOO = {
    "cifar10": _cifar10,
    "cifar100": _cifar100,
    "imagenet": build_imagenet,
    "coco": build_coco,
    "nmnist": build_nmnist,
    "gesture": build_gesture,
    "cifar10dvs": build_cifar10dvs,
    "ncars": build_ncars,
    "shd": build_shd,
    "gen1": build_gen1,
    "mvsec": build_mvsec,
}

for _name, _builder in ZOO.items():
    register_dataset(_name, _builder, checks_root=True)
