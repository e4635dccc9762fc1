"""What a first-time user meets: readable plots, sensor sizes from headers, wrong-format files.

Regression tests for three defects: plot titles in absolute Unix time that overlapped and no
polarity legend; readers that could not say the sensor size their file's header gives; readers
that decoded another format's file as garbage (or called it "truncated") instead of naming it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import spikedrive.data.events as E
from spikedrive.data.events.aedat import read_aedat
from spikedrive.data.events.aedat2 import iter_aedat2, read_aedat2, write_aedat2
from spikedrive.data.events.aedat4 import read_aedat4
from spikedrive.data.events.aedat31 import read_aedat31, write_aedat31
from spikedrive.data.events.dtype import make_events
from spikedrive.data.events.gen1 import BOX_DTYPE, read_gen1_boxes, write_gen1_boxes
from spikedrive.data.events.mvsec import iter_mvsec_events, read_mvsec_hdf5, write_mvsec_hdf5
from spikedrive.data.events.nmnist import iter_nmnist, read_nmnist, write_nmnist
from spikedrive.data.events.plot import plot_event_frames
from spikedrive.data.events.prophesee import iter_prophesee_dat, read_prophesee_dat, write_prophesee_dat
from spikedrive.data.events.prophesee_npy import read_prophesee_npy, write_prophesee_npy
from spikedrive.data.events.shd import read_shd, read_shd_sample, write_shd

DATA = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "events"


def real(name: str) -> Path:
    path = DATA / name
    if not path.is_file():
        pytest.skip(f"real recording {path} is not available (shared/testdata/events missing)")
    return path


# --------------------------------------------------------------------------- 1. plots
_T0 = 1_700_000_000_000_000  # a DV-style absolute Unix time in us


def _stream(duration_us: int, n: int = 400) -> np.ndarray:
    rng = np.random.default_rng(1)
    t = np.sort(rng.integers(0, duration_us, n))
    t[0], t[-1] = 0, duration_us - 1  # the bins then span exactly [0, duration)
    return make_events(_T0 + t, rng.integers(0, 40, n), rng.integers(0, 30, n), np.arange(n) % 2)


def _titles(fig) -> list[str]:
    return [ax.get_title() for ax in fig.axes]


def test_plot_titles_are_relative_times_in_ms(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    path = tmp_path / "f.png"
    fig = plot_event_frames(_stream(200_000), (40, 30), n_frames=4, path=path, title="demo")
    assert _titles(fig) == ["0-50 ms", "50-100 ms", "100-150 ms", "150-200 ms"]
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_titles_switch_to_seconds_for_long_streams():
    fig = plot_event_frames(_stream(3_000_000), (40, 30), n_frames=3)
    assert _titles(fig) == ["0-1 s", "1-2 s", "2-3 s"]
    fig = plot_event_frames(_stream(2_000_000), (40, 30), n_frames=6)
    assert _titles(fig) == ["0-0.33 s", "0.33-0.67 s", "0.67-1 s", "1-1.33 s", "1.33-1.67 s", "1.67-2 s"]


def test_plot_titles_do_not_overlap(tmp_path):
    fig = plot_event_frames(_stream(200_000), (40, 30), n_frames=8, path=tmp_path / "f.png")
    renderer = fig.canvas.get_renderer()
    boxes = [ax.title.get_window_extent(renderer) for ax in fig.axes]
    for left, right in zip(boxes[:-1], boxes[1:]):
        assert left.x1 <= right.x0, (left, right)


def test_plot_has_polarity_legend(tmp_path):
    from matplotlib.colors import to_rgb

    fig = plot_event_frames(_stream(200_000), (40, 30), n_frames=4, path=tmp_path / "f.png")
    assert len(fig.legends) == 1
    legend = fig.legends[0]
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == ["ON", "OFF"]
    colours = [to_rgb(h.get_facecolor()) for h in legend.legend_handles]
    assert colours == [(1.0, 0.0, 0.0), (0.0, 0.0, 1.0)]  # ON red, OFF blue, as polarity_rgb


# --------------------------------------------------------------------------- 2. sensor sizes
def test_sensor_size_of_real_recordings():
    assert E.sensor_size_of(real("sample.aedat4")) == (320, 240)  # DV's sizeX / sizeY
    assert E.sensor_size_of(real("sample_aedat_header.aedat")) == (346, 260)  # AEChip Davis346red
    assert E.sensor_size_of(real("sample_nmnist.bin")) == (34, 34)
    assert E.sensor_size_of(real("sample_ncars.dat")) is None  # its header has no Width/Height
    assert E.aedat_sensor_size(real("sample.aedat4")) == (320, 240)
    assert E.nmnist_sensor_size(real("sample_nmnist.bin")) == (34, 34)
    assert E.prophesee_dat_sensor_size(real("sample_ncars.dat")) is None


def test_sensor_size_of_written_files(tmp_path):
    ev = make_events([0, 5, 9], [1, 2, 3], [4, 5, 6], [0, 1, 1])
    write_prophesee_dat(tmp_path / "a.dat", ev, width=120, height=100)
    assert E.sensor_size_of(tmp_path / "a.dat") == (120, 100)
    assert E.prophesee_dat_sensor_size(tmp_path / "a.dat") == (120, 100)
    # Metavision's newer header spelling: one geometry line
    raw = (tmp_path / "a.dat").read_bytes()
    records = raw[raw.index(b"% Width 120\n") + len(b"% Width 120\n"):]  # type, size, events
    (tmp_path / "g.dat").write_bytes(b"% Version 2\n% geometry 640x480\n" + records)
    assert E.sensor_size_of(tmp_path / "g.dat") == (640, 480)
    assert np.array_equal(read_prophesee_dat(tmp_path / "g.dat"), ev)
    write_aedat31(tmp_path / "b.aedat", ev, source="DVS128")
    assert E.sensor_size_of(tmp_path / "b.aedat") == (128, 128)
    write_aedat31(tmp_path / "c.aedat", ev, source="DAVIS346B")
    assert E.aedat_sensor_size(tmp_path / "c.aedat") == (346, 260)
    write_aedat2(tmp_path / "d.aedat", ev, chip="davis240")
    assert E.sensor_size_of(tmp_path / "d.aedat") == (240, 180)
    write_mvsec_hdf5(tmp_path / "m_data.hdf5", tmp_path / "m_gt.hdf5", ev,
                     np.ones((1, 2, 3), np.float32), [0])
    assert E.sensor_size_of(tmp_path / "m_data.hdf5") == (346, 260)
    assert E.mvsec_sensor_size(tmp_path / "m_data.hdf5") == (346, 260)
    write_shd(tmp_path / "s.h5", [np.array([0.1, 0.2])], [np.array([3, 699])], [1])
    assert E.sensor_size_of(tmp_path / "s.h5") == (700, 1)
    assert E.shd_sensor_size(tmp_path / "s.h5") == (700, 1)
    write_prophesee_npy(tmp_path / "e.npy", ev)
    assert E.sensor_size_of(tmp_path / "e.npy") is None  # Metavision NPY stores no size
    write_nmnist(tmp_path / "n.bin", ev)
    assert E.sensor_size_of(tmp_path / "n.bin") == (34, 34)


# --------------------------------------------------------------------------- 3. wrong formats
_EV = make_events(np.arange(40) * 10, np.arange(40) % 34, np.arange(40) % 30, np.arange(40) % 2)


def _write_all(d: Path) -> dict[str, Path]:
    """One small file of every format; 40 N-MNIST events = 200 bytes, a multiple of 8."""
    files = {
        "N-MNIST": d / "n.bin", "Prophesee DAT": d / "p.dat", "AEDAT 2.0": d / "a2.aedat",
        "AEDAT 3.1": d / "a3.aedat", "Prophesee NPY": d / "e.npy", "Gen1 box NPY": d / "b.npy",
        "MVSEC": d / "m_data.hdf5", "SHD": d / "s.h5",
    }
    write_nmnist(files["N-MNIST"], _EV)
    write_prophesee_dat(files["Prophesee DAT"], _EV)
    write_aedat2(files["AEDAT 2.0"], _EV)
    write_aedat31(files["AEDAT 3.1"], _EV)
    write_prophesee_npy(files["Prophesee NPY"], _EV)
    boxes = np.zeros(2, BOX_DTYPE)
    boxes["w"] = boxes["h"] = 5
    write_gen1_boxes(files["Gen1 box NPY"], boxes)
    write_mvsec_hdf5(files["MVSEC"], d / "m_gt.hdf5", _EV, np.ones((1, 2, 3), np.float32), [0])
    write_shd(files["SHD"], [np.array([0.1])], [np.array([3])], [1])
    aedat4 = DATA / "sample.aedat4"
    if aedat4.is_file():
        files["AEDAT 4.0"] = aedat4
    return files


# reader -> (what it reads, the file kinds it accepts)
_READERS = {
    "read_nmnist": (read_nmnist, "N-MNIST", {"N-MNIST"}),
    "iter_nmnist": (lambda p: next(iter_nmnist(p)), "N-MNIST", {"N-MNIST"}),
    "read_prophesee_dat": (read_prophesee_dat, "Prophesee DAT", {"Prophesee DAT"}),
    "iter_prophesee_dat": (lambda p: next(iter_prophesee_dat(p)), "Prophesee DAT", {"Prophesee DAT"}),
    "read_aedat": (read_aedat, "AEDAT", {"AEDAT 2.0", "AEDAT 3.1", "AEDAT 4.0"}),
    "read_aedat2": (read_aedat2, "AEDAT 2.0", {"AEDAT 2.0"}),
    "iter_aedat2": (lambda p: next(iter_aedat2(p)), "AEDAT 2.0", {"AEDAT 2.0"}),
    "read_aedat31": (read_aedat31, "AEDAT 3", {"AEDAT 3.1"}),
    "read_aedat4": (read_aedat4, "AEDAT 4.0", {"AEDAT 4.0"}),
    "read_prophesee_npy": (read_prophesee_npy, "Prophesee NPY", {"Prophesee NPY"}),
    "read_gen1_boxes": (read_gen1_boxes, "Gen1 box NPY", {"Gen1 box NPY"}),
    "read_mvsec_hdf5": (read_mvsec_hdf5, "MVSEC", {"MVSEC"}),
    "iter_mvsec_events": (lambda p: next(iter_mvsec_events(p)), "MVSEC", {"MVSEC"}),
    "read_shd": (read_shd, "SHD", {"SHD"}),
    "read_shd_sample": (lambda p: read_shd_sample(p, 0), "SHD", {"SHD"}),
}


@pytest.fixture(scope="module")
def all_formats(tmp_path_factory) -> dict[str, Path]:
    return _write_all(tmp_path_factory.mktemp("formats"))


@pytest.mark.parametrize("reader", sorted(_READERS))
def test_each_reader_names_the_format_it_was_given(all_formats, reader):
    fn, expected, accepts = _READERS[reader]
    for kind, path in all_formats.items():
        if kind in accepts:
            continue
        with pytest.raises(ValueError) as info:
            fn(path)
        msg = str(info.value)
        assert isinstance(info.value, E.WrongFormatError), f"{reader} on {kind}: {msg}"
        assert msg.startswith(f"{reader}: '{path}' is not "), msg
        assert expected in msg and kind in msg, f"{reader} on {kind}: {msg}"


def test_readers_still_read_their_own_format(all_formats):
    for name, (fn, _, accepts) in _READERS.items():
        for kind in accepts & set(all_formats):
            fn(all_formats[kind])  # no error


def test_nmnist_message_for_a_prophesee_file_and_out_of_range_records(tmp_path):
    err = pytest.raises(ValueError, read_nmnist, real("sample_ncars.dat")).value
    assert str(err) == (
        f"read_nmnist: '{real('sample_ncars.dat')}' is not an N-MNIST file: it starts with a "
        "Prophesee DAT '% ' text header"
    )
    # no signature, whole 5-byte records, but x = 200 cannot be on the 34 x 34 sensor
    (tmp_path / "x.bin").write_bytes(bytes([3, 4, 0, 0, 1, 200, 5, 0, 0, 2]))
    with pytest.raises(E.WrongFormatError, match=r"^read_nmnist: '.*x\.bin' does not look like "
                       r"N-MNIST: record 1 at byte 5 has x=200, y=5 outside 34x34"):
        read_nmnist(tmp_path / "x.bin", sensor_size=E.NMNIST_SENSOR_SIZE)
    with pytest.raises(E.WrongFormatError, match="iter_nmnist: .* outside 34x34"):
        next(iter_nmnist(tmp_path / "x.bin", sensor_size=(34, 34)))
    # N-Caltech101 shares the record format on larger sensors: the default reads 8-bit x, y
    assert read_nmnist(tmp_path / "x.bin")["x"].tolist() == [3, 200]
    assert E.nmnist_sensor_size(tmp_path / "x.bin") is None  # not N-MNIST's fixed 34 x 34
    # odd size: records that fit 34 x 34 are a cut N-MNIST file, others are not N-MNIST
    (tmp_path / "cut.bin").write_bytes(bytes([3, 4, 0, 0, 1, 5, 6, 0]))
    err = pytest.raises(E.CorruptFileError, read_nmnist, tmp_path / "cut.bin").value
    assert not isinstance(err, E.WrongFormatError) and "truncated record at byte 5" in str(err)
    (tmp_path / "odd.bin").write_bytes(bytes([99, 4, 0, 0, 1, 5, 6, 0]))
    with pytest.raises(E.WrongFormatError, match=r"does not look like N-MNIST: its size is not a "
                       r"multiple of 5-byte records"):
        read_nmnist(tmp_path / "odd.bin")


def test_prophesee_dat_message_for_an_nmnist_file():
    path = real("sample_nmnist.bin")
    err = pytest.raises(ValueError, read_prophesee_dat, path).value
    assert isinstance(err, E.WrongFormatError)
    assert str(err).startswith(f"read_prophesee_dat: '{path}' is not a Prophesee DAT file: it has no")
    assert "N-MNIST" in str(err) and "truncated" not in str(err)


def test_sniff_format(all_formats):
    got = {kind: E.sniff_format(p) for kind, p in all_formats.items()}
    want = {"N-MNIST": None, "Prophesee DAT": "prophesee_dat", "AEDAT 2.0": "aedat2",
            "AEDAT 3.1": "aedat3", "AEDAT 4.0": "aedat4", "Prophesee NPY": "npy",
            "Gen1 box NPY": "npy", "MVSEC": "hdf5", "SHD": "hdf5"}
    assert got == {k: want[k] for k in got}
