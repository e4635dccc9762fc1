"""``train(cfg)``: the one training loop of every method, single-process or under torchrun.

Per epoch: train, average batch-norm statistics over ranks, refuse non-finite weights, evaluate
on the validation split (all-reduced), then on rank 0 write ``best.pt`` (if improved),
``last.pt`` and the metrics. The order matters: ``last.pt`` is written after ``best.pt``, so a
crash in between replays the epoch on resume and rewrites the same ``best.pt``.

After the last epoch the selected weights (those of ``best.pt``, else the final ones) are
evaluated once on the test split, which model selection never sees; ``metrics.json`` and
``metrics.jsonl`` end with that record (``test_*`` beside the selected epoch's ``val_*``).
"""

from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ..analysis import format_energy
from ..models import create_model
from ..neurons import set_neuron_backend
from .checkpoint import check_compatible, load_checkpoint, save_checkpoint
from .config import TrainConfig, save_config
from .data import build_datasets, check_splits, make_eval_loader, make_train_loader, set_loader_epoch
from .distributed import DistContext, cleanup_distributed, setup_distributed, unwrap_model
from .logger import MetricsLog
from .loop import TrainingDiverged, check_finite_weights, evaluate, steps_per_epoch, train_one_epoch
from .optim import apply_schedule, build_optimizer, build_scheduler
from .report import write_energy_report
from .seeding import (
    rank_seed,
    rng_state,
    seed_everything,
    set_deterministic,
    set_rng_state,
)
from .task import Task, build_task

__all__ = ["TrainResult", "train"]

LAST, BEST = "last.pt", "best.pt"


@dataclass
class TrainResult:
    """What a run produced (identical on every rank).

    Attributes:
        val_metrics: validation metrics of the selected epoch: the best epoch (``best.pt``), or
            the last one when no epoch had a finite ``monitor``; also ``metrics``.
        test_metrics: metrics of the selected weights on the test split, evaluated once after
            training (the EMA weights when ``cfg.ema`` is set).
        best_metric: best value of ``cfg.monitor`` (``None`` if never finite).
        best_epoch: the 1-based epoch that reached it (0 if none).
        selected_epoch: the epoch whose weights were tested (``best_epoch``, else the last).
        epochs: epochs completed in total (including those before a resume).
        global_step: optimizer steps completed in total.
        history: one record per epoch (as in ``metrics.json``, without its final test record).
        out_dir: the run folder; ``last_checkpoint`` / ``best_checkpoint`` are in it.
        model: the trained model (unwrapped from DDP) with its final weights, in train mode.
        ema_model: the EMA of the weights (final), when ``cfg.ema`` is set, else ``None``.
    """

    val_metrics: dict[str, float]
    test_metrics: dict[str, float]
    best_metric: float | None
    best_epoch: int
    selected_epoch: int
    epochs: int
    global_step: int
    history: list[dict[str, Any]]
    out_dir: Path
    last_checkpoint: Path
    best_checkpoint: Path | None
    model: nn.Module = field(repr=False)
    ema_model: nn.Module | None = field(default=None, repr=False)

    @property
    def metrics(self) -> dict[str, float]:
        """``val_metrics``: the validation metrics of the selected (best, else last) epoch."""
        return self.val_metrics


def train(cfg: TrainConfig, *, model: nn.Module | None = None, task: Task | None = None,
          datasets: tuple[Dataset, Dataset, Dataset] | None = None,
          resume: bool | str | os.PathLike | None = None) -> TrainResult:
    """Train as ``cfg`` says; runs unchanged under ``torchrun --nproc_per_node=N``.

    What the engine expects of a model and of data (for the classification task; other tasks
    say what they feed in their own docstrings):

    * **Data**: each dataset is a map-style ``torch.utils.data.Dataset`` whose items are
      ``(x, y)``: ``x`` a tensor (or array) of one sample, ``y`` an integer class label. By
      default the loader stacks samples along a new first dimension, so the model gets
      ``[B, ...]`` (e.g. images ``[B, C, H, W]``) and labels ``[B]`` int64. For sequences whose
      samples are ``[T, ...]``, wrap the dataset in :class:`spikedrive.data.TimeMajorDataset`:
      batches are then time-major, ``[T, B, ...]`` (its ``time_major = True`` tells the engine
      the batch lies in dimension 1, ``batch_dim=1`` for the energy report). A dataset may
      define ``collate_fn`` to batch its samples itself.
    * **Splits**: three datasets ``(train, val, test)``: ``val`` picks ``best.pt``; ``test`` is
      evaluated once after the last epoch, with the selected weights, and never influences
      training or selection. Keep them disjoint.
    * **Model**: an ``nn.Module`` called as ``model(x)`` on the batch's inputs exactly as the
      loader yields them (``[B, ...]``, or ``[T, B, ...]`` for time-major data; a spiking
      model encodes a static image over its own ``T`` steps) and returning logits
      ``[B, classes]`` (not probabilities: the loss applies ``log_softmax``). Keep no state
      between calls. ``mixup`` / ``cutmix`` also need ``model_kwargs.num_classes`` or a
      ``num_classes`` attribute.

    Args:
        cfg: the recipe.
        model: a model to train instead of ``create_model(cfg.model, **cfg.model_kwargs)``
            (``cfg.model`` still names it in checkpoints).
        task: a task object instead of the registered ``cfg.task``.
        datasets: ``(train, val, test)`` instead of the registered ``cfg.dataset``.
        resume: overrides ``cfg.resume``: ``True`` (from ``out_dir/last.pt``), ``"auto"`` (from
            it if present), ``False``, or a checkpoint path.

    Returns:
        A :class:`TrainResult`: ``val_metrics`` (``metrics``) and ``test_metrics`` of the
        selected weights, the history, the checkpoints and the model.

    Raises:
        TrainingDiverged: the loss or the weights became non-finite; the last good checkpoint
            is left untouched.
        FileExistsError: starting afresh in an ``out_dir`` that already holds a run.
        ValueError: a config that does not fit the run (e.g. ``amp=fp16`` without CUDA,
            ``datasets`` not three datasets, a ``data_root`` that does not exist).
    """
    ctx = setup_distributed(cfg.device)
    try:
        return _Run(cfg, ctx, model, task, datasets, cfg.resume if resume is None else resume).fit()
    finally:
        cleanup_distributed(ctx)


class _Run:
    """One training run's state; split out of :func:`train` to keep each step readable."""

    def __init__(self, cfg: TrainConfig, ctx: DistContext, model: nn.Module | None, task: Task | None,
                 datasets: tuple[Dataset, Dataset, Dataset] | None, resume: Any) -> None:
        self.cfg, self.ctx = cfg, ctx
        self.out_dir = Path(cfg.out_dir)
        path = self._resume_path(resume)  # first, so a wrong out_dir fails before any work
        if path is None and (self.out_dir / LAST).exists():
            raise FileExistsError(
                f"out_dir {str(self.out_dir)!r} already holds a run ({LAST}); pass resume=true (or 'auto') "
                "to continue it, or choose another out_dir")
        if cfg.amp == "fp16" and ctx.device.type != "cuda":
            raise ValueError(f"config: amp='fp16' needs a CUDA device (float16 training runs with "
                             f"torch.amp.GradScaler), but this run is on {ctx.device}; use amp=bf16 or amp=none")
        if cfg.deterministic:
            set_deterministic(True)
        seed_everything(cfg.seed)
        # Same seed on every rank: identical initial weights (DDP would broadcast them anyway).
        self.model = (model if model is not None else create_model(cfg.model, **cfg.model_kwargs)).to(ctx.device)
        if cfg.neuron_backend != "auto":
            set_neuron_backend(self.model, cfg.neuron_backend)
        # From here on each rank draws its own noise (dropout, augmentation), else every rank
        # would apply the same masks to different samples.
        seed_everything(rank_seed(cfg.seed, ctx.rank))
        self.task = task if task is not None else build_task(cfg)
        # Rank 0 builds first, so a dataset generated into a cold cache is written once.
        splits = check_splits(datasets, "train: datasets") if datasets is not None else build_datasets(cfg, ctx)
        train_set, val_set, test_set = splits
        pin = ctx.device.type == "cuda"
        self.train_loader = make_train_loader(train_set, cfg, ctx.rank, ctx.world_size, pin_memory=pin)
        self.val_loader = make_eval_loader(val_set, cfg, ctx.rank, ctx.world_size, pin_memory=pin)
        self.test_loader = make_eval_loader(test_set, cfg, ctx.rank, ctx.world_size, pin_memory=pin)
        self.batch_dim = 1 if getattr(val_set, "time_major", False) else 0
        self.steps_per_epoch = steps_per_epoch(len(self.train_loader), cfg.grad_accum, cfg.max_steps_per_epoch)
        self.optimizer = build_optimizer(self.model, cfg)
        self.scaler = torch.amp.GradScaler("cuda") if cfg.amp == "fp16" else None
        self.ema = _build_ema(self.model, cfg.ema)
        # The selected weights (of the evaluated model: the EMA when on), kept on the CPU so the
        # test evaluation needs no file (a multi-node run may have no shared disk).
        self.best_state: dict[str, torch.Tensor] | None = None
        self.scheduler = build_scheduler(self.optimizer, cfg, self.steps_per_epoch)
        self.start_epoch, self.global_step = 0, 0
        self.best: float | None = None
        self.best_epoch = 0
        self.history: list[dict[str, Any]] = []
        if path is not None:
            self._restore(path)

    # --- setup ---------------------------------------------------------------------------

    def _resume_path(self, resume: Any) -> Path | None:
        last = self.out_dir / LAST
        if resume is False:
            return None
        if resume is True:
            if not last.is_file():
                raise FileNotFoundError(f"resume=true but there is no checkpoint at {str(last)!r}; "
                                        "use resume=auto to start afresh when there is none")
            return last
        if resume == "auto":
            return last if last.is_file() else None
        if not Path(resume).is_file():
            raise FileNotFoundError(f"resume={str(resume)!r}: no checkpoint there")
        return Path(resume)

    def _restore(self, path: Path) -> None:
        # CPU: RNG snapshots must stay CPU tensors; load_state_dict moves the rest to the model.
        state = load_checkpoint(path, map_location="cpu")
        check_compatible(state, self.cfg, path)
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as exc:
            raise ValueError(f"checkpoint {str(path)!r} does not fit the model: {exc}") from exc
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"checkpoint {str(path)!r} does not fit the optimizer (are the same parameters "
                             f"trainable?): {exc}") from exc
        # The schedule's shape comes from the current config (so epochs can be extended); only
        # its position is restored, and the lr of every group is set to the schedule's value
        # there (the checkpoint's lr is that of the old shape).
        sched = dict(state["scheduler"], lr_lambdas=[None] * len(self.scheduler.lr_lambdas))
        self.scheduler.load_state_dict(sched)
        apply_schedule(self.scheduler)
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None:
            if "ema" in state:
                self.ema.module.load_state_dict(state["ema"])
            else:  # a run without EMA continued with it: the average starts at the restored weights
                self.ema.set(self.model)
                self._say(f"{path} holds no EMA weights: the EMA starts from its model weights")
        self.start_epoch, self.global_step = int(state["epoch"]), int(state["global_step"])
        self.best, self.best_epoch = state.get("best_metric"), int(state.get("best_epoch", 0))
        self.history = [dict(r) for r in state["history"]]
        rngs = state["rng"]
        if len(rngs) == self.ctx.world_size:
            set_rng_state(rngs[self.ctx.rank])
            self._say(f"resumed from {path} at epoch {self.start_epoch}")
        else:  # a different number of processes cannot replay the same streams anyway
            self._say(f"resumed from {path} at epoch {self.start_epoch} with {self.ctx.world_size} "
                      f"process(es) instead of {len(rngs)}: random streams start afresh")

    # --- the loop ------------------------------------------------------------------------

    def fit(self) -> TrainResult:
        cfg, ctx = self.cfg, self.ctx
        log = None
        if ctx.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, self.out_dir / "config.yaml")
            log = MetricsLog(self.out_dir, self.history)
        model = ctx.wrap(self.model)
        for epoch in range(self.start_epoch, cfg.epochs):
            started = time.perf_counter()
            set_loader_epoch(self.train_loader, cfg.seed, epoch, ctx.rank, epochs=cfg.epochs)
            train_stats, self.global_step = train_one_epoch(
                model, self.task, self.train_loader, self.optimizer, self.scheduler, ctx=ctx,
                epoch=epoch + 1, epochs=cfg.epochs, global_step=self.global_step, clip_grad=cfg.clip_grad,
                clip_mode=cfg.clip_mode,
                max_steps=cfg.max_steps_per_epoch, progress=cfg.progress, on_diverge=self._with_checkpoint_note,
                grad_accum=cfg.grad_accum, amp=cfg.amp, scaler=self.scaler, ema=self.ema)
            ctx.sync_buffers(self.model)
            if self.ema is not None:
                ctx.sync_buffers(self.ema.module)
            bad = check_finite_weights(self.model)
            if bad:
                raise TrainingDiverged(self._with_checkpoint_note(
                    f"training diverged: weights became non-finite during epoch {epoch + 1} "
                    f"(by global step {self.global_step}; e.g. {bad[:3]}); nothing was saved. "
                    "Try a lower lr, a longer warm-up or clip_grad."),
                    epoch=epoch + 1, step=None, global_step=self.global_step)
            val = evaluate(self._evaluated(), self.task, self.val_loader, ctx.device, all_reduce=ctx.all_reduce_sum,
                           progress=cfg.progress and ctx.is_main, amp=cfg.amp)
            improved = self._update_best(val, epoch + 1)
            if improved:
                self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in self._evaluated().state_dict().items()}
            record = {"epoch": epoch + 1, "global_step": self.global_step, "lr": self.scheduler.get_last_lr()[0],
                      **{f"train_{k}": v for k, v in train_stats.items()},
                      **{f"val_{k}": v for k, v in val.items()},
                      "epoch_time_s": time.perf_counter() - started}
            self.history.append(record)
            rngs = ctx.gather_objects(rng_state())  # a collective: every rank takes part
            if ctx.is_main:
                state = self._state(epoch + 1, rngs)
                if improved:
                    save_checkpoint(state, self.out_dir / BEST)
                save_checkpoint(state, self.out_dir / LAST)
                log.append(record)
                self._say(self._summary(record, val))
        if cfg.energy_report and ctx.is_main and self.history:
            self._report_energy()
        selected, val_metrics, test_metrics = self._test()
        if ctx.is_main:
            final = {"selected_epoch": selected, "selected": BEST if self.best_epoch else "last",
                     "global_step": self.global_step, **{f"val_{k}": v for k, v in val_metrics.items()},
                     **{f"test_{k}": v for k, v in test_metrics.items()}}
            log.finish(final)
            self._say(f"test (weights of epoch {selected}, {final['selected']}): "
                      + "  ".join(f"{k} {v:.4f}" for k, v in final.items() if k[:4] in ("val_", "test")))
        return TrainResult(
            val_metrics=val_metrics, test_metrics=test_metrics, best_metric=self.best, best_epoch=self.best_epoch,
            selected_epoch=selected, epochs=max(self.start_epoch, len(self.history)),
            global_step=self.global_step, history=list(self.history), out_dir=self.out_dir,
            last_checkpoint=self.out_dir / LAST,
            best_checkpoint=self.out_dir / BEST if self.best_epoch else None, model=self.model,
            ema_model=self.ema.module if self.ema is not None else None)

    def _test(self) -> tuple[int, dict[str, float], dict[str, float]]:
        """``(selected epoch, its validation metrics, test metrics)``: the one evaluation of the
        test split, with the best epoch's weights (the final ones when there is no best)."""
        cfg, ctx = self.cfg, self.ctx
        selected = self.best_epoch or int(self.history[-1]["epoch"])
        record = next(r for r in self.history if r["epoch"] == selected)
        tested = self._evaluated()
        if self.best_epoch:
            state = self.best_state
            if state is None:  # a resumed run that did not improve on the best before it
                saved = load_checkpoint(self.out_dir / BEST, map_location="cpu")
                state = saved["ema"] if self.ema is not None and "ema" in saved else saved["model"]
            # A copy, so the returned model and ``last.pt`` keep the final weights.
            tested = copy.deepcopy(unwrap_model(tested))
            tested.load_state_dict(state)
        test = evaluate(tested, self.task, self.test_loader, ctx.device, all_reduce=ctx.all_reduce_sum,
                        progress=cfg.progress and ctx.is_main, desc="test", amp=cfg.amp)
        return selected, _val_metrics(record), test

    def _evaluated(self) -> nn.Module:
        """The weights that are validated, selected and tested: the EMA's when on."""
        return self.ema.module if self.ema is not None else self.model

    # --- helpers -------------------------------------------------------------------------

    def _update_best(self, val: dict[str, float], epoch: int) -> bool:
        cfg = self.cfg
        if cfg.monitor not in val:
            raise ValueError(f"config: monitor={cfg.monitor!r} is not among the task's metrics {sorted(val)}")
        value = val[cfg.monitor]
        if not math.isfinite(value):
            return False
        better = self.best is None or (value > self.best if cfg.monitor_mode == "max" else value < self.best)
        if better:
            self.best, self.best_epoch = value, epoch
        return better

    def _state(self, epoch: int, rngs: list[dict[str, Any]]) -> dict[str, Any]:
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "epoch": epoch, "global_step": self.global_step,
                 "best_metric": self.best, "best_epoch": self.best_epoch, "config": self.cfg.to_dict(),
                 "rng": rngs, "history": list(self.history)}
        if self.ema is not None:
            state["ema"] = self.ema.module.state_dict()
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        return state

    def _report_energy(self) -> None:
        # A fixed number of validation samples, fed as the task feeds them (not one batch).
        report = write_energy_report(unwrap_model(self._evaluated()), self.val_loader, self.out_dir, self.batch_dim,
                                     title=self.cfg.model, task=self.task, device=self.ctx.device)
        if report is None:
            self._say(f"energy report skipped: {type(self.task).__name__} defines no model_input(batch)")
            return
        self._say(f"energy per sample: SNN {format_energy(report.snn_energy_pj)}, ANN "
                  f"{format_energy(report.ann_energy_pj)} over {report.samples} samples "
                  f"(table in {self.out_dir / 'energy.txt'})")

    def _with_checkpoint_note(self, message: str) -> str:
        last = self.out_dir / LAST
        if last.is_file():
            return f"{message} The last good checkpoint, {last}, is untouched."
        return f"{message} No checkpoint had been written yet."

    def _summary(self, record: dict[str, Any], val: dict[str, float]) -> str:
        metrics = " ".join(f"{k} {v:.4f}" for k, v in val.items())
        best = f"{self.best:.4f} (epoch {self.best_epoch})" if self.best is not None else "n/a"
        return (f"epoch {record['epoch']}/{self.cfg.epochs}  train loss {record.get('train_loss', float('nan')):.4f}"
                f"  val {metrics}  best {self.cfg.monitor} {best}  {record['epoch_time_s']:.1f}s")

    def _say(self, line: str) -> None:
        if self.cfg.progress and self.ctx.is_main:
            tqdm.write(line)


def _build_ema(model: nn.Module, decay: float | None) -> nn.Module | None:
    """timm's ``ModelEmaV3`` of ``model`` (a copy on its device), or ``None`` without a decay."""
    if decay is None:
        return None
    from timm.utils import ModelEmaV3

    return ModelEmaV3(model, decay=decay)


def _val_metrics(record: dict[str, Any]) -> dict[str, float]:
    return {k[len("val_"):]: v for k, v in record.items() if k.startswith("val_")}
