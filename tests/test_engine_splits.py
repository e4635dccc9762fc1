"""Issue 16, first use: every recipe holds out a test split that model selection never sees,
``data_root`` is never silently created or ignored, and custom models / datasets plug in."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import spikedrive.engine.trainer as trainer_module
from spikedrive.data import TimeMajorDataset
from spikedrive.data.digits import load_digits_split, stratified_split
from spikedrive.data.ndigits import load_ndigits_frames
from spikedrive.engine import (
    ClassificationTask,
    build_datasets,
    evaluate,
    load_checkpoint,
    load_config,
    make_eval_loader,
    register_dataset,
    train,
)

QUICK = ["epochs=3", "max_steps_per_epoch=2", "batch_size=16", "lr=0.01", "warmup_epochs=0", "progress=false",
         "device=cpu", "energy_report=false"]


def result_cfg(out: Path):
    return load_config(None, [f"out_dir={out}", *QUICK])


def linear(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))


# --- the three splits -----------------------------------------------------------------------

def test_stratified_split_is_disjoint_complete_stratified_and_seeded() -> None:
    labels = np.repeat(np.arange(5), 20)
    train_idx, val_idx, test_idx = stratified_split(labels, val_fraction=0.2, test_fraction=0.3, seed=4)
    assert not set(train_idx) & set(val_idx) and not set(train_idx) & set(test_idx)
    assert not set(val_idx) & set(test_idx)
    assert sorted([*train_idx, *val_idx, *test_idx]) == list(range(100))
    assert np.bincount(labels[val_idx]).tolist() == [4] * 5  # 20% of each class
    assert np.bincount(labels[test_idx]).tolist() == [6] * 5
    again = stratified_split(labels, val_fraction=0.2, test_fraction=0.3, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(again, (train_idx, val_idx, test_idx)))
    other = stratified_split(labels, val_fraction=0.2, test_fraction=0.3, seed=5)
    assert not np.array_equal(other[2], test_idx)
    with pytest.raises(ValueError, match=r"val_fraction=0\.6.*test_fraction=0\.5"):
        stratified_split(labels, val_fraction=0.6, test_fraction=0.5, seed=0)


def test_digits_give_three_disjoint_deterministic_splits() -> None:
    train_set, val_set, test_set = load_digits_split(val_fraction=0.15, test_fraction=0.25, seed=0)
    assert len(train_set) + len(val_set) + len(test_set) == 1797
    ids = [set(d.indices.tolist()) for d in (train_set, val_set, test_set)]
    assert not ids[0] & ids[1] and not ids[0] & ids[2] and not ids[1] & ids[2]
    assert len(test_set) == pytest.approx(0.25 * 1797, abs=10) and len(val_set) == pytest.approx(0.15 * 1797, abs=10)
    again = load_digits_split(val_fraction=0.15, test_fraction=0.25, seed=0)
    for a, b in zip((train_set, val_set, test_set), again):
        assert torch.equal(a.tensors[0], b.tensors[0]) and torch.equal(a.tensors[1], b.tensors[1])
    from sklearn.datasets import load_digits

    images = torch.from_numpy(load_digits().images.astype(np.float32) / 16.0)
    assert torch.equal(test_set.tensors[0][:, 0], images[test_set.indices])  # the index is the sample's


def test_build_datasets_returns_train_val_test_and_refuses_a_two_way_builder() -> None:
    splits = build_datasets(load_config(None, []))
    assert len(splits) == 3 and all(len(s) > 0 for s in splits)
    register_dataset("two_way_digits_for_test", lambda root, **kw: load_digits_split()[:2])
    with pytest.raises(ValueError, match=r"two_way_digits_for_test.*\(train, val, test\).*2"):
        build_datasets(load_config(None, ["dataset=two_way_digits_for_test"]))


def test_ndigits_give_three_disjoint_splits_in_an_existing_folder(tmp_path: Path) -> None:
    folder = tmp_path / "nd"
    folder.mkdir()  # an existing, empty folder the user names: generated into
    train_set, val_set, test_set = load_ndigits_frames(folder, T=2, n_per_class=3, n_test_per_class=1)
    assert all(isinstance(d, TimeMajorDataset) for d in (train_set, val_set, test_set))
    train_ids, val_ids = set(train_set.dataset.indices), set(val_set.dataset.indices)
    assert not train_ids & val_ids and len(train_ids | val_ids) == 30  # both carved from Train/
    assert len(val_set) == 10 and len(test_set) == 10  # one per class; Test/ is the test split
    assert train_set.dataset.dataset.split == "Train" and test_set.dataset.split == "Test"
    again = load_ndigits_frames(folder, T=2, n_per_class=3, n_test_per_class=1)
    assert again[1].dataset.indices == val_set.dataset.indices


# --- data_root ------------------------------------------------------------------------------

def test_a_data_root_that_does_not_exist_is_an_error_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent" / "nd"
    cfg = load_config(None, ["dataset=ndigits", f"data_root={missing}", "dataset_kwargs.n_per_class=1"])
    with pytest.raises(ValueError, match=f"data_root='{missing}'.*does not exist"):
        build_datasets(cfg)
    with pytest.raises(ValueError, match=f"root='{missing}'.*does not exist"):
        load_ndigits_frames(missing, n_per_class=1, n_test_per_class=1)
    assert not (tmp_path / "nonexistent").exists()


def test_ndigits_refuses_to_generate_over_a_folder_holding_other_files(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("not N-Digits")
    with pytest.raises(ValueError, match=f"root='{tmp_path}'.*ndigits.json"):
        load_ndigits_frames(tmp_path, n_per_class=1, n_test_per_class=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]


def test_embedded_digits_refuse_a_data_root_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as info:
        build_datasets(load_config(None, [f"data_root={tmp_path}"]))
    message = str(info.value)
    assert len(message.splitlines()) == 1
    assert f"data_root='{tmp_path}'" in message and "embedded" in message and "'digits'" in message


# --- the trainer: select on val, test once ----------------------------------------------------

class ScriptedVal:
    """Spies on ``evaluate``: returns scripted validation accuracies (so the best epoch is the
    first), evaluates the test split for real, and records which split each call saw."""

    def __init__(self, val_set, test_set, scripted: list[float]) -> None:
        self.val_set, self.test_set, self.scripted = val_set, test_set, list(scripted)
        self.calls: list[tuple[str, dict[str, torch.Tensor], dict[str, float]]] = []

    def __call__(self, model, task, loader, device, **kwargs):
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if loader.dataset is self.val_set:
            metrics = {"accuracy": self.scripted.pop(0), "loss": 1.0}
            self.calls.append(("val", state, metrics))
        else:
            assert loader.dataset is self.test_set, "evaluated a loader over neither val nor test"
            metrics = evaluate(model, task, loader, device, **kwargs)
            self.calls.append(("test", state, metrics))
        return metrics


def test_trainer_selects_on_val_and_tests_the_best_weights_once_after_training(tmp_path: Path, monkeypatch) -> None:
    splits = load_digits_split()
    spy = ScriptedVal(splits[1], splits[2], [0.9, 0.5, 0.6])
    monkeypatch.setattr(trainer_module, "evaluate", spy)
    result = train(result_cfg(tmp_path), model=linear(), datasets=splits)

    assert [c[0] for c in spy.calls] == ["val", "val", "val", "test"]  # once, after the last epoch
    tested = spy.calls[-1][1]
    best = load_checkpoint(tmp_path / "best.pt")
    assert best["epoch"] == 1 == result.best_epoch
    for key, value in tested.items():
        assert torch.equal(value, spy.calls[0][1][key]), key  # the weights epoch 1 was validated with
        assert torch.equal(value, best["model"][key]), key
    assert any(not torch.equal(v, result.model.state_dict()[k]) for k, v in tested.items())  # not the last

    assert result.test_metrics == spy.calls[-1][2]
    reference = linear()
    reference.load_state_dict(best["model"])  # best.pt's weights on the test split, evaluated here
    assert result.test_metrics == evaluate(reference, ClassificationTask(), make_eval_loader(splits[2], result_cfg(tmp_path)),
                                           "cpu")
    assert result.val_metrics == {"accuracy": 0.9, "loss": 1.0} == result.metrics  # the selected epoch's
    records = json.loads((tmp_path / "metrics.json").read_text())
    final = records[-1]
    assert [r["epoch"] for r in records[:-1]] == [1, 2, 3] and "epoch" not in final
    assert final["test_accuracy"] == result.test_metrics["accuracy"]
    assert final["test_loss"] == result.test_metrics["loss"]
    assert (final["val_accuracy"], final["selected_epoch"], final["selected"]) == (0.9, 1, "best.pt")
    assert not any(k.startswith("test_") for r in records[:-1] for k in r)  # test never seen per epoch
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[-1]) == final


def test_without_a_best_epoch_the_final_weights_are_tested(tmp_path: Path, monkeypatch) -> None:
    splits = load_digits_split()
    spy = ScriptedVal(splits[1], splits[2], [float("nan")])
    monkeypatch.setattr(trainer_module, "evaluate", spy)
    result = train(load_config(None, [f"out_dir={tmp_path}", *QUICK, "epochs=1"]), model=linear(), datasets=splits)
    assert result.best_checkpoint is None and [c[0] for c in spy.calls] == ["val", "test"]
    for key, value in result.model.state_dict().items():
        assert torch.equal(spy.calls[-1][1][key], value), key
    assert json.loads((tmp_path / "metrics.json").read_text())[-1]["selected"] == "last"


def test_train_refuses_two_datasets_naming_the_contract(tmp_path: Path) -> None:
    train_set, val_set, _ = load_digits_split()
    with pytest.raises(ValueError, match=r"datasets.*\(train, val, test\).*2"):
        train(load_config(None, [f"out_dir={tmp_path}", *QUICK]), model=linear(), datasets=(train_set, val_set))


def test_a_custom_model_and_time_major_dataset_train_as_documented(tmp_path: Path) -> None:
    """What the train docstring promises: (x, y) samples, time-major through TimeMajorDataset
    (batches [T, B, ...]), a model returning logits [B, classes]."""

    def sequences(n: int, seed: int) -> TimeMajorDataset:
        g = torch.Generator().manual_seed(seed)
        y = torch.randint(0, 3, (n,), generator=g)
        x = torch.randn(n, 4, 5, generator=g) + y[:, None, None].float()  # samples [T=4, 5]
        return TimeMajorDataset(TensorDataset(x, y))

    class MeanOverTime(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(5, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            assert x.shape[0] == 4 and x.dim() == 3  # [T, B, 5]
            return self.fc(x).mean(0)  # [B, 3]

    torch.manual_seed(0)
    result = train(load_config(None, [f"out_dir={tmp_path}", *QUICK, "batch_size=8"]), model=MeanOverTime(),
                   datasets=(sequences(64, 0), sequences(24, 1), sequences(24, 2)))
    assert set(result.test_metrics) == {"accuracy", "loss"}

