"""The engine end to end on CPU: run folders, tasks, seeded data order, checkpoints, bit-identical
resume and the NaN stop. Runs use a tiny MLP (with batch norm and dropout, so buffers and the RNG
both matter) on the embedded digits, a few steps per epoch."""

from __future__ import annotations

import dataclasses
import json
import math
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook
from torch.utils.data import Dataset, TensorDataset

from spikedrive.engine import (
    ClassificationMetrics,
    ClassificationTask,
    Task,
    TrainConfig,
    TrainingDiverged,
    WarmupCosine,
    build_datasets,
    epoch_seed,
    evaluate,
    load_checkpoint,
    load_config,
    load_model,
    make_eval_loader,
    make_train_loader,
    save_checkpoint,
    set_loader_epoch,
    train,
)
from spikedrive.engine.io import atomic_write

QUICK = ["epochs=3", "max_steps_per_epoch=5", "batch_size=32", "lr=0.01", "warmup_epochs=1", "progress=false",
         "device=cpu"]


def quick_config(out: Path, *extra: str) -> TrainConfig:
    return load_config(None, [f"out_dir={out}", *QUICK, *extra])


def tiny_mlp(seed: int = 0) -> nn.Module:
    """``[B, 1, 8, 8]`` → logits ``[B, 10]``, initialised from ``seed`` (a model passed to
    ``train`` is built by the caller, so the caller seeds it)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.2),
                         nn.Linear(32, 10))


def assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def without_times(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "epoch_time_s"} for r in history]


# --- the classification task ----------------------------------------------------------------

def test_classification_loss_and_metrics_pin_numbers() -> None:
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [1.0, 0.0, 4.0]])
    labels = torch.tensor([0, 1, 1])
    model = nn.Identity()
    loss, logs = ClassificationTask(label_smoothing=0.1).training_loss(model, (logits, labels))
    assert torch.allclose(loss, F.cross_entropy(logits, labels, label_smoothing=0.1))
    assert float(logs["accuracy"]) == pytest.approx(2 / 3)

    metrics = ClassificationTask().new_metrics()
    metrics.update(logits[:2], (None, labels[:2]))
    metrics.update(logits[2:], (None, labels[2:]))
    expected_loss = float(F.cross_entropy(logits, labels))
    assert metrics.compute() == pytest.approx({"accuracy": 2 / 3, "loss": expected_loss})
    metrics.reduce(lambda t: 2 * t)  # two identical "ranks": the means must not change
    assert metrics.compute() == pytest.approx({"accuracy": 2 / 3, "loss": expected_loss})
    assert float(metrics.state[2]) == 6.0


def test_empty_metrics_are_nan_and_reduce_to_zeros() -> None:
    metrics = ClassificationMetrics()
    assert all(math.isnan(v) for v in metrics.compute().values())
    seen = []
    metrics.reduce(lambda t: seen.append(t.clone()) or t)
    assert torch.equal(seen[0], torch.zeros(3, dtype=torch.float64))  # a rank with no batch adds nothing


def test_evaluate_counts_every_sample_restores_mode_and_leaves_the_rng_alone() -> None:
    labels = torch.arange(10).repeat(5)
    data = TensorDataset(F.one_hot(labels, 10).float(), labels)
    loader = make_eval_loader(data, TrainConfig(batch_size=7))
    model = nn.Sequential(nn.Linear(10, 10), nn.Dropout(0.5))
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(10))
        model[0].bias.zero_()
    model.train()
    before = torch.get_rng_state()
    result = evaluate(model, ClassificationTask(), loader, "cpu")
    assert result["accuracy"] == 1.0  # would fail if dropout were active
    assert result["loss"] == pytest.approx(float(F.cross_entropy(torch.eye(10), torch.arange(10))))
    assert model.training
    assert torch.equal(torch.get_rng_state(), before)


def test_evaluate_restores_each_submodules_own_mode() -> None:
    labels = torch.arange(10).repeat(3)
    loader = make_eval_loader(TensorDataset(F.one_hot(labels, 10).float(), labels), TrainConfig(batch_size=8))
    model = nn.Sequential(nn.Linear(10, 10), nn.BatchNorm1d(10), nn.Dropout(0.5))
    model.train()
    model[1].eval()  # deliberately frozen batch norm (e.g. fine-tuning with fixed statistics)
    stats = model[1].running_mean.clone()
    evaluate(model, ClassificationTask(), loader, "cpu")
    assert [m.training for m in model] == [True, False, True] and model.training
    assert torch.equal(model[1].running_mean, stats)


# --- data order -----------------------------------------------------------------------------

def test_epoch_order_depends_only_on_seed_and_epoch() -> None:
    cfg = TrainConfig(batch_size=16, seed=3)
    data = TensorDataset(torch.arange(100).float().unsqueeze(1), torch.arange(100))

    def order(loader, epoch: int, seed: int = cfg.seed) -> list[int]:
        set_loader_epoch(loader, seed, epoch)
        return torch.cat([y for _, y in loader]).tolist()

    walked = make_train_loader(data, cfg)
    history = [order(walked, e) for e in range(3)]
    fresh = make_train_loader(data, cfg)
    assert order(fresh, 2) == history[2]
    assert history[1] != history[2]
    assert len(history[2]) == 96  # the partial last batch is dropped
    assert order(make_train_loader(data, TrainConfig(batch_size=16, seed=4)), 2, seed=4) != history[2]


class EpochAware(Dataset):
    """Records every ``set_epoch`` call (as detection's mosaic view does to switch itself off)."""

    def __init__(self, base: Dataset) -> None:
        self.base, self.calls = base, []

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int):
        return self.base[i]

    def set_epoch(self, epoch: int, epochs: int | None = None) -> None:
        self.calls.append((epoch, epochs))


def test_set_loader_epoch_tells_the_dataset_its_epoch_and_the_total() -> None:
    data = EpochAware(TensorDataset(torch.zeros(8, 1), torch.arange(8)))
    loader = make_train_loader(data, TrainConfig(batch_size=4))
    set_loader_epoch(loader, 0, 3, epochs=10)
    set_loader_epoch(loader, 0, 4)  # no total given: the dataset keeps its own
    assert data.calls == [(3, 10), (4, None)]
    set_loader_epoch(make_train_loader(TensorDataset(torch.zeros(8, 1)), TrainConfig(batch_size=4)), 0, 1, epochs=2)


def test_trainer_sets_the_datasets_epoch_once_per_epoch(tmp_path: Path) -> None:
    train_set, val, test = build_datasets(TrainConfig())
    recorder = EpochAware(train_set)
    train(quick_config(tmp_path, "epochs=2", "max_steps_per_epoch=1"), model=tiny_mlp(), datasets=(recorder, val, test))
    assert recorder.calls == [(0, 2), (1, 2)]


class WorkerDraws(Dataset):
    """Each item is a NumPy draw made in the DataLoader worker (as a random augmentation is)."""

    def __len__(self) -> int:
        return 32

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.tensor([np.random.randint(2**31), i])


def draws(loader) -> list[int]:
    return torch.cat([batch[:, 0] for batch in loader]).tolist()


def test_train_loader_worker_seeds_differ_per_rank_and_rank_0_is_unchanged() -> None:
    cfg = TrainConfig(batch_size=8, num_workers=1, seed=5)
    # Rank 0 (and a single-process run) keeps the seed it always had.
    legacy = int(np.random.SeedSequence([5, 2]).generate_state(1, dtype=np.uint64)[0]) & (2**63 - 1)
    assert epoch_seed(5, 2) == epoch_seed(5, 2, rank=0) == legacy

    def epoch_draws(rank: int, epoch: int) -> list[int]:
        loader = make_train_loader(WorkerDraws(), cfg, rank=rank, world_size=2)
        set_loader_epoch(loader, cfg.seed, epoch, rank)
        assert loader.generator.initial_seed() == epoch_seed(cfg.seed, epoch, rank)
        return draws(loader)

    rank0, rank1 = epoch_draws(0, 2), epoch_draws(1, 2)
    assert rank0 != rank1  # different augmentation draws on every rank
    assert epoch_draws(1, 2) == rank1  # ... and still reproducible
    assert epoch_draws(1, 3) != rank1


def test_eval_loader_worker_seeds_restart_at_every_pass() -> None:
    cfg = TrainConfig(batch_size=8, num_workers=1, seed=5)
    loader = make_eval_loader(WorkerDraws(), cfg)
    first = draws(loader)
    assert draws(loader) == first  # a second evaluation draws as the first did
    assert draws(make_eval_loader(WorkerDraws(), cfg)) == first  # and so does a fresh (resumed) run
    shards = [make_eval_loader(WorkerDraws(), cfg, rank=r, world_size=2) for r in (0, 1)]
    assert draws(shards[0]) != draws(shards[1])


def test_unknown_dataset_and_task_name_close_matches(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"dataset='digit'.*digits"):
        build_datasets(TrainConfig(dataset="digit"))
    with pytest.raises(ValueError, match=r"task='clasification'.*classification"):
        train(quick_config(tmp_path, "task=clasification"), model=tiny_mlp())


def test_batch_larger_than_the_training_set_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="batch_size=4096"):
        train(quick_config(tmp_path, "batch_size=4096"), model=tiny_mlp())


# --- a run folder ---------------------------------------------------------------------------

def test_train_writes_config_metrics_and_checkpoints(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = quick_config(out)
    result = train(cfg, model=tiny_mlp())

    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert json.loads((out / "metrics.json").read_text()) == lines
    *lines, final = lines  # the per-epoch records, then the one test record
    assert [r["epoch"] for r in lines] == [1, 2, 3]
    assert without_times(lines) == without_times(result.history)
    assert final["test_accuracy"] == result.test_metrics["accuracy"] and "epoch" not in final
    assert {"train_loss", "train_accuracy", "val_accuracy", "val_loss", "lr", "global_step"} <= lines[0].keys()
    assert lines[-1]["global_step"] == 15 == result.global_step
    assert load_config(out / "config.yaml", []) == cfg
    assert not list(out.glob(".*.tmp"))

    accuracies = [r["val_accuracy"] for r in lines]
    assert accuracies[-1] > 0.5  # 15 steps of a small MLP learn well past chance (0.1)
    best_epoch = max(range(3), key=lambda i: (accuracies[i], -i)) + 1
    assert (result.best_epoch, result.best_metric) == (best_epoch, accuracies[best_epoch - 1])
    assert result.metrics["accuracy"] == accuracies[best_epoch - 1] == final["val_accuracy"]  # the selected epoch

    last, best = load_checkpoint(out / "last.pt"), load_checkpoint(out / "best.pt")
    assert (last["epoch"], best["epoch"]) == (3, best_epoch)
    assert best["best_metric"] == result.best_metric
    assert last["config"] == cfg.to_dict()
    assert set(last["rng"][0]) >= {"python", "numpy", "torch"}
    for key, value in result.model.state_dict().items():
        assert torch.equal(last["model"][key], value), key


def test_fresh_run_refuses_to_overwrite_and_resume_modes(tmp_path: Path) -> None:
    cfg = quick_config(tmp_path, "epochs=1")
    with pytest.raises(FileNotFoundError, match="resume=auto"):
        train(cfg, model=tiny_mlp(), resume=True)
    train(cfg, model=tiny_mlp(), resume="auto")  # nothing to resume: starts afresh
    with pytest.raises(FileExistsError, match="resume"):
        train(cfg, model=tiny_mlp())
    again = train(cfg, model=tiny_mlp(), resume="auto")  # finished: nothing left to do
    assert again.epochs == 1 and len(again.history) == 1


def test_digits_snn_trains_and_reloads_by_name(tmp_path: Path) -> None:
    cfg = quick_config(tmp_path, "epochs=1", "max_steps_per_epoch=3", "model_kwargs.T=2")
    result = train(cfg)
    reloaded = load_model(tmp_path / "last.pt")
    x = build_datasets(cfg)[2].tensors[0][:16]
    with torch.no_grad():
        assert torch.equal(reloaded(x), result.model.eval()(x))


class DictBatches(Dataset):
    """Digits as dict batches: what a detection or depth dataset might yield."""

    def __init__(self, base: TensorDataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        x, y = self.base[i]
        return {"image": x, "target": y}


class ErrorRate:
    def __init__(self) -> None:
        self.state = torch.zeros(2, dtype=torch.float64)

    def update(self, output, batch) -> None:
        self.state += torch.tensor([float((output.argmax(1) != batch["target"]).sum()), len(output)],
                                   dtype=torch.float64)

    def reduce(self, all_reduce) -> None:
        self.state = all_reduce(self.state)

    def compute(self) -> dict[str, float]:
        return {"error": float(self.state[0] / self.state[1])}


class DuckTask:
    """A task written without importing the engine, as detection and depth will be."""

    def to_device(self, batch, device):
        return {k: v.to(device) for k, v in batch.items()}

    def training_loss(self, model, batch):
        return F.cross_entropy(model(batch["image"]), batch["target"]), {}

    def forward(self, model, batch):
        return model(batch["image"])

    def new_metrics(self):
        return ErrorRate()


def test_a_duck_typed_task_trains_with_its_own_metric(tmp_path: Path) -> None:
    assert isinstance(DuckTask(), Task)
    splits = tuple(DictBatches(s) for s in build_datasets(TrainConfig()))
    cfg = quick_config(tmp_path, "monitor=error", "monitor_mode=min")
    result = train(cfg, model=tiny_mlp(), task=DuckTask(), datasets=splits)
    errors = [r["val_error"] for r in result.history]
    assert result.best_metric == min(errors) and errors[-1] < 0.5
    assert set(result.test_metrics) == {"error"} and result.test_metrics["error"] < 0.5
    with pytest.raises(ValueError, match=r"monitor='accuracy'.*\['error'\]"):
        train(quick_config(tmp_path / "b"), model=tiny_mlp(), task=DuckTask(), datasets=splits)


# --- resume ---------------------------------------------------------------------------------

class Crash(Exception):
    pass


class CrashingTask(ClassificationTask):
    """Raises (like a killed job) when asked for the loss of training call ``at``."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at, self.calls = at, 0

    def training_loss(self, model, batch):
        self.calls += 1
        if self.calls == self.at:
            raise Crash(f"simulated crash at call {self.calls}")
        return super().training_loss(model, batch)


def test_resume_after_a_crash_is_bit_identical(tmp_path: Path) -> None:
    extra = ["epochs=4", "max_steps_per_epoch=6"]
    straight = train(quick_config(tmp_path / "straight", *extra), model=tiny_mlp())

    cfg = quick_config(tmp_path / "crashed", *extra)
    with pytest.raises(Crash):
        train(cfg, model=tiny_mlp(), task=CrashingTask(at=2 * 6 + 3))  # mid-way through epoch 3
    assert load_checkpoint(tmp_path / "crashed" / "last.pt")["epoch"] == 2
    resumed = train(cfg, model=tiny_mlp(), resume=True)

    assert_same_weights(straight.model, resumed.model)
    assert without_times(straight.history) == without_times(resumed.history)
    assert (straight.best_epoch, straight.best_metric) == (resumed.best_epoch, resumed.best_metric)
    a = load_checkpoint(tmp_path / "straight" / "last.pt")
    b = load_checkpoint(tmp_path / "crashed" / "last.pt")
    for group_a, group_b in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        for key in group_a:
            assert torch.equal(torch.as_tensor(group_a[key]), torch.as_tensor(group_b[key]))
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"] == 24
    logged = [json.loads(line) for line in (tmp_path / "crashed" / "metrics.jsonl").read_text().splitlines()]
    assert without_times(logged[:-1]) == without_times(straight.history)  # the crashed run's lines are gone
    assert logged[-1]["test_accuracy"] == straight.test_metrics["accuracy"] == resumed.test_metrics["accuracy"]


def test_extending_a_finished_run_matches_a_straight_run(tmp_path: Path) -> None:
    extra = ["scheduler=constant", "max_steps_per_epoch=4"]
    straight = train(quick_config(tmp_path / "straight", "epochs=3", *extra), model=tiny_mlp())
    train(quick_config(tmp_path / "parts", "epochs=1", *extra), model=tiny_mlp())
    resumed = train(quick_config(tmp_path / "parts", "epochs=3", *extra), model=tiny_mlp(), resume=True)
    assert_same_weights(straight.model, resumed.model)
    assert without_times(straight.history) == without_times(resumed.history)


def test_resume_from_the_runs_own_config_yaml_with_tuples_in_model_kwargs(tmp_path: Path) -> None:
    cfg = dataclasses.replace(quick_config(tmp_path, "epochs=1"), model_kwargs={"T": 4, "channels": (8, 16)})
    train(cfg, model=tiny_mlp())
    again = load_config(tmp_path / "config.yaml", ["epochs=2"])  # YAML has no tuples: [8, 16]
    result = train(again, model=tiny_mlp(), resume=True)
    assert [r["epoch"] for r in result.history] == [1, 2]


@contextmanager
def recorded_lrs():
    """The lr of every param group at each optimizer step taken inside the block."""
    seen: list[list[float]] = []
    handle = register_optimizer_step_pre_hook(lambda opt, args, kwargs: seen.append([g["lr"] for g in opt.param_groups]))
    try:
        yield seen
    finally:
        handle.remove()


def test_extending_a_finished_cosine_run_steps_with_the_new_schedules_lr(tmp_path: Path) -> None:
    extra = ["scheduler=cosine", "warmup_epochs=0", "max_steps_per_epoch=4"]
    with recorded_lrs() as straight:
        straight_run = train(quick_config(tmp_path / "straight", "epochs=3", *extra), model=tiny_mlp())
    train(quick_config(tmp_path / "parts", "epochs=1", *extra), model=tiny_mlp())  # ends at lr 0
    with recorded_lrs() as extended:
        extended_run = train(quick_config(tmp_path / "parts", "epochs=3", *extra), model=tiny_mlp(), resume=True)
    assert len(straight) == 12 and len(extended) == 8
    first = 0.01 * WarmupCosine(total_steps=12)(4)  # step 4 of the 3-epoch cosine: 0.0075
    assert extended[0] == [first, first]
    assert extended == straight[4:]  # the lrs of a straight run from there on, bit for bit
    assert [r["lr"] for r in extended_run.history[1:]] == [r["lr"] for r in straight_run.history[1:]]


def test_checkpoint_that_does_not_fit_the_optimizer_names_the_path(tmp_path: Path) -> None:
    train(quick_config(tmp_path, "epochs=1"), model=tiny_mlp())
    model = tiny_mlp()
    model[1].bias.requires_grad_(False)  # same weights, one trainable tensor fewer
    with pytest.raises(ValueError, match=r"last\.pt.*does not fit the optimizer"):
        train(quick_config(tmp_path, "epochs=2"), model=model, resume=True)


def test_resuming_another_models_checkpoint_is_refused(tmp_path: Path) -> None:
    train(quick_config(tmp_path, "epochs=1"), model=tiny_mlp())
    with pytest.raises(ValueError, match=r"model='digits_snn'.*model='digits_ilif'"):
        train(quick_config(tmp_path, "epochs=2", "model=digits_ilif"), model=tiny_mlp(), resume=True)
    with pytest.raises(ValueError, match=r"model_kwargs=\{'T': 4\}.*model_kwargs=\{'T': 8\}"):
        train(quick_config(tmp_path, "epochs=2", "model_kwargs.T=8"), model=tiny_mlp(), resume=True)


# --- checkpoints ----------------------------------------------------------------------------

def test_checkpoint_readers_reject_damaged_or_foreign_files(tmp_path: Path) -> None:
    train(quick_config(tmp_path, "epochs=1"), model=tiny_mlp())
    data = (tmp_path / "last.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="unreadable"):
        load_checkpoint(tmp_path / "cut.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="not a spikedrive checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="missing"):
        save_checkpoint({"model": {}}, tmp_path / "partial.pt")


def test_an_interrupted_write_leaves_the_old_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "last.pt"
    target.write_bytes(b"old")

    def half_then_fail(f) -> None:
        f.write(b"new but incomplete")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, half_then_fail)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


# --- divergence -----------------------------------------------------------------------------

class NaNAtCall(ClassificationTask):
    """A finite loss until training call ``at``, then NaN; snapshots ``last.pt`` just before."""

    def __init__(self, at: int, last: Path) -> None:
        super().__init__()
        self.at, self.calls, self.last = at, 0, last
        self.snapshot: bytes | None = None

    def training_loss(self, model, batch):
        self.calls += 1
        loss, logs = super().training_loss(model, batch)
        if self.calls == self.at:
            self.snapshot = self.last.read_bytes()
            return loss * float("nan"), logs
        return loss, logs


def test_nan_loss_stops_naming_epoch_and_step_and_keeps_last_good_checkpoint(tmp_path: Path) -> None:
    task = NaNAtCall(at=5 + 3, last=tmp_path / "last.pt")  # epoch 2, step 3
    with pytest.raises(TrainingDiverged) as info:
        train(quick_config(tmp_path), model=tiny_mlp(), task=task)
    err = info.value
    assert (err.epoch, err.step, err.global_step) == (2, 3, 7) and math.isnan(err.value)
    assert "epoch 2, step 3" in str(err) and str(tmp_path / "last.pt") in str(err)
    assert (tmp_path / "last.pt").read_bytes() == task.snapshot
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 1


class CorruptWeightsAtCall(ClassificationTask):
    """Finite losses throughout, but writes NaN into a weight at training call ``at``."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at, self.calls = at, 0

    def training_loss(self, model, batch):
        self.calls += 1
        loss, logs = super().training_loss(model, batch)
        if self.calls == self.at:
            with torch.no_grad():
                next(model.parameters()).view(-1)[0] = float("nan")
        return loss, logs


def test_non_finite_weights_with_finite_losses_are_never_saved(tmp_path: Path) -> None:
    with pytest.raises(TrainingDiverged, match="weights became non-finite during epoch 2") as info:
        train(quick_config(tmp_path), model=tiny_mlp(), task=CorruptWeightsAtCall(at=10))  # last step of epoch 2
    assert (info.value.epoch, info.value.step) == (2, None)
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())


def test_absurd_learning_rate_raises_diverged_not_a_crash(tmp_path: Path) -> None:
    with pytest.raises(TrainingDiverged, match="epoch 1"):
        train(quick_config(tmp_path, "optimizer=sgd", "lr=1e38", "warmup_epochs=0"),
              model=nn.Sequential(nn.Flatten(), nn.Linear(64, 10)))
    assert not (tmp_path / "last.pt").exists()


# --- the demo recipe ------------------------------------------------------------------------

@pytest.mark.slow
def test_demo_recipe_reaches_95_percent(tmp_path: Path) -> None:
    torch.set_num_threads(2)
    recipe = Path(__file__).resolve().parents[1] / "configs" / "demo" / "digits.yaml"
    cfg = load_config(recipe, [f"out_dir={tmp_path}", "progress=false"])
    assert yaml.safe_load(recipe.read_text())["model"] == "digits_snn"
    result = train(cfg)
    assert result.metrics["accuracy"] >= 0.95
