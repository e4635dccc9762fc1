"""The command line: one-line errors, and the demo's outputs end to end (short)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from spikedrive.analysis import energy_report
from spikedrive.cli import main
from spikedrive.data.sequence import time_major_collate
from spikedrive.engine import build_datasets, load_config, load_model, train


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["demo", "--epochs", "abc"], "argument --epochs"),
        (["demo", "--epochs", "0"], "argument --epochs"),
        (["train", "lr=-1"], "lr"),
        (["train", "epoch=3"], "'epoch'"),
        (["eval", "/no/such/checkpoint.pt"], "/no/such/checkpoint.pt"),
        (["energy", "--model", "no_such_model"], "no_such_model"),
        (["energy", "--checkpoint", "/no/such/last.pt"], "/no/such/last.pt"),
        (["train", "device=cuda"], "device='cuda'"),  # on a machine without CUDA (patched below)
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_arguments_give_one_line_naming_the_argument(argv, needle, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
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
    *_, val_line, last = proc.stdout.strip().splitlines()
    metrics = json.loads((out / "metrics.json").read_text())
    for line, split in ((val_line, "val"), (last, "test")):  # each split under its own name
        assert line.startswith(f"{split} accuracy: ") and line.endswith("%")
        accuracy = float(line.removeprefix(f"{split} accuracy: ").removesuffix("%"))
        assert accuracy == pytest.approx(100 * metrics[-1][f"{split}_accuracy"], abs=0.05)
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


def test_energy_of_a_checkpoint_measures_it_on_its_recipes_dataset(tmp_path: Path, capsys):
    # A tiny event-frame run: time-major batches [T, B, 2, 34, 34] that the digits would not fit.
    (tmp_path / "ndigits").mkdir()
    cfg = load_config(None, [
        f"out_dir={tmp_path / 'run'}", "model=ndigits_snn", "model_kwargs.T=2", "model_kwargs.channels=[4, 4, 4]",
        "model_kwargs.hidden=16", "dataset=ndigits", f"data_root={tmp_path / 'ndigits'}", "dataset_kwargs.T=2",
        "dataset_kwargs.n_per_class=2", "dataset_kwargs.n_test_per_class=1", "epochs=1", "batch_size=4",
        "max_steps_per_epoch=1", "warmup_epochs=0", "progress=false", "device=cpu", "energy_report=false"])
    train(cfg)
    checkpoint = tmp_path / "run" / "last.pt"
    assert main(["energy", "--checkpoint", str(checkpoint), "--batch", "6"]) == 0
    out = capsys.readouterr().out

    _, val, _ = build_datasets(cfg)
    x, _ = time_major_collate([val[i] for i in range(6)])
    expected = energy_report(load_model(checkpoint), x, batch_dim=1).table()
    assert out.strip() == expected.strip()
    assert "(6 samples)" in out  # the batch lies in dim 1 of time-major input

    assert main(["energy", "--checkpoint", str(checkpoint), "--model", "digits_snn"]) == 1
    assert "conflicts" in capsys.readouterr().err


def test_overrides_may_follow_options():
    """``detect predict CKPT --out D key=value`` used to fail with 'unrecognized arguments'."""
    from spikedrive.cli import _parse

    args = _parse(["detect", "predict", "run/best.pt", "--out", "pngs", "data_root=/data/gen1", "seed=3"])
    assert args.checkpoint == "run/best.pt" and args.out == "pngs"
    assert args.overrides == ["data_root=/data/gen1", "seed=3"]
    args = _parse(["depth", "eval", "run/best.pt", "data_root=/d"])
    assert args.overrides == ["data_root=/d"]


def test_a_stray_argument_after_options_is_still_refused(capsys):
    with pytest.raises(SystemExit):
        main(["detect", "predict", "run/best.pt", "--out", "pngs", "stray"])
    assert "unrecognized arguments: stray" in capsys.readouterr().err
