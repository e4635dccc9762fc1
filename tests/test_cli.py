"""The command line: one-line errors, and the demo's outputs end to end (short)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from spikedrive.cli import main


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["demo", "--epochs", "abc"], "argument --epochs"),
        (["demo", "--epochs", "0"], "argument --epochs"),
        (["train", "lr=-1"], "lr"),
        (["train", "epoch=3"], "'epoch'"),
        (["eval", "/no/such/checkpoint.pt"], "/no/such/checkpoint.pt"),
        (["energy", "--model", "no_such_model"], "no_such_model"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_arguments_give_one_line_naming_the_argument(argv, needle, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert len(err.splitlines()) == 1, err
    assert needle in err
    assert "Traceback" not in err


def test_models_lists_registry(capsys):
    assert main(["models", "digits*"]) == 0
    assert capsys.readouterr().out.split() == ["digits_ilif", "digits_snn"]


def test_demo_writes_run_folder_and_ends_with_accuracy(tmp_path: Path):
    out = tmp_path / "demo"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "spikedrive", "demo", "--epochs", "1", "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("test accuracy: ") and last.endswith("%")
    accuracy = float(last.removeprefix("test accuracy: ").removesuffix("%"))
    metrics = json.loads((out / "metrics.json").read_text())
    assert accuracy == pytest.approx(100 * metrics[-1]["val_accuracy"], abs=0.05)
    energy = json.loads((out / "energy.json").read_text())
    assert 0 < energy["snn_energy_pj"] < energy["ann_energy_pj"]
    assert "SNN / ANN" in (out / "energy.txt").read_text()
    assert (out / "firing_rates.png").stat().st_size > 1000
    assert (out / "last.pt").is_file()

    # Running again continues the finished run instead of failing or silently starting over.
    again = subprocess.run(
        [sys.executable, "-m", "spikedrive", "demo", "--epochs", "1", "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.strip().splitlines()[-1] == last
