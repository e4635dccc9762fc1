"""Event-camera classification datasets read from their released layouts.

Each item is ``(events, label)``: ``events`` an ``EVENT_DTYPE`` array ``[N]`` (t in us) passed
through ``transform``, ``label`` an int passed through ``target_transform``.
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..events._window import time_window
from ..events.aedat import read_aedat
from ..events.aedat31 import read_aedat31
from ..events.dtype import EVENT_DTYPE, is_sorted
from ..events.gesture_labels import DVS_GESTURE_CLASSES, read_dvs_gesture_labels
from ..events.mvsec import seconds_to_us
from ..events.nmnist import NMNIST_SENSOR_SIZE, read_nmnist
from ..events.prophesee import read_prophesee_dat
from ..events.shd import SHD_CHANNELS, read_shd_sample, shd_length
from .download import download_url, extract_archive
from .event_base import EventDataset, Transform, first_existing

__all__ = ["NMNIST", "DVSGesture", "CIFAR10DVS", "NCARS", "SHD"]

Root = str | os.PathLike[str]


def _time_sorted(events: np.ndarray) -> np.ndarray:
    """``events`` sorted by ``t`` (stable; the array itself when it already is, the usual case)."""
    return events if is_sorted(events) else events[np.argsort(events["t"], kind="stable")]


class NMNIST(EventDataset):
    """N-MNIST (Orchard et al. 2015): MNIST digits seen by an ATIS during three saccades.

    ``first_saccade_only`` keeps events before 100 ms (Tonic's option). 60,000 / 10,000
    samples; sensor 34 x 34.
    """

    first_saccade_us = 100_000

    layout = "root/\n  Train/<digit 0-9>/<id>.bin\n  Test/<digit 0-9>/<id>.bin"
    sensor_size = NMNIST_SENSOR_SIZE
    classes = tuple(str(d) for d in range(10))
    _base = "https://data.mendeley.com/public-files/datasets/468j46mzdv/files/"
    urls = {
        "Train": (_base + "39c25547-014b-4137-a934-9d29fa53c7a0/file_downloaded", "train.zip",
                  "20959b8e626244a1b502305a9e6e2031"),
        "Test": (_base + "05a4d654-7e03-4c15-bdfa-9bb2bcbea494/file_downloaded", "test.zip",
                 "69ca8762b2fe404d9b9bad1103e97832"),
    }

    def __init__(self, root: Root, train: bool = True, transform: Transform | None = None,
                 target_transform: Transform | None = None, download: bool = False,
                 first_saccade_only: bool = False) -> None:
        self.train = train
        self.split = "Train" if train else "Test"
        self.first_saccade_only = first_saccade_only
        super().__init__(root, transform, target_transform, download)

    def _find_samples(self) -> list[tuple[Path, int]]:
        folder = self.root / self.split
        return [(f, d) for d in range(10) for f in sorted((folder / str(d)).glob("*.bin"))]

    def _load(self, index: int) -> tuple[np.ndarray, int]:
        path, label = self.samples[index]
        events = read_nmnist(path, sensor_size=NMNIST_SENSOR_SIZE)  # a stray non-N-MNIST .bin is refused
        if self.first_saccade_only:
            events = time_window(_time_sorted(events), 0, self.first_saccade_us).copy()
        return events, label

    def download(self) -> None:
        url, name, md5 = self.urls[self.split]
        if (self.root / self.split).is_dir():
            return
        archive = download_url(url, self.root / name, md5)
        extract_archive(archive, self.root)


class DVSGesture(EventDataset):
    """DVS128 Gesture (Amir et al. 2017): 11 gestures by 29 subjects under 5 lightings.

    The release ``DvsGesture.tar.gz`` (IBM, behind a click-through page, so no download here)
    holds ``user<NN>_<lighting>.aedat`` (AEDAT 3.1) recordings, each with a
    ``_labels.csv`` of gesture spans, and ``trials_to_train.txt`` / ``trials_to_test.txt``
    (users 1-23 / 24-29, used when those lists are absent). Each labelled span is one sample:
    events with ``start <= t < end`` (us, as recorded), label = class - 1 in 0..10.
    Recordings are decoded whole (and sorted by time if a file is not), so the last
    ``cache_recordings`` are kept in memory; a sample is then a binary-search slice.
    """

    layout = (
        "root/  (or root/DvsGesture/)\n  trials_to_train.txt, trials_to_test.txt\n"
        "  user<NN>_<lighting>.aedat\n  user<NN>_<lighting>_labels.csv"
    )
    sensor_size = (128, 128)
    classes = DVS_GESTURE_CLASSES

    def __init__(self, root: Root, train: bool = True, transform: Transform | None = None,
                 target_transform: Transform | None = None, download: bool = False,
                 cache_recordings: int = 2) -> None:
        self.train = train
        self._cache: OrderedDict[Path, np.ndarray] = OrderedDict()
        self._cache_size = cache_recordings
        super().__init__(root, transform, target_transform, download)

    def _trials(self, folder: Path) -> list[Path]:
        listing = folder / ("trials_to_train.txt" if self.train else "trials_to_test.txt")
        if listing.is_file():
            names = [ln.strip() for ln in listing.read_text().splitlines() if ln.strip()]
            return [folder / n for n in names]
        # no lists: the official split is by subject
        users = range(1, 24) if self.train else range(24, 30)
        found = []
        for f in sorted(folder.glob("user*.aedat")):
            m = re.match(r"user(\d+)_", f.name)
            if m and int(m.group(1)) in users:
                found.append(f)
        return found

    def _find_samples(self) -> list[tuple[Path, int, int, int]]:
        folder = self.root / "DvsGesture" if (self.root / "DvsGesture").is_dir() else self.root
        samples = []
        for aedat in self._trials(folder):
            csv = aedat.with_name(aedat.stem + "_labels.csv")
            if not aedat.is_file() or not csv.is_file():
                raise FileNotFoundError(
                    f"DVSGesture: {aedat.name} or its {csv.name} is missing under {folder}; "
                    f"expected layout:\n{self.layout}"
                )
            for row in read_dvs_gesture_labels(csv):
                samples.append((aedat, int(row["t_start"]), int(row["t_end"]), int(row["label"]) - 1))
        return samples

    def _recording(self, path: Path) -> np.ndarray:
        if path in self._cache:
            self._cache.move_to_end(path)
            return self._cache[path]
        events = _time_sorted(read_aedat31(path))
        if self._cache_size > 0:
            self._cache[path] = events
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return events

    def _load(self, index: int) -> tuple[np.ndarray, int]:
        path, t0, t1, label = self.samples[index]
        return time_window(self._recording(path), t0, t1).copy(), label


def _trailing_int(name: str) -> int | None:
    m = re.search(r"(\d+)$", name)
    return int(m.group(1)) if m else None


class CIFAR10DVS(EventDataset):
    """CIFAR10-DVS (Li et al. 2017): 10,000 CIFAR-10 images moved on a screen before a DVS128.

    Released as one zip per class of AEDAT 2.0 files, ``<class>/cifar10_<class>_<i>.aedat``
    (Tonic's re-encoded ``.aedat4`` copies are read too). There is no official split:
    ``train=None`` gives all samples; ``train=True/False`` gives the common split of
    files ``i >= 100`` / ``i < 100`` per class (TEBN, SpikingJelly's ``CIFAR10DVSTEBNSplit``).
    Coordinates follow jAER's display of the DVS128 (:mod:`..events.aedat2`); SpikingJelly
    rotates them (x' = 127 - y, y' = x).
    """

    layout = "root/\n  airplane/cifar10_airplane_<i>.aedat\n  automobile/...\n  ... truck/"
    sensor_size = (128, 128)
    classes = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    urls = {
        "airplane": ("https://ndownloader.figshare.com/files/7712788", "0afd5c4bf9ae06af762a77b180354fdd"),
        "automobile": ("https://ndownloader.figshare.com/files/7712791", "8438dfeba3bc970c94962d995b1b9bdd"),
        "bird": ("https://ndownloader.figshare.com/files/7712794", "a9c207c91c55b9dc2002dc21c684d785"),
        "cat": ("https://ndownloader.figshare.com/files/7712812", "52c63c677c2b15fa5146a8daf4d56687"),
        "deer": ("https://ndownloader.figshare.com/files/7712815", "b6bf21f6c04d21ba4e23fc3e36c8a4a3"),
        "dog": ("https://ndownloader.figshare.com/files/7712818", "f379ebdf6703d16e0a690782e62639c3"),
        "frog": ("https://ndownloader.figshare.com/files/7712842", "cad6ed91214b1c7388a5f6ee56d08803"),
        "horse": ("https://ndownloader.figshare.com/files/7712851", "e7cbbf77bec584ffbf913f00e682782a"),
        "ship": ("https://ndownloader.figshare.com/files/7712836", "41c7bd7d6b251be82557c6cce9a7d5c9"),
        "truck": ("https://ndownloader.figshare.com/files/7712839", "89f3922fd147d9aeff89e76a2b0b70a7"),
    }
    test_per_class = 100

    def __init__(self, root: Root, train: bool | None = None, transform: Transform | None = None,
                 target_transform: Transform | None = None, download: bool = False) -> None:
        self.train = train
        super().__init__(root, transform, target_transform, download)

    def _find_samples(self) -> list[tuple[Path, int]]:
        samples = []
        for label, name in enumerate(self.classes):
            files = sorted(
                [*(self.root / name).glob("*.aedat"), *(self.root / name).glob("*.aedat4")],
                key=lambda f: (_trailing_int(f.stem) is None, _trailing_int(f.stem) or 0, f.name),
            )
            for rank, f in enumerate(files):
                i = _trailing_int(f.stem)
                i = rank if i is None else i
                if self.train is None or (i >= self.test_per_class) == self.train:
                    samples.append((f, label))
        return samples

    def _load(self, index: int) -> tuple[np.ndarray, int]:
        path, label = self.samples[index]
        return read_aedat(path, chip="dvs128" if path.suffix == ".aedat" else None), label

    def download(self) -> None:
        for name, (url, md5) in self.urls.items():
            if (self.root / name).is_dir():
                continue
            archive = download_url(url, self.root / f"{name}.zip", md5)
            extract_archive(archive, self.root)


class NCARS(EventDataset):
    """N-CARS (Sironi et al. 2018): 100 ms ATIS samples of cars vs background, 120 x 100 px.

    Prophesee's archive (registration required, so no download here) unpacks to
    ``n-cars_train`` / ``n-cars_test``, each with ``cars/`` and ``background/`` DAT files;
    ``train`` / ``test`` folder names work too. Labels: background 0, cars 1.
    """

    layout = "root/\n  n-cars_train/ (or train/)\n    background/*.dat\n    cars/*.dat\n  n-cars_test/ (or test/)"
    sensor_size = (120, 100)
    classes = ("background", "cars")

    def __init__(self, root: Root, train: bool = True, transform: Transform | None = None,
                 target_transform: Transform | None = None, download: bool = False) -> None:
        self.train = train
        super().__init__(root, transform, target_transform, download)

    def _find_samples(self) -> list[tuple[Path, int]]:
        split = "train" if self.train else "test"
        folder = first_existing(self.root, f"n-cars_{split}", split)
        if folder is None:
            return []
        return [(f, label) for label, name in enumerate(self.classes)
                for f in sorted((folder / name).glob("*.dat"))]

    def _load(self, index: int) -> tuple[np.ndarray, int]:
        path, label = self.samples[index]
        return read_prophesee_dat(path), label


class SHD(EventDataset):
    """Spiking Heidelberg Digits (Cramer et al. 2020): spoken digits as spikes on 700 channels.

    Items are events with ``t`` = spike time in us, ``x`` = channel (0..699), ``y = 0`` and
    ``p = 1`` (Tonic's convention), and the label 0..19. 8,156 / 2,264 samples.
    """

    layout = "root/\n  shd_train.h5\n  shd_test.h5"
    sensor_size = (SHD_CHANNELS, 1)
    classes = tuple([f"{d} (en)" for d in range(10)] + [f"{d} (de)" for d in range(10)])
    base_url = "https://zenkelab.org/datasets/"

    def __init__(self, root: Root, train: bool = True, transform: Transform | None = None,
                 target_transform: Transform | None = None, download: bool = False) -> None:
        self.train = train
        self.filename = "shd_train.h5" if train else "shd_test.h5"
        super().__init__(root, transform, target_transform, download)

    def _find_samples(self) -> list[tuple[Path, int]]:
        path = self.root / self.filename
        if not path.is_file():
            return []
        return [(path, i) for i in range(shd_length(path))]

    def _load(self, index: int) -> tuple[np.ndarray, int]:
        path, i = self.samples[index]
        times, units, label = read_shd_sample(path, i)
        events = np.empty(times.shape[0], dtype=EVENT_DTYPE)
        events["t"] = seconds_to_us(times)
        events["x"] = units
        events["y"] = 0
        events["p"] = 1
        order = np.argsort(events["t"], kind="stable")  # the event convention: sorted by t
        return events[order], label

    def download(self) -> None:
        if (self.root / self.filename).is_file():
            return
        archive = download_url(self.base_url + self.filename + ".zip", self.root / (self.filename + ".zip"))
        extract_archive(archive, self.root)
