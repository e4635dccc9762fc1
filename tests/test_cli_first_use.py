"""First-use defects of the command line: runs resumed with other options, energy measured on the
wrong input or untrained weights without a word, foreign files, typos in model arguments, and
eval naming its splits. Every run here is tiny (a couple of steps on the embedded digits)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import spikedrive.engine as engine
from spikedrive import create_model
from spikedrive.analysis import energy_report
from spikedrive.cli import main
from spikedrive.data.sequence import time_major_collate
from spikedrive.engine import (
    build_datasets,
    build_task,
    evaluate,
    load_checkpoint,
    load_config,
    load_model,
    make_eval_loader,
    train,
)
from spikedrive.engine.report import write_energy_report
from spikedrive.models import registry

TINY = ["epochs=1", "max_steps_per_epoch=2", "batch_size=16", "warmup_epochs=0", "progress=false", "device=cpu",
        "energy_report=false"]


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``(exit status, stdout, stderr)`` of ``spikedrive <argv>``."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def tiny_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo command with its real logic, but two steps an epoch and no energy report."""
    real = engine.TrainConfig

    def tiny(**kwargs):
        extra = dict(max_steps_per_epoch=2, warmup_epochs=0, progress=False, device="cpu", energy_report=False)
        return real(**{**extra, **kwargs})

    monkeypatch.setattr(engine, "TrainConfig", tiny)


# --- 1. the demo never resumes a run made with other options ----------------------------------

def test_demo_with_other_epochs_refuses_and_keeps_the_old_run(tiny_demo, tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo"
    assert run_cli(["demo", "--epochs", "1", "--out", str(out)], capsys)[0] == 0
    before = (out / "last.pt").read_bytes()

    code, stdout, err = run_cli(["demo", "--epochs", "2", "--out", str(out)], capsys)
    assert code == 1, stdout
    assert len(err.strip().splitlines()) == 1, err
    assert "holds a run with epochs=1, seed=0" in err
    assert "epochs=2" in err  # what was asked for
    assert "--fresh" in err and "--out" in err
    assert (out / "last.pt").read_bytes() == before  # nothing trained over it
    assert load_checkpoint(out / "last.pt")["epoch"] == 1


def test_demo_with_another_seed_refuses(tiny_demo, tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo"
    assert run_cli(["demo", "--epochs", "1", "--out", str(out)], capsys)[0] == 0
    code, _, err = run_cli(["demo", "--epochs", "1", "--seed", "5", "--out", str(out)], capsys)
    assert code == 1
    assert "holds a run with epochs=1, seed=0" in err and "seed=5" in err
    assert "--epochs 1 --seed 0" in err  # how to continue the run that is there


def test_demo_fresh_starts_over_and_same_options_continue(tiny_demo, tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo"
    assert run_cli(["demo", "--epochs", "1", "--out", str(out)], capsys)[0] == 0
    code, stdout, err = run_cli(["demo", "--epochs", "2", "--seed", "3", "--fresh", "--out", str(out)], capsys)
    assert code == 0, err
    state = load_checkpoint(out / "last.pt")
    assert (state["epoch"], state["config"]["seed"], state["config"]["epochs"]) == (2, 3, 2)
    assert [r["epoch"] for r in state["history"]] == [1, 2]  # a new run, not the old one extended

    # The same options again: the finished run is continued (nothing to do), not refused.
    code, again, err = run_cli(["demo", "--epochs", "2", "--seed", "3", "--out", str(out)], capsys)
    assert code == 0, err
    assert load_checkpoint(out / "last.pt")["epoch"] == 2
    assert again.strip().splitlines()[-1] == stdout.strip().splitlines()[-1]


# --- 2. energy: each model on its own input, a fixed number of samples, loud when untrained ----

def test_energy_of_ndigits_snn_feeds_event_frames(tmp_path: Path, capsys) -> None:
    (tmp_path / "nd").mkdir()  # a named data_root must exist; the set is generated into it
    overrides = [f"data_root={tmp_path / 'nd'}", "dataset_kwargs.T=2", "dataset_kwargs.n_per_class=2",
                 "dataset_kwargs.n_test_per_class=1", "model_kwargs.T=2", "model_kwargs.channels=[4, 4, 4]",
                 "model_kwargs.hidden=8"]
    code, out, err = run_cli(["energy", "--model", "ndigits_snn", "--samples", "5", *overrides], capsys)
    assert code == 0, err
    assert "WARNING: untrained weights (random init)" in err and "--checkpoint" in err

    cfg = load_config(None, ["model=ndigits_snn", "dataset=ndigits", *overrides])
    torch.manual_seed(cfg.seed)
    model = create_model("ndigits_snn", **cfg.model_kwargs)
    val = build_datasets(cfg)[1]
    x, _ = time_major_collate([val[i] for i in range(5)])  # [T=2, B=5, 2, 34, 34]
    assert out.strip() == energy_report(model, x, batch_dim=1).table().strip()
    assert "(5 samples)" in out


def test_energy_of_digits_snn_measures_samples_over_several_batches(capsys) -> None:
    code, out, err = run_cli(["energy", "--model", "digits_snn", "--samples", "40", "eval_batch_size=16"], capsys)
    assert code == 0, err
    assert err.strip().splitlines()[0].startswith("WARNING: untrained weights (random init): energy and firing rates")

    cfg = load_config(None, [])
    torch.manual_seed(cfg.seed)
    model = create_model("digits_snn", **cfg.model_kwargs)
    val = build_datasets(cfg)[1]
    x = torch.stack([val[i][0] for i in range(40)])
    assert out.strip() == energy_report(model, x).table().strip()
    assert "(40 samples)" in out


def test_energy_of_a_model_without_a_known_input_names_it(monkeypatch, capsys) -> None:
    monkeypatch.setitem(registry._MODELS._entries, "bare_test_net", lambda **kw: nn.Linear(3, 2))
    code, _, err = run_cli(["energy", "--model", "bare_test_net"], capsys)
    assert code == 1
    assert len(err.strip().splitlines()) == 1, err
    assert "'bare_test_net'" in err and "input" in err and "--checkpoint" in err


def test_write_energy_report_measures_a_fixed_number_of_samples(tmp_path: Path) -> None:
    cfg = load_config(None, ["eval_batch_size=8"])
    torch.manual_seed(0)
    model = create_model("digits_snn", T=2, channels=(4, 4), hidden=8)
    val = build_datasets(cfg)[1]
    loader = make_eval_loader(val, cfg)
    report = write_energy_report(model, loader, tmp_path, task=build_task(cfg), samples=20)
    assert report.samples == 20
    expected = energy_report(model, torch.stack([val[i][0] for i in range(20)]))
    assert report.snn_energy_pj == pytest.approx(expected.snn_energy_pj, rel=1e-9)
    assert [n.rate for n in report.neurons] == pytest.approx([n.rate for n in expected.neurons], rel=1e-9)
    text = (tmp_path / "energy.txt").read_text()
    assert "(20 samples)" in text

    everything = write_energy_report(model, loader, tmp_path, task=build_task(cfg), samples=100_000)
    assert everything.samples == len(val)  # all there is, and the report says so
    assert f"note: measured on all {len(val)} samples the data holds (100000 asked for)" in everything.table()


# --- 3. a file that is not a checkpoint: one line ----------------------------------------------

def test_eval_of_a_pickled_module_says_it_is_not_a_checkpoint(tmp_path: Path, capsys) -> None:
    path = tmp_path / "x.pt"
    torch.save(nn.Linear(2, 2), path)
    for argv in (["eval", str(path)], ["energy", "--checkpoint", str(path)]):
        code, _, err = run_cli(argv, capsys)
        assert code == 1
        assert len(err.strip().splitlines()) == 1, err
        assert f"{str(path)!r} is not a spikedrive checkpoint (torch.load failed: " in err
        assert "Weights only load failed" not in err and "\x1b" not in err


def test_load_checkpoint_of_text_or_a_bare_state_dict_is_one_line(tmp_path: Path) -> None:
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(ValueError) as info:
        load_checkpoint(text)
    assert f"{str(text)!r} is not a spikedrive checkpoint (torch.load failed: " in str(info.value)
    assert len(str(info.value).splitlines()) == 1

    bare = tmp_path / "weights.pt"
    torch.save(nn.Linear(2, 2).state_dict(), bare)
    with pytest.raises(ValueError) as info:
        load_checkpoint(bare)
    message = str(info.value)
    assert f"{str(bare)!r} is not a spikedrive checkpoint" in message
    assert "'weight'" in message and "'format'" in message  # what it holds, what it lacks
    assert len(message.splitlines()) == 1


# --- 4. typos in model arguments and names -----------------------------------------------------

def test_model_kwarg_typo_suggests_the_parameter() -> None:
    with pytest.raises(TypeError) as info:
        create_model("digits_snn", chanels=(8,))
    assert str(info.value) == "digits_snn: unknown argument 'chanels'; did you mean 'channels'?"
    with pytest.raises(TypeError) as info:  # a parameter of the function itself
        create_model("digits_ilif", num_clases=3)
    assert str(info.value) == "digits_ilif: unknown argument 'num_clases'; did you mean 'num_classes'?"
    with pytest.raises(TypeError) as info:
        create_model("digits_snn", zzz=1)
    assert str(info.value).startswith("digits_snn: unknown argument 'zzz'; it accepts ")
    assert "'channels'" in str(info.value) and "'num_classes'" in str(info.value)


def test_train_with_a_model_kwarg_typo_is_one_line(tmp_path: Path, capsys) -> None:
    code, _, err = run_cli(["train", f"out_dir={tmp_path / 'r'}", "model_kwargs.chanels=[8]", *TINY], capsys)
    assert code == 1
    assert err.strip() == ("spikedrive train: error: digits_snn: unknown argument 'chanels'; "
                           "did you mean 'channels'?")


def test_unknown_model_name_suggests_close_names() -> None:
    with pytest.raises(ValueError) as info:
        create_model("digit_snn")
    assert str(info.value).startswith("unknown model 'digit_snn'; did you mean 'digits_snn'")


# --- 5. eval names the validation and the test split -------------------------------------------

def test_eval_reports_val_and_test_splits(tmp_path: Path, capsys) -> None:
    cfg = load_config(None, [f"out_dir={tmp_path / 'run'}", "model_kwargs.T=2", "model_kwargs.channels=[4, 4]",
                             "model_kwargs.hidden=8", *TINY])
    train(cfg)
    checkpoint = tmp_path / "run" / "last.pt"
    code, out, err = run_cli(["eval", str(checkpoint)], capsys)
    assert code == 0, err

    _, val_set, test_set = build_datasets(cfg)
    model, task = load_model(checkpoint), build_task(cfg)
    lines = out.strip().splitlines()
    for name, split in (("val", val_set), ("test", test_set)):
        metrics = evaluate(model, task, make_eval_loader(split, cfg), torch.device("cpu"))
        line = next(l for l in lines if l.startswith(f"{name} "))
        assert line == "  ".join(f"{name} {k} {v:.4f}" for k, v in metrics.items())


def test_energy_of_a_spike_driven_ilif_model_traces_its_own_data(capsys):
    from spikedrive.cli import main

    assert main(["energy", "--model", "digits_ilif", "--spike-driven", "--samples", "32"]) == 0
    out = capsys.readouterr().out
    assert "SNN / ANN" in out and "(32 samples)" in out
    # Every layer after the encoding one receives binary virtual steps.
    assert " NO " not in out
