"""Iterative pruning with rewinding (lottery tickets), all rounds in one resumable run of the engine.

Round 0 trains the dense model for ``epochs`` and keeps its weights at ``rewind_epoch``
(``0``: the initialisation). Each later round prunes ``rate`` of the remaining weights of the
previous round's final weights (``criterion``, ``scope``), rewinds the surviving weights to the
kept ones and trains ``epochs - rewind_epoch`` epochs with a fresh schedule, as the baseline's
code does (Kim et al., ECCV 2022). ``schedule="one_shot"`` prunes once, straight to the
sparsity the iterative rounds would reach. ``reinit_control`` then trains every round's mask
again from a fresh random initialisation (the LTH control), for the same epochs.

Run folder (``cfg.out_dir``)::

    init.pt, rewind.pt          dense state dicts: the initialisation, the rewind point
    round_00/ ... round_NN/     one engine run each (config.yaml, last.pt, best.pt, metrics.json),
                                masks.pt (the round's masks), result.json (written when done)
    reinit_01/ ...              the re-initialised control, same layout
    imp.json                    every finished round: sparsity per layer, accuracies, energy

Interrupted anywhere, the same call continues: finished rounds are read back, and the engine
resumes the current round from its ``last.pt`` (with its masks re-applied first).
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import yaml
from torch import nn
from torch.utils.data import Dataset

from ..engine import (
    TrainConfig, apply_overrides, build_datasets, build_task, config_from_dict, load_checkpoint,
    make_eval_loader, make_train_loader, seed_everything, train,
)
from ..engine.config import parse_override_value, read_recipe
from ..engine.io import atomic_write, atomic_write_text
from ..engine.report import ENERGY_SAMPLES, measure_energy
from ..models import create_model
from .api import SCOPES, prune_model
from .criteria import CRITERIA
from .methods import apply_masks, get_masks
from .report import sparsity_report

__all__ = ["PruneConfig", "RoundResult", "ImpResult", "run_imp", "load_prune_config", "round_amounts"]

SCHEDULES = ("iterative", "one_shot")


@dataclass
class PruneConfig:
    """The pruning part of a lottery recipe (the ``pruning:`` mapping of its YAML).

    Attributes:
        criterion: ``"magnitude" | "random" | "spiking"``.
        scope: ``"global" | "layer"``.
        rate: fraction of the remaining weights pruned per round (0.25 in the protocol).
        rounds: pruning rounds after the dense round 0 (15 in the protocol: 98.7% sparsity).
        schedule: ``"iterative"`` (``rate`` per round) or ``"one_shot"`` (one round straight to
            ``1 - (1 - rate) ** rounds``).
        rewind_epoch: epoch whose weights the tickets start from (0: the initialisation).
        reinit_control: also train each round's mask from a fresh random initialisation.
        stats_batches: training batches measured for the spiking criterion's statistics.
        keep_magnitude: the spiking criterion leaves the encoding layer and the classifier to
            magnitude (SF-IMP-1).
        energy_samples: validation samples of each round's energy report (0: none).
    """

    criterion: str = "magnitude"
    scope: str = "global"
    rate: float = 0.25
    rounds: int = 15
    schedule: str = "iterative"
    rewind_epoch: int = 0
    reinit_control: bool = False
    stats_batches: int = 8
    keep_magnitude: bool = True
    energy_samples: int = ENERGY_SAMPLES

    def __post_init__(self) -> None:
        def need(name: str, ok: bool, expected: str) -> None:
            if not ok:
                raise ValueError(f"pruning: {name}={getattr(self, name)!r} is invalid; expected {expected}")
        need("criterion", self.criterion in CRITERIA, f"one of {CRITERIA}")
        need("scope", self.scope in SCOPES, f"one of {SCOPES}")
        need("rate", isinstance(self.rate, (int, float)) and 0.0 < self.rate < 1.0, "a fraction in (0, 1)")
        need("rounds", isinstance(self.rounds, int) and self.rounds >= 1, "an integer >= 1")
        need("schedule", self.schedule in SCHEDULES, f"one of {SCHEDULES}")
        need("rewind_epoch", isinstance(self.rewind_epoch, int) and self.rewind_epoch >= 0, "an integer >= 0")
        need("stats_batches", isinstance(self.stats_batches, int) and self.stats_batches >= 1, "an integer >= 1")
        need("energy_samples", isinstance(self.energy_samples, int) and self.energy_samples >= 0, "an integer >= 0")


def round_amounts(p: PruneConfig) -> list[float]:
    """Fraction of the remaining weights pruned at each round 1, 2, ...: ``[rate] * rounds``, or
    one round of ``1 - (1 - rate) ** rounds`` for ``one_shot``."""
    if p.schedule == "one_shot":
        return [1.0 - (1.0 - p.rate) ** p.rounds]
    return [p.rate] * p.rounds


@dataclass
class RoundResult:
    """One finished round: sparsity (global and per layer), the engine's metrics, energy."""

    round: int
    kind: str  # "ticket" or "reinit"
    sparsity: float
    layer_sparsity: dict[str, float]
    val_metrics: dict[str, float]
    test_metrics: dict[str, float]
    epochs: int
    energy: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able."""
        return dataclasses.asdict(self)


@dataclass
class ImpResult:
    """Every round of a run: the tickets (round 0 is dense) and the re-initialised controls."""

    rounds: list[RoundResult]
    reinit: list[RoundResult]
    out_dir: Path

    def to_dict(self) -> dict[str, Any]:
        """JSON-able."""
        return {"rounds": [r.to_dict() for r in self.rounds], "reinit": [r.to_dict() for r in self.reinit]}


def load_prune_config(path: str | Path, overrides: list[str] | None = None) -> tuple[TrainConfig, PruneConfig]:
    """A lottery recipe: a training recipe (:class:`TrainConfig` fields) with a ``pruning:``
    mapping (:class:`PruneConfig`). Overrides ``pruning.<key>=value`` set the pruning part, the
    others the training part (as ``spikedrive train``); both halves parse their values by the
    engine's override rule."""
    # load_config cannot read this file: it refuses the ``pruning:`` key as an unknown field.
    values = read_recipe(path, "load_prune_config")
    prune_values = dict(values.pop("pruning", None) or {})
    train_over, prune_over = [], []
    for item in overrides or []:
        (prune_over if item.strip().startswith("pruning.") else train_over).append(item)
    for item in prune_over:
        key, sep, raw = item.strip()[len("pruning."):].partition("=")
        if not sep:
            raise ValueError(f"override {item!r}: expected pruning.key=value (e.g. pruning.criterion=spiking)")
        prune_values[key.strip()] = parse_override_value(raw)
    names = {f.name for f in dataclasses.fields(PruneConfig)}
    unknown = sorted(set(prune_values) - names)
    if unknown:
        raise ValueError(f"{path}: unknown pruning key(s) {unknown}; known: {sorted(names)}")
    try:
        cfg = apply_overrides(config_from_dict(values), train_over)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    return cfg, PruneConfig(**prune_values)


def run_imp(cfg: TrainConfig, pcfg: PruneConfig, *, model_fn: Callable[[], nn.Module] | None = None,
            datasets: tuple[Dataset, Dataset, Dataset] | None = None, log: Callable[[str], None] | None = None,
            ) -> ImpResult:
    """Run (or continue) every round of ``pcfg`` with the engine; see the module docstring.

    Args:
        cfg: the training recipe; ``cfg.out_dir`` is the run folder, ``cfg.epochs`` the epochs of
            round 0, ``cfg.seed`` the initialisation's seed.
        pcfg: the pruning recipe.
        model_fn: builds a fresh model (default ``create_model(cfg.model, **cfg.model_kwargs)``).
        datasets: ``(train, val, test)`` instead of the registered ``cfg.dataset``.
        log: where to print one line per round (default: nowhere).

    Returns:
        An :class:`ImpResult`; also written to ``out_dir/imp.json``.

    Raises:
        ValueError: ``rewind_epoch`` not below ``cfg.epochs``, or a run folder made with another
            pruning recipe.
    """
    if pcfg.rewind_epoch >= cfg.epochs:
        raise ValueError(f"pruning: rewind_epoch={pcfg.rewind_epoch} must be below epochs={cfg.epochs}")
    say = log or (lambda line: None)
    build = model_fn or (lambda: create_model(cfg.model, **cfg.model_kwargs))
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _check_same_recipe(out, pcfg)
    splits = datasets if datasets is not None else build_datasets(cfg)
    run = _Imp(cfg, pcfg, build, splits, out, say)
    return run.all_rounds()


def _check_same_recipe(out: Path, pcfg: PruneConfig) -> None:
    saved = out / "pruning.yaml"
    now = dataclasses.asdict(pcfg)
    if saved.is_file():
        old = yaml.safe_load(saved.read_text()) or {}
        diff = {k: (old.get(k), v) for k, v in now.items() if old.get(k) != v}
        if diff:
            raise ValueError(f"run folder {str(out)!r} holds a pruning run made with other settings "
                             f"{ {k: o for k, (o, _) in diff.items()} } than these { {k: n for k, (_, n) in diff.items()} }; "
                             "choose another out_dir")
    else:
        atomic_write_text(saved, yaml.safe_dump(now, sort_keys=False))


class _Imp:
    """One IMP run's state; split out of :func:`run_imp`."""

    def __init__(self, cfg: TrainConfig, p: PruneConfig, build: Callable[[], nn.Module],
                 splits: tuple[Dataset, Dataset, Dataset], out: Path, say: Callable[[str], None]) -> None:
        self.cfg, self.p, self.build, self.splits, self.out, self.say = cfg, p, build, splits, out, say
        self.task = build_task(cfg)

    # --- the rounds ----------------------------------------------------------------------

    def all_rounds(self) -> ImpResult:
        rounds = [self._round0()]
        for r, amount in enumerate(round_amounts(self.p), start=1):
            rounds.append(self._ticket_round(r, amount))
        reinit = []
        if self.p.reinit_control:
            for r in range(1, len(rounds)):
                reinit.append(self._reinit_round(r))
        result = ImpResult(rounds, reinit, self.out)
        atomic_write_text(self.out / "imp.json", json.dumps(result.to_dict(), indent=2) + "\n")
        return result

    def _round0(self) -> RoundResult:
        folder = self._dir("round", 0)
        done = self._done(folder)
        if done is not None:
            return done
        seed_everything(self.cfg.seed)
        model = self.build()
        init = self.out / "init.pt"
        if init.is_file():
            model.load_state_dict(_load_state(init))
        else:
            _save_state(model.state_dict(), init)
        rewind = self.out / "rewind.pt"
        handle = None
        if self.p.rewind_epoch == 0:
            if not rewind.is_file():
                _save_state(model.state_dict(), rewind)
        elif not rewind.is_file():
            handle = self._rewind_probe(model, folder, rewind)
        try:
            result = train(self._round_cfg(folder, self.cfg.epochs), model=model, datasets=self.splits, resume="auto")
        finally:
            if handle is not None:
                handle.remove()
        if not rewind.is_file():
            raise RuntimeError(f"round 0 finished without reaching rewind_epoch={self.p.rewind_epoch}")
        return self._finish(folder, 0, "ticket", result)

    def _ticket_round(self, r: int, amount: float) -> RoundResult:
        folder = self._dir("round", r)
        done = self._done(folder)
        if done is not None:
            return done
        masks_file = folder / "masks.pt"
        if masks_file.is_file():
            masks = _load_state(masks_file)
        else:
            previous = self._trained(r - 1)
            data = self._stat_batches() if self.p.criterion == "spiking" else None
            prune_model(previous, amount, self.p.criterion, self.p.scope, data, seed=self.cfg.seed + r,
                        keep_magnitude=self.p.keep_magnitude)
            masks = get_masks(previous)
            _save_state(masks, masks_file)
        model = self.build()
        model.load_state_dict(_load_state(self.out / "rewind.pt"))
        apply_masks(model, masks)
        epochs = self.cfg.epochs - self.p.rewind_epoch
        result = train(self._round_cfg(folder, epochs), model=model, datasets=self.splits, resume="auto")
        return self._finish(folder, r, "ticket", result)

    def _reinit_round(self, r: int) -> RoundResult:
        folder = self._dir("reinit", r)
        done = self._done(folder)
        if done is not None:
            return done
        # Another seed than the ticket's initialisation: a fresh draw from the same distribution.
        seed_everything(self.cfg.seed + 10_000 + r)
        model = self.build()
        apply_masks(model, _load_state(self._dir("round", r) / "masks.pt"))
        epochs = self.cfg.epochs - self.p.rewind_epoch
        result = train(self._round_cfg(folder, epochs), model=model, datasets=self.splits, resume="auto")
        return self._finish(folder, r, "reinit", result)

    # --- helpers -------------------------------------------------------------------------

    def _dir(self, kind: str, r: int) -> Path:
        return self.out / f"{kind}_{r:02d}"

    def _round_cfg(self, folder: Path, epochs: int) -> TrainConfig:
        return dataclasses.replace(self.cfg, out_dir=str(folder), epochs=epochs, resume="auto",
                                   warmup_epochs=min(self.cfg.warmup_epochs, epochs))

    def _done(self, folder: Path) -> RoundResult | None:
        path = folder / "result.json"
        if not path.is_file():
            return None
        return RoundResult(**json.loads(path.read_text()))

    def _trained(self, r: int) -> nn.Module:
        """Round ``r``'s final weights (from its ``last.pt``), with its masks."""
        model = self.build()
        if r > 0:
            apply_masks(model, _load_state(self._dir("round", r) / "masks.pt"))
        state = load_checkpoint(self._dir("round", r) / "last.pt", map_location="cpu")
        model.load_state_dict(state["model"])
        return model

    def _stat_batches(self) -> list[torch.Tensor]:
        loader = make_eval_loader(self.splits[0], self.cfg)
        batches = []
        for batch in loader:
            batches.append(self.task.model_input(batch))
            if len(batches) >= self.p.stats_batches:
                break
        return batches

    def _rewind_probe(self, model: nn.Module, folder: Path, rewind: Path) -> Any:
        """A forward pre-hook that saves the weights once ``rewind_epoch`` epochs of optimizer
        steps are done (at the first training forward after them); counts from the round's
        ``last.pt`` when the round resumes."""
        loader = make_train_loader(self.splits[0], self.cfg, 0, 1)
        steps = len(loader) // self.cfg.grad_accum
        steps = min(steps, self.cfg.max_steps_per_epoch or steps)
        target = self.p.rewind_epoch * steps * self.cfg.grad_accum
        last = folder / "last.pt"
        count = [0]
        if last.is_file():
            count[0] = int(load_checkpoint(last, map_location="cpu")["global_step"]) * self.cfg.grad_accum

        def hook(module: nn.Module, args: Any) -> None:
            if not (module.training and torch.is_grad_enabled()):
                return
            if count[0] == target and not rewind.is_file():
                _save_state(module.state_dict(), rewind)
            count[0] += 1

        return model.register_forward_pre_hook(hook)

    def _finish(self, folder: Path, r: int, kind: str, result: Any) -> RoundResult:
        model = result.model
        report = sparsity_report(model)
        energy: dict[str, float] = {}
        if self.p.energy_samples:
            e = measure_energy(copy.deepcopy(model).cpu(), make_eval_loader(self.splits[1], self.cfg), self.task,
                               samples=self.p.energy_samples, sparse_weights=True,
                               batch_dim=1 if getattr(self.splits[1], "time_major", False) else 0)
            if e is not None:
                energy = {"snn_energy_pj": e.snn_energy_pj, "total_sops": e.total_sops,
                          "encoding_macs": e.encoding_macs, "ann_energy_pj": e.ann_energy_pj}
        rr = RoundResult(r, kind, report.sparsity, {l.name: l.sparsity for l in report.layers},
                         dict(result.val_metrics), dict(result.test_metrics), result.epochs, energy)
        atomic_write_text(folder / "result.json", json.dumps(rr.to_dict(), indent=2) + "\n")
        acc = rr.test_metrics.get("accuracy")
        self.say(f"{kind} round {r}: sparsity {100 * rr.sparsity:.1f}%  test accuracy "
                 f"{'n/a' if acc is None else f'{100 * acc:.2f}%'}"
                 + (f"  energy {energy['snn_energy_pj'] / 1e3:.2f} nJ" if energy else ""))
        return rr

def _save_state(state: dict[str, torch.Tensor], path: Path) -> None:
    plain = {k: v.detach().to("cpu", copy=True) for k, v in state.items()}
    atomic_write(path, lambda f: torch.save(plain, f))


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)
