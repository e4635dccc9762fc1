"""Event file readers/writers: real recordings, exact counts, round trips, corrupt and truncated files."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from helpers import cut, raises_at
from spikedrive.data.events.aedat import read_aedat, read_aedat_header
from spikedrive.data.events.aedat2 import read_aedat2, write_aedat2
from spikedrive.data.events.aedat31 import iter_aedat31, read_aedat31, write_aedat31
from spikedrive.data.events.dtype import EVENT_DTYPE, as_events, check_events, is_sorted, make_events
from spikedrive.data.events.errors import CorruptFileError
from spikedrive.data.events.gen1 import BOX_DTYPE, read_gen1_boxes, write_gen1_boxes
from spikedrive.data.events.gesture_labels import read_dvs_gesture_labels, write_dvs_gesture_labels
from spikedrive.data.events._window import lazy_window_bounds, window_bounds
from spikedrive.data.events.mvsec import (
    iter_mvsec_events, read_mvsec_events_window, read_mvsec_hdf5, write_mvsec_hdf5,
)
from spikedrive.data.events.nmnist import iter_nmnist, read_nmnist, write_nmnist
from spikedrive.data.events.prophesee import (
    iter_prophesee_dat, read_prophesee_dat, read_prophesee_dat_header, read_prophesee_dat_window,
    write_prophesee_dat,
)
from spikedrive.data.events.prophesee_npy import read_prophesee_npy, write_prophesee_npy
from spikedrive.data.events.shd import read_shd, read_shd_sample, write_shd

DATA = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "events"
FAST = settings(max_examples=50, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def real(name: str) -> Path:
    path = DATA / name
    if not path.is_file():
        pytest.skip(f"real recording {path} is not available (shared/testdata/events missing)")
    return path


def assert_valid(ev: np.ndarray, width: int, height: int) -> None:
    check_events(ev, "ev")
    assert ev["x"].min() >= 0 and ev["x"].max() < width
    assert ev["y"].min() >= 0 and ev["y"].max() < height
    assert set(np.unique(ev["p"]).tolist()) <= {0, 1}
    assert is_sorted(ev)




# --------------------------------------------------------------------------- dtype helpers
def test_make_events_and_checks():
    ev = make_events([1, 2], [3, 4], [5, 6], [0, 1])
    assert ev.dtype == EVENT_DTYPE and ev["x"].tolist() == [3, 4]
    with pytest.raises(ValueError, match="'x'"):
        make_events([1], [40000], [0], [1])
    with pytest.raises(ValueError, match="'p'"):
        make_events([1], [0], [0], [2])
    with pytest.raises(ValueError, match="my_arg"):
        check_events(np.zeros(3), "my_arg")
    tonic = np.array([(1, 2, 3, True)], dtype=[("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "?")])
    assert as_events(tonic, "ev").tolist() == [(3, 1, 2, 1)]


def test_check_events_is_the_one_validator():
    tonic = np.array([(1, 2, 3, True, 0.5)] * 2,
                     dtype=[("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "?"), ("extra", "<f4")])
    check_events(tonic, "ev", exact=False)  # any field order, extra fields: the lenient layout
    with pytest.raises(ValueError, match="ev: expected dtype"):
        check_events(tonic, "ev")  # exact: EVENT_DTYPE only
    with pytest.raises(ValueError, match="ev: expected a structured array with fields"):
        check_events(tonic[["x", "y", "t"]], "ev", exact=False)
    with pytest.raises(ValueError, match="ev: expected a NumPy structured array"):
        check_events([1, 2], "ev", exact=False)
    with pytest.raises(ValueError, match="ev: expected a 1-D"):
        check_events(make_events([1, 2], [0, 0], [0, 0], [0, 1]).reshape(1, 2), "ev")
    with pytest.raises(ValueError, match="ev: timestamps 't' must be sorted"):
        check_events(make_events([2, 1], [0, 0], [0, 0], [0, 1]), "ev", need_sorted=True)
    with pytest.raises(ValueError, match="missing|fields"):
        as_events(tonic[["x", "y", "t"]], "ev")


@pytest.mark.parametrize(
    "write, events, match",
    [
        (lambda p, e: write_nmnist(p, e), make_events([0], [256], [0], [1]), r"write_nmnist: events\['x'\] spans \[256, 256\].*\[0, 255\]"),
        (lambda p, e: write_aedat2(p, e), make_events([0], [0], [128], [1]), r"write_aedat2: events\['y'\] spans \[128, 128\].*\[0, 127\]"),
        (lambda p, e: write_aedat31(p, e), make_events([-1], [0], [0], [1]), r"write_aedat31: events\['t'\] spans \[-1, -1\]"),
        (lambda p, e: write_prophesee_dat(p, e), make_events([2**32], [0], [0], [1]), r"write_prophesee_dat: events\['t'\].*4294967295"),
        (lambda p, e: write_mvsec_hdf5(p, p.with_suffix(".gt"), e, np.zeros((0, 1, 1)), []),
         make_events([0], [-3], [0], [1]), r"write_mvsec_hdf5: events\['x'\] spans \[-3, -3\]"),
    ],
)
def test_writers_name_field_and_range(tmp_path, write, events, match):
    with pytest.raises(ValueError, match=match):
        write(tmp_path / "out", events)


# --------------------------------------------------------------------------- N-MNIST
def test_nmnist_real_sample(tmp_path):
    path = real("sample_nmnist.bin")
    ev = read_nmnist(path)
    assert ev.shape == (4325,)
    assert_valid(ev, 34, 34)
    assert ev[:3].tolist() == [(654, 7, 15, 1), (2999, 19, 18, 0), (3017, 21, 17, 0)]
    assert ev["t"][-1] == 311175
    out = tmp_path / "rt.bin"
    write_nmnist(out, ev)
    assert out.read_bytes() == path.read_bytes()  # bit-exact re-encoding
    assert np.array_equal(np.concatenate(list(iter_nmnist(path, chunk_events=1000))), ev)


def test_nmnist_truncated(tmp_path):
    path = cut(real("sample_nmnist.bin"), tmp_path / "cut.bin", 21623)
    raises_at(read_nmnist, path, 4324 * 5)
    with pytest.raises(CorruptFileError):
        next(iter_nmnist(path))


def test_nmnist_overflow_marker(tmp_path):
    # two events around one overflow record (y == 240): the second gains 2**13 us
    raw = bytes([1, 2, 0x80, 0, 10]) + bytes([0, 240, 0, 0, 0]) + bytes([3, 4, 0, 0, 20])
    (tmp_path / "o.bin").write_bytes(raw)
    ev = read_nmnist(tmp_path / "o.bin")
    assert ev.tolist() == [(10, 1, 2, 1), (20 + 8192, 3, 4, 0)]
    streamed = list(iter_nmnist(tmp_path / "o.bin", chunk_events=1))  # marker alone in a chunk
    assert np.array_equal(np.concatenate(streamed), ev)


def test_nmnist_writer_rejects_long_recordings(tmp_path):
    with pytest.raises(ValueError, match="23-bit"):
        write_nmnist(tmp_path / "x.bin", make_events([1 << 23], [0], [0], [1]))
    with pytest.raises(ValueError, match="overflow marker"):
        write_nmnist(tmp_path / "x.bin", make_events([0], [0], [240], [1]))


# --------------------------------------------------------------------------- Prophesee DAT
def test_ncars_real_sample(tmp_path):
    path = real("sample_ncars.dat")
    header = read_prophesee_dat_header(path)
    assert (header.data_offset, header.event_type, header.event_size) == (93, 0, 8)
    ev = read_prophesee_dat(path)
    assert ev.shape == (2009,)
    assert_valid(ev, 120, 100)  # N-CARS samples are 120 x 100 crops
    assert ev[:3].tolist() == [(0, 25, 8, 0), (35, 67, 35, 0), (152, 56, 27, 1)]
    assert ev["t"][-1] == 99952
    out = tmp_path / "rt.dat"
    write_prophesee_dat(out, ev, width=120, height=100)
    back = read_prophesee_dat(out)
    assert np.array_equal(back, ev)
    assert (read_prophesee_dat_header(out).width, read_prophesee_dat_header(out).height) == (120, 100)
    assert np.array_equal(np.concatenate(list(iter_prophesee_dat(path, chunk_events=300))), ev)
    window = read_prophesee_dat_window(path, 10_000, 20_000)
    assert np.array_equal(window, ev[(ev["t"] >= 10_000) & (ev["t"] < 20_000)])
    assert np.array_equal(read_prophesee_dat(path, start=5, count=7), ev[5:12])


def test_dat_truncated_and_corrupt(tmp_path):
    src = real("sample_ncars.dat")
    raises_at(read_prophesee_dat, cut(src, tmp_path / "a.dat", 93 + 8 * 100 + 3), 93 + 8 * 100)
    raises_at(read_prophesee_dat, cut(src, tmp_path / "b.dat", 92), 91)  # type/size bytes cut
    data = bytearray(src.read_bytes())
    struct.pack_into("<I", data, 93 + 8 * 7 + 4, 2 << 28)  # polarity 2 in record 7
    (tmp_path / "c.dat").write_bytes(bytes(data))
    err = raises_at(read_prophesee_dat, tmp_path / "c.dat", 93 + 8 * 7)
    assert "p=2" in str(err)
    with pytest.raises(ValueError, match="'x'"):
        write_prophesee_dat(tmp_path / "d.dat", make_events([0], [5], [5], [1]), width=4, height=8)


def test_dat_start_count_out_of_range_are_errors(tmp_path):
    ev = make_events(np.arange(10) * 100, np.arange(10), np.zeros(10), np.ones(10))
    path = tmp_path / "ten.dat"
    write_prophesee_dat(path, ev)
    assert np.array_equal(read_prophesee_dat(path, start=10), ev[:0])  # empty but in range
    assert np.array_equal(read_prophesee_dat(path, start=3, count=7), ev[3:])
    for kwargs, match in (
        ({"start": 10**12}, r"start=1000000000000, expected 0\.\.10 .*ten\.dat holds 10 events"),
        ({"start": -5}, r"start=-5, expected 0\.\.10 .*holds 10 events"),
        ({"start": 4, "count": 7}, r"count=7, expected 0\.\.6 from start=4 .*holds 10 events"),
        ({"count": -1}, r"count=-1"),
        ({"start": "3"}, r"start: expected an integer, got '3'"),
    ):
        with pytest.raises(ValueError, match=match):
            read_prophesee_dat(path, **kwargs)


def test_dat_window_cuts_half_open_windows(tmp_path):
    rng = np.random.default_rng(4)
    t = np.sort(rng.integers(0, 5_000, 400))
    ev = make_events(t, rng.integers(0, 304, 400), rng.integers(0, 240, 400), rng.integers(0, 2, 400))
    path = tmp_path / "w.dat"
    write_prophesee_dat(path, ev)
    edges = [-10, 0, int(t[0]), int(t[57]), int(t[57]) + 1, int(t[200]), int(t[-1]), int(t[-1]) + 1, 10**6]
    for a in edges:
        for b in edges:
            want = ev[(ev["t"] >= a) & (ev["t"] < b)]
            assert np.array_equal(read_prophesee_dat_window(path, a, b), want), (a, b)
    write_prophesee_dat(tmp_path / "empty.dat", ev[:0])
    assert read_prophesee_dat_window(tmp_path / "empty.dat", 0, 10).shape == (0,)


def test_lazy_window_bounds_read_few_times():
    t = np.sort(np.random.default_rng(0).integers(0, 10**6, 100_000))
    reads = []

    def time_at(i):
        reads.append(i)
        return int(t[i])

    for a, b in ((-5, 0), (0, 10**7), (int(t[500]), int(t[900])), (int(t[900]), int(t[500])), (10**7, 10**8)):
        reads.clear()
        assert lazy_window_bounds(time_at, len(t), a, b) == window_bounds(t, a, b)
        assert len(reads) <= 2 * 17 + 2  # about 2 log2(N), never the whole column


# --------------------------------------------------------------------------- AEDAT 4
def test_aedat4_real_sample(tmp_path):
    pytest.importorskip("aedat", reason="the optional 'aedat' package is not installed")
    path = real("sample.aedat4")
    ev = read_aedat(path)
    assert ev.shape == (111954,)
    assert_valid(ev, 320, 240)  # the recording's event stream is 320 x 240
    assert ev[0].tolist() == (1605537493718345, 154, 204, 0)
    out = tmp_path / "rt.aedat"  # no AEDAT4 writer: round trip through AEDAT 3.1
    write_aedat31(out, ev)
    assert np.array_equal(read_aedat(out), ev)


def test_aedat4_truncated(tmp_path):
    pytest.importorskip("aedat", reason="the optional 'aedat' package is not installed")
    from spikedrive.data.events.aedat4 import read_aedat4

    src = real("sample.aedat4")
    raises_at(read_aedat4, cut(src, tmp_path / "a.aedat4", 5000), 2334)
    raises_at(read_aedat4, cut(src, tmp_path / "b.aedat4", 100), 14)


def test_aedat4_without_package(monkeypatch, tmp_path):
    from spikedrive.data.events.aedat4 import read_aedat4

    monkeypatch.setitem(sys.modules, "aedat", None)
    with pytest.raises(ImportError, match=r"pip install 'spikedrive\[aedat4\]'"):
        read_aedat4(real("sample.aedat4"))


# --------------------------------------------------------------------------- AEDAT 2.0
def test_aedat2_real_header_only(tmp_path):
    path = real("sample_aedat_header.aedat")
    header = read_aedat_header(path)
    assert header.version == "2.0" and header.data_offset == path.stat().st_size
    assert "Davis346red" in header.value("AEChip:")
    ev = read_aedat(path)
    assert ev.shape == (0,) and ev.dtype == EVENT_DTYPE
    out = tmp_path / "rt.aedat"
    write_aedat2(out, ev, chip="davis346")
    assert read_aedat(out).shape == (0,)
    # the real header followed by one DAVIS346 record decodes with the header's chip
    one = np.array([(((259 - 10) << 22) | ((345 - 20) << 12) | (1 << 11), 77)],
                   dtype=[("a", ">u4"), ("t", ">u4")])
    (tmp_path / "one.aedat").write_bytes(path.read_bytes() + one.tobytes())
    assert read_aedat(tmp_path / "one.aedat").tolist() == [(77, 20, 10, 1)]
    raises_at(read_aedat, cut(tmp_path / "one.aedat", tmp_path / "cut.aedat", 599 + 5), 599)


def test_aedat2_dvs128_layout(tmp_path):
    # jAER DVS128: raw bit 0 = 0 is ON, x mirrored; rows counted from the top
    rec = np.array([((5 << 8) | (9 << 1) | 0, 100), (0x8000, 150), ((1 << 8) | (2 << 1) | 1, 200)],
                   dtype=[("a", ">u4"), ("t", ">u4")])
    path = tmp_path / "d.aedat"
    path.write_bytes(b"#!AER-DAT2.0\r\n# AEChip: ch.unizh.ini.jaer.chip.retina.DVS128\r\n" + rec.tobytes())
    assert read_aedat2(path).tolist() == [(100, 118, 122, 1), (200, 125, 126, 0)]


def test_aedat2_first_record_may_start_with_hash(tmp_path):
    # a DAVIS346 address whose top byte is 0x23 ('#'): the end-of-header line keeps it data
    ev = make_events([5], [3], [259 - 141], [1])
    write_aedat2(tmp_path / "h.aedat", ev, chip="davis346")
    raw = (tmp_path / "h.aedat").read_bytes()
    assert raw[read_aedat_header(tmp_path / "h.aedat").data_offset] == ord("#")
    assert np.array_equal(read_aedat(tmp_path / "h.aedat"), ev)


# --------------------------------------------------------------------------- AEDAT 3.1
def _gesture_like(n: int = 3000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, 2**31 + 5_000_000, n))  # crosses one timestamp overflow
    return make_events(t, rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n))


def test_aedat31_roundtrip_and_layout(tmp_path):
    ev = _gesture_like()
    path = tmp_path / "user01_led.aedat"
    write_aedat31(path, ev, packet_events=500)
    assert read_aedat_header(path).version == "3.1"
    assert np.array_equal(read_aedat(path), ev)
    assert np.array_equal(np.concatenate(list(iter_aedat31(path, chunk_events=700))), ev)
    # bit layout: first packet header and first event, decoded by hand
    raw = path.read_bytes()
    start = raw.index(b"#!END-HEADER\r\n") + 14
    etype, _, esize, tsoff, ovf, cap, num, valid = struct.unpack_from("<hhiiiiii", raw, start)
    assert (etype, esize, tsoff, ovf, cap, num, valid) == (1, 8, 4, 0, 500, 500, 500)
    data, ts = struct.unpack_from("<Ii", raw, start + 28)
    assert (data >> 17, (data >> 2) & 0x7FFF, (data >> 1) & 1, data & 1, ts) == (
        ev["x"][0], ev["y"][0], ev["p"][0], 1, ev["t"][0])


def test_aedat31_skips_invalid_and_other_packets(tmp_path):
    head = b"#!AER-DAT3.1\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n"
    special = struct.pack("<hhiiiiii", 0, 1, 8, 4, 0, 1, 1, 1) + struct.pack("<Ii", 0xABC, 5)
    pol = struct.pack("<hhiiiiii", 1, 1, 8, 4, 1, 2, 2, 1)
    pol += struct.pack("<Ii", (3 << 17) | (4 << 2) | 2 | 1, 10) + struct.pack("<Ii", 0, 11)  # 2nd invalid
    (tmp_path / "m.aedat").write_bytes(head + special + pol)
    assert read_aedat(tmp_path / "m.aedat").tolist() == [((1 << 31) | 10, 3, 4, 1)]


def test_aedat31_truncated(tmp_path):
    ev = _gesture_like(1000)
    path = tmp_path / "a.aedat"
    write_aedat31(path, ev, packet_events=400)
    start = path.read_bytes().index(b"#!END-HEADER\r\n") + 14
    second = start + 28 + 400 * 8
    raises_at(read_aedat31, cut(path, tmp_path / "b.aedat", second + 28 + 17), second)
    raises_at(read_aedat31, cut(path, tmp_path / "c.aedat", second + 10), second)
    raises_at(read_aedat, cut(path, tmp_path / "d.aedat", 20), 14)  # inside the header


def test_dvs_gesture_labels_roundtrip(tmp_path):
    labels = np.array([(1, 80048239, 85092709), (11, 180675853, 187389051)],
                      dtype=[("label", "<i4"), ("t_start", "<i8"), ("t_end", "<i8")])
    path = tmp_path / "user01_fluorescent_labels.csv"
    write_dvs_gesture_labels(path, labels)
    assert path.read_text().splitlines()[0] == "class,startTime_usec,endTime_usec"
    assert np.array_equal(read_dvs_gesture_labels(path), labels)
    path.write_text("class\tstartTime_usec\tendTime_usec\n1\t5\t9\n\n2 x 3\n")
    err = raises_at(read_dvs_gesture_labels, path, len("class\tstartTime_usec\tendTime_usec\n1\t5\t9\n\n"))
    assert "line 4" in str(err)


# --------------------------------------------------------------------------- Gen1 / NPY
def test_gen1_boxes_variants(tmp_path):
    boxes = np.zeros(3, dtype=BOX_DTYPE)
    boxes["t"] = [250_000, 250_000, 500_000]
    boxes["x"], boxes["w"], boxes["class_id"], boxes["confidence"], boxes["track_id"] = 10.5, 20, [0, 1, 0], 1, [7, 8, 7]
    write_gen1_boxes(tmp_path / "a_bbox.npy", boxes)
    assert np.load(tmp_path / "a_bbox.npy").dtype.names[0] == "t"
    assert np.array_equal(read_gen1_boxes(tmp_path / "a_bbox.npy"), boxes)
    write_gen1_boxes(tmp_path / "b_bbox.npy", boxes, time_field="ts")  # the older variant
    assert np.load(tmp_path / "b_bbox.npy").dtype.names[0] == "ts"
    assert np.array_equal(read_gen1_boxes(tmp_path / "b_bbox.npy"), boxes)
    psee = np.zeros(3, dtype=[("t", "<i8"), ("x", "<f4"), ("y", "<f4"), ("w", "<f4"), ("h", "<f4"),
                              ("class_id", "<u4"), ("track_id", "<u4"), ("class_confidence", "<f4")])
    for name in ("t", "x", "y", "w", "h", "class_id", "track_id"):
        psee[name] = boxes[name]
    psee["class_confidence"] = 1
    np.save(tmp_path / "c_bbox.npy", psee)
    assert np.array_equal(read_gen1_boxes(tmp_path / "c_bbox.npy"), boxes)
    size = (tmp_path / "a_bbox.npy").stat().st_size
    record = 33  # the Gen1 file dtype is packed: 8 + 4 * 4 + 1 + 4 + 4 bytes
    raises_at(read_gen1_boxes, cut(tmp_path / "a_bbox.npy", tmp_path / "d_bbox.npy", size - 5), size - record)


def test_prophesee_npy_roundtrip(tmp_path):
    ev = read_prophesee_dat(real("sample_ncars.dat"))
    write_prophesee_npy(tmp_path / "e.npy", ev)
    assert np.array_equal(read_prophesee_npy(tmp_path / "e.npy"), ev)


# --------------------------------------------------------------------------- HDF5: MVSEC, SHD
def test_mvsec_roundtrip_and_window(tmp_path):
    rng = np.random.default_rng(1)
    n = 500
    t = 1_504_000_000_000_000 + np.sort(rng.integers(0, 2_000_000, n))  # ROS-time microseconds
    ev = make_events(t, rng.integers(0, 346, n), rng.integers(0, 260, n), rng.integers(0, 2, n))
    depth = rng.uniform(2, 80, (3, 260, 346)).astype(np.float32)
    depth[:, :10] = np.nan
    depth_t = t[[100, 250, 400]]
    data, gt = tmp_path / "outdoor_day1_data.hdf5", tmp_path / "outdoor_day1_gt.hdf5"
    write_mvsec_hdf5(data, gt, ev, depth, depth_t)
    rec = read_mvsec_hdf5(data)  # finds the _gt sibling
    assert np.array_equal(rec.events, ev)
    assert np.array_equal(rec.depth, depth, equal_nan=True)
    assert np.array_equal(rec.depth_t, depth_t) and (rec.width, rec.height) == (346, 260)
    assert np.array_equal(np.concatenate(list(iter_mvsec_events(data, chunk_events=77))), ev)
    w = read_mvsec_events_window(data, int(t[100]), int(t[200]))
    assert np.array_equal(w, ev[(ev["t"] >= t[100]) & (ev["t"] < t[200])])
    raises_at(read_mvsec_hdf5, cut(data, tmp_path / "x_data.hdf5", 3000), None)
    (tmp_path / "y_data.hdf5").write_bytes(b"not hdf5 at all")
    raises_at(read_mvsec_hdf5, tmp_path / "y_data.hdf5", 0)


def test_shd_roundtrip(tmp_path):
    rng = np.random.default_rng(2)
    times = [np.sort(rng.uniform(0, 1, k)).astype(np.float32) for k in (5, 0, 40)]
    units = [rng.integers(0, 700, len(x)) for x in times]
    write_shd(tmp_path / "shd_test.h5", times, units, [3, 0, 19], speakers=[1, 2, 3])
    data = read_shd(tmp_path / "shd_test.h5")
    assert len(data) == 3 and data.labels.tolist() == [3, 0, 19] and data.speakers.tolist() == [1, 2, 3]
    for a, b in zip(data.times, times):
        assert np.array_equal(a, b.astype(np.float64))
    for a, b in zip(data.units, units):
        assert np.array_equal(a, b)
    raises_at(read_shd, cut(tmp_path / "shd_test.h5", tmp_path / "c.h5", 2500), None)


def test_shd_units_must_be_channels(tmp_path):
    times = [np.array([0.1, 0.2], np.float32)]
    with pytest.raises(ValueError, match=r"write_shd: sample 0 units span \[3, 700\], expected 0\.\.699"):
        write_shd(tmp_path / "w.h5", times, [np.array([3, 700])], [1])
    write_shd(tmp_path / "ok.h5", times, [np.array([3, 699])], [1])
    assert read_shd(tmp_path / "ok.h5").units[0].tolist() == [3, 699]
    # a file written by another tool with a unit beyond the channels is corrupt, not wrapped
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("spikes/times", (1,), dtype=h5py.vlen_dtype(np.float32))[0] = times[0]
        f.create_dataset("spikes/units", (1,), dtype=h5py.vlen_dtype(np.uint16))[0] = np.array([3, 40000], np.uint16)
        f.create_dataset("labels", data=np.array([1], np.uint16))
    for read in (read_shd, lambda p: read_shd_sample(p, 0)):
        err = raises_at(read, path, None)
        assert "unit 40000" in str(err) and "0..699" in str(err)
