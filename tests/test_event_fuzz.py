"""Event file readers under hypothesis: random events round-trip; random or
corrupted bytes raise only ValueError."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import raises_at
from spikedrive.data.events.aedat import read_aedat
from spikedrive.data.events.aedat2 import iter_aedat2, write_aedat2
from spikedrive.data.events.aedat31 import write_aedat31
from spikedrive.data.events.dtype import check_events, make_events
from spikedrive.data.events.gen1 import BOX_DTYPE, read_gen1_boxes, write_gen1_boxes
from spikedrive.data.events.mvsec import (
    read_mvsec_events_window, read_mvsec_hdf5, write_mvsec_hdf5,
)
from spikedrive.data.events.nmnist import read_nmnist, write_nmnist
from spikedrive.data.events.prophesee import (
    read_prophesee_dat, write_prophesee_dat,
)
from spikedrive.data.events.prophesee_npy import read_prophesee_npy
from spikedrive.data.events.shd import read_shd, read_shd_sample, write_shd

DATA = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "events"
FAST = settings(max_examples=50, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])





# --------------------------------------------------------------------------- dtype helpers


# --------------------------------------------------------------------------- fuzzing
@st.composite
def event_arrays(draw, max_t: int, width: int, height: int, max_n: int = 40) -> np.ndarray:
    n = draw(st.integers(0, max_n))
    t = sorted(draw(st.lists(st.integers(0, max_t), min_size=n, max_size=n)))
    x = draw(st.lists(st.integers(0, width - 1), min_size=n, max_size=n))
    y = draw(st.lists(st.integers(0, height - 1), min_size=n, max_size=n))
    p = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    return make_events(np.array(t, dtype=np.int64), np.array(x, dtype=np.int64),
                       np.array(y, dtype=np.int64), np.array(p, dtype=np.int64))


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@FAST
@given(event_arrays((1 << 23) - 1, 256, 240))
def test_fuzz_nmnist_roundtrip(fuzz_dir, ev):
    write_nmnist(fuzz_dir / "f.bin", ev)
    assert np.array_equal(read_nmnist(fuzz_dir / "f.bin"), ev)


@FAST
@given(event_arrays(2**32 - 1, 304, 240))
def test_fuzz_dat_roundtrip(fuzz_dir, ev):
    write_prophesee_dat(fuzz_dir / "f.dat", ev)
    assert np.array_equal(read_prophesee_dat(fuzz_dir / "f.dat"), ev)


@FAST
@given(st.sampled_from(["dvs128", "davis240", "davis346"]), st.data())
def test_fuzz_aedat2_roundtrip(fuzz_dir, chip, data):
    size = {"dvs128": (128, 128), "davis240": (240, 180), "davis346": (346, 260)}[chip]
    ev = data.draw(event_arrays(2**31 - 1, *size))
    write_aedat2(fuzz_dir / "f.aedat", ev, chip=chip)
    assert np.array_equal(read_aedat(fuzz_dir / "f.aedat"), ev)


@FAST
@given(event_arrays(2**40, 32768, 32768), st.integers(1, 9))
def test_fuzz_aedat31_roundtrip(fuzz_dir, ev, packet):
    write_aedat31(fuzz_dir / "f.aedat", ev, packet_events=packet)
    assert np.array_equal(read_aedat(fuzz_dir / "f.aedat"), ev)


@settings(max_examples=15, deadline=None)
@given(event_arrays(2**40, 346, 260, max_n=20))
def test_fuzz_mvsec_roundtrip(fuzz_dir, ev):
    depth = np.zeros((1, 2, 3), np.float32)
    write_mvsec_hdf5(fuzz_dir / "f_data.hdf5", fuzz_dir / "f_gt.hdf5", ev, depth, [0])
    assert np.array_equal(read_mvsec_hdf5(fuzz_dir / "f_data.hdf5").events, ev)


def _parse_or_value_error(fn, path: Path) -> None:
    try:
        out = fn(path)
    except ValueError:
        return
    check_events(out, "decoded")


_AEDAT31_HEAD = b"#!AER-DAT3.1\r\n#!END-HEADER\r\n"
_AEDAT2_HEAD = b"#!AER-DAT2.0\r\n# AEChip: DAVIS346\r\n"
_DAT_HEAD = b"% Width 304\n% Height 240\n\x00\x08"


@FAST
@given(st.sampled_from(["nmnist", "dat", "dat_raw", "aedat2", "aedat31", "aedat", "aedat4", "npy"]),
       st.binary(max_size=300))
def test_fuzz_random_bytes(fuzz_dir, kind, blob):
    pkt = struct.pack("<hhiiiiii", 1, 1, 8, 4, 0, len(blob) // 8, len(blob) // 8, len(blob) // 8)
    prefix, reader = {
        "nmnist": (b"", read_nmnist),
        "dat": (_DAT_HEAD, read_prophesee_dat),
        "dat_raw": (b"", read_prophesee_dat),
        "aedat2": (_AEDAT2_HEAD, read_aedat),
        "aedat31": (_AEDAT31_HEAD + pkt, read_aedat),
        "aedat": (b"", read_aedat),
        "aedat4": (b"#!AER-DAT4.0\r\n", read_aedat),
        "npy": (b"\x93NUMPY\x01\x00", read_prophesee_npy),
    }[kind]
    path = fuzz_dir / f"r_{kind}"
    path.write_bytes(prefix + blob)
    if kind == "aedat4" and "aedat" not in sys.modules:
        pytest.importorskip("aedat")
    _parse_or_value_error(reader, path)


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory) -> dict[str, bytes]:
    """Small valid SHD, MVSEC (data + gt) and Gen1 box files, as bytes to corrupt."""
    d = tmp_path_factory.mktemp("valid")
    rng = np.random.default_rng(0)
    times = [np.sort(rng.uniform(0, 1, k)).astype(np.float32) for k in (5, 0, 12)]
    write_shd(d / "v.h5", times, [rng.integers(0, 700, len(x)) for x in times], [1, 2, 3], speakers=[4, 5, 6])
    n = 30
    ev = make_events(np.arange(n) * 1000, np.arange(n) % 346, np.arange(n) % 260, np.arange(n) % 2)
    write_mvsec_hdf5(d / "v_data.hdf5", d / "v_gt.hdf5", ev, rng.uniform(1, 9, (2, 3, 4)), [1000, 2000])
    boxes = np.zeros(4, dtype=BOX_DTYPE)
    boxes["t"], boxes["w"], boxes["class_id"] = [1, 1, 2, 3], 5, [0, 1, 0, 1]
    write_gen1_boxes(d / "v_bbox.npy", boxes)
    return {p.name: p.read_bytes() for p in d.iterdir()}


def _read_shd_both_ways(path: Path) -> None:
    read_shd(path)
    for i in range(3):
        read_shd_sample(path, i)


def _read_mvsec_all(data: Path, gt: Path) -> None:
    read_mvsec_hdf5(data, gt)
    read_mvsec_events_window(data, 5_000, 20_000)


_CORRUPTIBLE = ("v.h5", "v_data.hdf5", "v_gt.hdf5", "v_bbox.npy")


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.sampled_from(_CORRUPTIBLE),
       st.lists(st.tuples(st.integers(0, 2**20), st.integers(0, 255)), max_size=6),
       st.one_of(st.none(), st.floats(0.0, 1.0)))
def test_fuzz_corrupted_hdf5_and_boxes(fuzz_dir, valid_files, name, edits, keep):
    """Valid files with bytes overwritten and/or cut short: a ValueError or a sane result."""
    data = bytearray(valid_files[name])
    for pos, value in edits:
        data[pos % len(data)] = value
    if keep is not None:
        data = data[: int(len(data) * keep)]
    for other in _CORRUPTIBLE:  # the partner file of an MVSEC pair stays valid
        (fuzz_dir / other).write_bytes(bytes(data) if other == name else valid_files[other])
    reader = {
        "v.h5": lambda: _read_shd_both_ways(fuzz_dir / "v.h5"),
        "v_data.hdf5": lambda: _read_mvsec_all(fuzz_dir / "v_data.hdf5", fuzz_dir / "v_gt.hdf5"),
        "v_gt.hdf5": lambda: _read_mvsec_all(fuzz_dir / "v_data.hdf5", fuzz_dir / "v_gt.hdf5"),
        "v_bbox.npy": lambda: read_gen1_boxes(fuzz_dir / "v_bbox.npy"),
    }[name]
    try:
        reader()
    except ValueError:
        pass


@FAST
@given(st.binary(max_size=200))
def test_fuzz_random_bytes_hdf5_and_boxes(fuzz_dir, blob):
    for name, reader in (("r_data.hdf5", read_mvsec_hdf5), ("r.h5", read_shd),
                         ("r_bbox.npy", read_gen1_boxes)):
        path = fuzz_dir / name
        path.write_bytes(blob)
        try:
            reader(path)
        except ValueError:
            pass


def test_corrupt_shd_heap_and_vlen_kind_are_errors_not_hangs(tmp_path):
    """Two corruptions that hang or crash libhdf5 itself are refused before it reads."""
    rng = np.random.default_rng(0)
    times = [np.sort(rng.uniform(0, 1, k)).astype(np.float32) for k in (5, 12)]
    src = tmp_path / "shd.h5"
    write_shd(src, times, [rng.integers(0, 700, len(x)) for x in times], [1, 2])
    raw = src.read_bytes()
    heap = raw.index(b"GCOL")
    # the first object's size (header: index, refcount, 4 reserved, size): one that sends
    # libhdf5's walk onto a zero-sized free-space record, where it loops forever
    bad = bytearray(raw)
    struct.pack_into("<Q", bad, heap + 16 + 8, 33)
    (tmp_path / "heap.h5").write_bytes(bytes(bad))
    raises_at(read_shd, tmp_path / "heap.h5", None)
    raises_at(lambda p: read_shd_sample(p, 0), tmp_path / "heap.h5", None)
    # the variable-length kind (sequence 0 / string 1) of the times' datatype: 3 segfaults
    with h5py.File(src, "r") as f:
        tid = f["spikes/times"].id.get_type().encode()[2:]
    at = raw.index(tid)
    bad = bytearray(raw)
    bad[at + 1] = 3
    (tmp_path / "kind.h5").write_bytes(bytes(bad))
    err = raises_at(read_shd, tmp_path / "kind.h5", None)
    assert "variable-length sequence" in str(err)


def test_iter_aedat2_matches_read(tmp_path):
    ev = make_events(np.arange(100), np.arange(100) % 128, np.arange(100) % 7, np.arange(100) % 2)
    write_aedat2(tmp_path / "a.aedat", ev)
    assert np.array_equal(np.concatenate(list(iter_aedat2(tmp_path / "a.aedat", chunk_events=33))), ev)
