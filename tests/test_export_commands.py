"""Bodies of ``spikedrive export`` on a checkpoint."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from helpers import calibrate_bn
from spikedrive.engine.checkpoint import save_checkpoint
from spikedrive.export.commands import run_export
from spikedrive.models import create_model

pytest.importorskip("nir", reason="the export extra (nir) is not installed")

KWARGS = {"T": 2, "num_classes": 10, "channels": [4, 6], "pool_after": [False, True], "hidden": 8}


@pytest.fixture()
def checkpoint(tmp_path):
    torch.manual_seed(0)
    model = create_model("digits_snn", **KWARGS)
    calibrate_bn(model, torch.rand(8, 1, 8, 8))
    state = {"model": model.state_dict(), "optimizer": {}, "scheduler": {}, "epoch": 1, "global_step": 1,
             "config": {"model": "digits_snn", "model_kwargs": KWARGS}, "rng": [], "history": []}
    return save_checkpoint(state, tmp_path / "best.pt")


def test_export_nir_reads_back_equal(checkpoint, tmp_path, capsys):
    out = tmp_path / "m.nir"
    assert run_export(SimpleNamespace(checkpoint=str(checkpoint), out=str(out), dt=1e-4, batch_size=1)) == 0
    text = capsys.readouterr().out
    assert out.is_file() and "NIR, dt = 0.0001 s per step" in text
    assert float(text.rsplit("max |diff| = ", 1)[1].split()[0]) < 1e-5


@pytest.mark.slow  # a dynamo export like test_export_onnx's: about 4 s alone, 10+ s on a loaded machine
def test_export_onnx_checks_with_onnxruntime(checkpoint, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    out = tmp_path / "m.onnx"
    assert run_export(SimpleNamespace(checkpoint=str(checkpoint), out=str(out), dt=1e-4, batch_size=1)) == 0
    text = capsys.readouterr().out
    assert out.is_file() and "ONNX, T unrolled, input [B, 1, 8, 8]" in text
    assert float(text.rsplit("max |diff| = ", 1)[1].split()[0]) < 1e-5


def test_export_refuses_other_suffixes(checkpoint, tmp_path):
    with pytest.raises(ValueError, match=r"--out must end in .nir or .onnx, got '.*m.pt'"):
        run_export(SimpleNamespace(checkpoint=str(checkpoint), out=str(tmp_path / "m.pt"), dt=1e-4, batch_size=1))
