"""StreamingModel: window-by-window inference equals one multi-step forward."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from helpers import calibrate_bn
from spikedrive.export.commands import run_stream
from spikedrive.export.events_input import event_windows, read_recording
from spikedrive.export.streaming import StreamingModel
from spikedrive.layers import Linear
from spikedrive.models.small import SmallSpikingCNN
from spikedrive.neurons import IF, ILIF, LIF

EVENTS = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "events"


def _real_nmnist() -> Path:
    path = EVENTS / "sample_nmnist.bin"
    if not path.exists():
        pytest.skip(f"real recording {path} is not available (shared/testdata/events missing)")
    return path


def _written_nmnist(tmp_path: Path) -> Path:
    """An N-MNIST .bin written by the library's writer: 3,000 events over 0.3 s on 34x34."""
    from spikedrive.data.events import EVENT_DTYPE
    from spikedrive.data.events.nmnist import write_nmnist

    rng = np.random.default_rng(0)
    events = np.zeros(3000, dtype=EVENT_DTYPE)
    events["t"] = np.sort(rng.integers(0, 300_000, 3000))
    events["x"], events["y"] = rng.integers(0, 34, 3000), rng.integers(0, 34, 3000)
    events["p"] = rng.integers(0, 2, 3000)
    path = tmp_path / "written.bin"
    write_nmnist(path, events)
    return path


def _mlp() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(Linear(6, 8), LIF(tau=2.0), Linear(8, 8), IF(v_threshold=0.5, v_reset=None),
                        Linear(8, 4), ILIF(D=2)).eval()
    with torch.no_grad():  # strong enough that every layer fires
        for layer in (net[0], net[2], net[4]):
            layer.module.weight.mul_(3.0)
            layer.module.bias.add_(0.4)
    return net


def test_windows_of_any_length_equal_the_multistep_forward():
    net = _mlp()
    x = torch.rand(9, 3, 6) * 2
    with torch.no_grad():
        want = net(x)
    assert 0.05 < float((want > 0).float().mean()) < 0.95
    stream = StreamingModel(net)
    got = torch.cat([stream(x[:1]), stream(x[1:4]), stream(x[4:5]), stream(x[5:])])
    assert torch.equal(got, want)
    # a fresh start after reset(), not a continuation
    stream.reset()
    assert torch.equal(torch.cat([stream(x[i:i + 1]) for i in range(9)]), want)
    assert set(stream.state) == {"1", "3", "5"} and stream.state["1"].shape == (3, 8)


def test_without_reset_state_carries_over():
    net = _mlp()
    x = torch.rand(4, 3, 6) * 2
    stream = StreamingModel(net)
    first = stream(x)
    with torch.no_grad():
        want_second = net(torch.cat([x, x]))[4:]
    assert torch.equal(stream(x), want_second)
    assert not torch.equal(want_second, first)  # the carried membrane changed the answer


def test_model_is_unchanged_between_calls():
    net = _mlp()
    stream = StreamingModel(net)
    stream(torch.rand(2, 1, 6))
    assert "forward" not in vars(net[1])
    x = torch.rand(3, 1, 6)
    with torch.no_grad():
        assert torch.equal(net(x), net(x))


def test_mean_readout_of_small_cnn_equals_whole_sequence_logits():
    torch.manual_seed(0)
    model = SmallSpikingCNN(T=6, in_channels=2, image_size=8, channels=(4, 4), pool_after=(False, True), hidden=8,
                            spiking_input=True)
    x = (torch.rand(6, 2, 2, 8, 8) < 0.3).float()
    calibrate_bn(model, x)
    with torch.no_grad():
        want = model(x)
    stream = StreamingModel(model, readout="mean")
    for lo, hi in ((0, 1), (1, 3), (3, 6)):
        got = stream(x[lo:hi])
        with torch.no_grad():
            torch.testing.assert_close(got, model(x[:hi]), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


def test_batch_change_without_reset_is_refused():
    stream = StreamingModel(_mlp())
    stream(torch.rand(2, 3, 6))
    with pytest.raises(ValueError, match=r"neuron '1' carries state of shape \(3, 8\) but the window gives "
                                         r"\(5, 8\); call reset\(\)"):
        stream(torch.rand(2, 5, 6))


def test_a_neuron_called_twice_is_refused():
    lif = LIF()
    net = nn.Sequential(Linear(3, 3), lif, Linear(3, 3), lif)
    with pytest.raises(RuntimeError, match=r"neuron '1' is called more than once per forward"):
        StreamingModel(net)(torch.rand(2, 1, 3))
    assert "forward" not in vars(lif)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"readout must be 'none' or 'mean', got 'last'"):
        StreamingModel(_mlp(), readout="last")
    with pytest.raises(ValueError, match=r"has no stateful neuron"):
        StreamingModel(nn.Sequential(Linear(2, 2)))
    with pytest.raises(ValueError, match=r"window must be a tensor \[T_w >= 1, B, \.\.\.\], got \(0, 2, 6\)"):
        StreamingModel(_mlp())(torch.rand(0, 2, 6))


def test_recorded_nmnist_file_streams_like_the_whole_recording():
    events, sensor = read_recording(_real_nmnist())
    assert len(events) == 4325 and sensor == (34, 34)
    windows = [f for _, _, _, f in event_windows(events, sensor, 34, 50_000, 2)]
    assert len(windows) == 7 and windows[0].shape == (2, 1, 2, 34, 34)
    torch.manual_seed(0)
    model = SmallSpikingCNN(T=2, in_channels=2, image_size=34, channels=(4, 4), pool_after=(True, True), hidden=8,
                            spiking_input=True)
    seq = torch.cat(windows)
    assert int(seq.sum()) > 100  # the frames hold the recording's events
    calibrate_bn(model, seq)
    stream = StreamingModel(model, readout="mean")
    for w in windows:
        got = stream(w)
    with torch.no_grad():
        torch.testing.assert_close(got, model(seq), rtol=1e-6, atol=1e-6)


def test_stream_command_prints_windows_and_verifies(capsys):
    code = run_stream(SimpleNamespace(events=str(_real_nmnist()), checkpoint=None, model="ndigits_snn",
                                      seed=0, window_us=100_000, steps_per_window=1, verify=True))
    out = capsys.readouterr().out
    assert code == 0
    assert "4325 events, sensor 34x34 -> model input 34x34" in out
    assert out.count("window ") == 4 and "latency" in out
    diff = float(out.rsplit("max |diff| = ", 1)[1].split()[0])
    assert diff < 1e-5


def test_stream_command_on_a_written_nmnist_file(tmp_path, capsys):
    code = run_stream(SimpleNamespace(events=str(_written_nmnist(tmp_path)), checkpoint=None, model="ndigits_snn",
                                      seed=0, window_us=100_000, steps_per_window=1, verify=True))
    out = capsys.readouterr().out
    assert code == 0 and "3000 events" in out and out.count("window ") == 3
    assert float(out.rsplit("max |diff| = ", 1)[1].split()[0]) < 1e-5


def test_stream_command_refuses_an_image_model(tmp_path):
    with pytest.raises(ValueError, match=r"must take binary event frames .* got SmallSpikingCNN"):
        run_stream(SimpleNamespace(events=str(_written_nmnist(tmp_path)), checkpoint=None, model="digits_snn",
                                   seed=0, window_us=1000, steps_per_window=1, verify=False))


def test_unknown_recording_is_refused(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello world, not events\n" * 10)
    with pytest.raises(ValueError, match=r"notes.txt' is of no known format; expected an AEDAT"):
        read_recording(bad)
    with pytest.raises(FileNotFoundError, match=r"no event file at .*missing.bin"):
        read_recording(tmp_path / "missing.bin")
