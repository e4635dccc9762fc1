"""to_onnx: the T-unrolled inference graph, run by onnxruntime, equals PyTorch."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from helpers import calibrate_bn
from spikedrive.export.onnx_export import check_onnx, to_onnx
from spikedrive.models.small import SmallSpikingCNN


def _model() -> tuple[SmallSpikingCNN, torch.Tensor]:
    torch.manual_seed(0)
    model = SmallSpikingCNN(T=3, channels=(4, 6), pool_after=(False, True), hidden=16)
    x = torch.rand(4, 1, 8, 8)
    calibrate_bn(model, x)
    return model, x


def test_onnxruntime_equals_pytorch(tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="the export extra (onnxruntime) is not installed")
    pytest.importorskip("onnxscript", reason="the export extra (onnxscript) is not installed")
    model, x = _model()
    path = to_onnx(model, x[:1], tmp_path / "m.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (x[1:], x[:1]):  # the batch axis is free, even though the sample had one image
        got = session.run(None, {session.get_inputs()[0].name: batch.numpy()})[0]
        with torch.no_grad():
            want = model(batch).numpy()
        assert got.shape == (batch.shape[0], 10)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert check_onnx(model, x[:2], path) < 1e-5
    assert model.features[2].backend == "auto"  # the export's reference backend was given back


@pytest.mark.slow  # a second dynamo export: about 4 s alone, 10+ s on a loaded machine
def test_sequence_model_exports_with_free_batch_axis(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    torch.manual_seed(0)
    model = SmallSpikingCNN(T=3, in_channels=2, image_size=8, channels=(4,), pool_after=(True,), hidden=8,
                            spiking_input=True)
    x = (torch.rand(3, 3, 2, 8, 8) < 0.3).float()
    calibrate_bn(model, x)
    path = to_onnx(model, x[:, :2], tmp_path / "seq.onnx", batch_dim=1)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, model(x).numpy(), rtol=1e-5, atol=1e-5)


def test_bad_batch_dim_is_named(tmp_path):
    pytest.importorskip("onnxscript")
    model, x = _model()
    with pytest.raises(ValueError, match=r"batch_dim must index one of sample_input's 4 axes or be None, got 7"):
        to_onnx(model, x, tmp_path / "bad.onnx", batch_dim=7)
    assert not (tmp_path / "bad.onnx").exists()


def test_missing_extra_names_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)
    model, x = _model()
    with pytest.raises(ImportError, match=r"to_onnx needs the optional package 'onnx'.*pip install 'spikedrive\[export\]'"):
        to_onnx(model, x[:1], tmp_path / "m.onnx")


def test_export_and_check_leave_a_training_model_untouched(tmp_path):
    pytest.importorskip("onnxruntime", reason="the export extra (onnxruntime) is not installed")
    pytest.importorskip("onnxscript", reason="the export extra (onnxscript) is not installed")
    model, x = _model()
    model.train()
    model.features[1].eval()  # a frozen batch norm inside a training model keeps its own mode
    before = {k: v.clone() for k, v in model.state_dict().items()}
    to_onnx(model, x[:1], tmp_path / "m.onnx", check=True)
    check_onnx(model, x[:2], tmp_path / "m.onnx")
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key  # no batch-norm statistics moved
    assert model.training and not model.features[1].training
