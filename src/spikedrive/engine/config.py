"""The training recipe: one validated dataclass, loaded from YAML with ``key=value`` overrides.

Every recipe under ``configs/`` is a :class:`TrainConfig`; the ``task:`` field says which task
object (classification, detection, depth) the engine drives. Names (model, task, dataset) are
checked against their registries when the run is built, so a recipe can be loaded before the
package that registers its dataset is imported.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from ..neurons import BACKENDS
from .io import atomic_write_text

__all__ = [
    "TrainConfig", "apply_overrides", "config_from_dict", "load_config", "parse_override_value", "plain_value",
    "read_recipe", "save_config",
]

OPTIMIZERS = ("adamw", "adam", "sgd", "lamb")
AMP_MODES = ("none", "bf16", "fp16")
# Old field names still read from YAML and overrides (with a FutureWarning): old -> new.
RENAMED = {"grad_clip": "clip_grad"}
SCHEDULERS = ("cosine", "constant")
CLIP_MODES = ("norm", "agc", "value")
MONITOR_MODES = ("max", "min")
_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")

# YAML 1.1 (PyYAML) reads a float only with a dot and a signed exponent, so "1e-3" and "1.0e3"
# stay text. Recipes and overrides read them as Python and YAML 1.2 do: as numbers.
_FLOAT_RE = re.compile(r"""^(?:
     [-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
    |[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.VERBOSE)


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, but exponent floats without a dot (``1e-3``) are floats."""


class _Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper with :class:`_Loader`'s float rule, so text such as ``"1e-3"`` is
    quoted and reads back as text."""


for _cls in (_Loader, _Dumper):
    _cls.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_RE, list("-+0123456789."))


@dataclass
class TrainConfig:
    """A training recipe. The defaults are the embedded demo (``digits_snn`` on 8x8 digits).

    Attributes:
        task: name of the task in the task registry (``"classification"``, ...).
        task_kwargs: settings of the task beyond the shared fields, read by its builder (e.g. the
            detection loss gains and NMS thresholds, the depth loss weights); each task refuses
            keys it does not know.
        model: registered model name, built with ``create_model(model, **model_kwargs)``.
        model_kwargs: keyword arguments of the model (e.g. ``{"T": 4, "num_classes": 10}``).
        dataset: name in the dataset registry; its builder returns ``(train, val, test)``:
            ``val`` selects ``best.pt``, ``test`` is evaluated once after training and never
            takes part in model selection.
        dataset_kwargs: keyword arguments of the dataset builder (e.g. ``val_fraction``,
            ``test_fraction`` and ``seed`` of the ``digits`` split).
        data_root: an existing folder holding the dataset on disk, or ``None`` (the dataset's
            default location, e.g. the generated-data cache). It is never created; a dataset
            with embedded data (``digits``) refuses it.
        epochs: passes over the training set.
        batch_size: the *global* batch of one forward pass: under DDP each of N ranks gets
            ``batch_size / N``. An optimizer step sees ``batch_size * grad_accum`` samples.
        eval_batch_size: global batch for evaluation (``None``: same as ``batch_size``).
        lr: peak learning rate (for the global batch).
        optimizer: ``"adamw" | "adam" | "sgd" | "lamb"`` (LAMB is ``timm.optim.Lamb``, with its own
            gradient clipping off: ``clip_grad`` is the one clip).
        momentum: SGD momentum (ignored by Adam-type optimizers).
        weight_decay: decay of weight matrices and kernels; biases and norm parameters (1-D
            tensors) are never decayed.
        no_weight_decay: parameter-name patterns (``fnmatch``, e.g. ``"*.pos_embed"``,
            ``"*.alpha"``) also excluded from weight decay, whatever their shape; see
            :func:`~spikedrive.engine.optim.param_groups`.
        scheduler: ``"cosine"`` (to zero at the last step) or ``"constant"``, after warm-up.
        warmup_epochs: linear warm-up length in epochs (fractions allowed), stepped per batch.
        grad_accum: micro-batches of ``batch_size`` whose gradients are summed into one optimizer
            step (each loss scaled by ``1 / grad_accum``); the schedule, ``max_steps_per_epoch``
            and ``global_step`` count optimizer steps. Leftover micro-batches at the end of an
            epoch that do not fill a step are skipped.
        clip_grad: maximum global gradient norm (L2 over all parameters), applied after
            accumulation (and after un-scaling under fp16), or ``None`` for no clipping.
            ``grad_clip`` is read as a deprecated alias.
        clip_mode: what ``clip_grad`` bounds: ``"norm"`` (the global L2 norm), ``"agc"``
            (adaptive gradient clipping, Brock et al. 2021, through timm: each unit's gradient
            norm to at most ``clip_grad`` times its weight norm; T-RevSNN uses 0.02) or
            ``"value"`` (each gradient element to ``[-clip_grad, clip_grad]``).
        warmup_lr: learning rate at the first warm-up step (the warm-up rises linearly from it
            to ``lr``; 0 starts at ``lr / warmup_steps``).
        min_lr: floor of the cosine schedule (it decays from ``lr`` to ``min_lr``).
        amp: automatic mixed precision of the forward passes (training and evaluation):
            ``"none"``; ``"bf16"`` (``torch.autocast`` with bfloat16, CPU or CUDA); ``"fp16"``
            (float16 autocast with ``torch.amp.GradScaler``, CUDA only: refused on CPU).
        ema: decay of an exponential moving average of the weights (``timm.utils.ModelEmaV3``,
            updated after every optimizer step, e.g. ``0.9998``), or ``None`` for none. When
            set, validation, ``best.pt`` selection and the test evaluation use the EMA weights;
            checkpoints hold them under ``"ema"`` and resume restores them.
        label_smoothing: cross-entropy label smoothing in ``[0, 1)`` (classification); with
            mixup / cutmix it is folded into the mixed soft targets, as timm does.
        mixup: mixup alpha (``0``: off), through ``timm.data.Mixup`` (classification).
        cutmix: cutmix alpha (``0``: off); with both on, each batch uses one of them (timm's
            ``switch_prob`` 0.5). Mixing needs ``model_kwargs.num_classes`` (or a model with a
            ``num_classes`` attribute) and an even batch per rank; it applies to image batches
            ``[B, C, H, W]`` and to time-major ``[T, B, C, H, W]`` batches, where one draw
            (the same lambda and box) mixes every time step. The training loss is then the
            soft-target cross-entropy.
        monitor: validation metric deciding ``best.pt`` (a key of the task's metrics).
        monitor_mode: ``"max"`` or ``"min"``: whether a larger ``monitor`` is better.
        seed: seeds Python, NumPy and torch, the data order of every epoch and the split.
        deterministic: ask torch for deterministic kernels (slower on CUDA).
        out_dir: run folder (config, metrics, checkpoints); empty: ``runs/<model>_<dataset>``.
        resume: ``False``; ``True`` (continue from ``out_dir/last.pt``, which must exist);
            ``"auto"`` (continue if it exists, else start fresh); or a checkpoint path.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        num_workers: DataLoader worker processes per rank.
        max_steps_per_epoch: cap on optimizer steps per epoch (quick tests), ``None`` for all.
        progress: show tqdm progress bars and per-epoch lines (rank 0 only).
        neuron_backend: ``"auto"`` keeps each neuron's own backend (the fused kernel where one
            runs); ``"reference" | "cpu" | "triton"`` sets every neuron of the model to it.
        energy_report: after the last epoch, write ``energy.txt``, ``energy.json`` and
            ``firing_rates.png`` (per-layer firing rates, SOPs, SNN vs ANN energy) to ``out_dir``.
    """

    task: str = "classification"
    task_kwargs: dict[str, Any] = field(default_factory=dict)
    model: str = "digits_snn"
    model_kwargs: dict[str, Any] = field(default_factory=lambda: {"T": 4})
    dataset: str = "digits"
    dataset_kwargs: dict[str, Any] = field(default_factory=dict)
    data_root: str | None = None
    epochs: int = 15
    batch_size: int = 64
    eval_batch_size: int | None = None
    lr: float = 5e-3
    optimizer: str = "adamw"
    momentum: float = 0.9
    weight_decay: float = 0.01
    scheduler: str = "cosine"
    warmup_epochs: float = 1.0
    no_weight_decay: list[str] = field(default_factory=list)
    grad_accum: int = 1
    clip_grad: float | None = None
    clip_mode: str = "norm"
    warmup_lr: float = 0.0
    min_lr: float = 0.0
    amp: str = "none"
    ema: float | None = None
    label_smoothing: float = 0.0
    mixup: float = 0.0
    cutmix: float = 0.0
    monitor: str = "accuracy"
    monitor_mode: str = "max"
    seed: int = 0
    deterministic: bool = False
    out_dir: str = ""
    resume: bool | str = False
    device: str = "auto"
    num_workers: int = 0
    max_steps_per_epoch: int | None = None
    progress: bool = True
    neuron_backend: str = "auto"
    energy_report: bool = True

    def __post_init__(self) -> None:
        hints = _field_types()
        for f in dataclasses.fields(self):
            setattr(self, f.name, _coerce(f.name, getattr(self, f.name), hints[f.name], raw=None))
        if not self.out_dir:
            self.out_dir = os.path.join("runs", f"{self.model}_{self.dataset}")
        for name in ("task", "model", "dataset"):
            if not getattr(self, name):
                _fail(name, getattr(self, name), "a non-empty registry name")
        _require("epochs", self.epochs, self.epochs >= 1, "an integer >= 1")
        _require("batch_size", self.batch_size, self.batch_size >= 1, "an integer >= 1")
        _require("eval_batch_size", self.eval_batch_size,
                 self.eval_batch_size is None or self.eval_batch_size >= 1, "null or an integer >= 1")
        _require("lr", self.lr, self.lr > 0, "a learning rate > 0")
        _require("optimizer", self.optimizer, self.optimizer in OPTIMIZERS, f"one of {OPTIMIZERS}")
        _require("momentum", self.momentum, 0.0 <= self.momentum < 1.0, "a value in [0, 1)")
        _require("weight_decay", self.weight_decay, self.weight_decay >= 0.0, "a value >= 0")
        _require("scheduler", self.scheduler, self.scheduler in SCHEDULERS, f"one of {SCHEDULERS}")
        _require("warmup_epochs", self.warmup_epochs, 0.0 <= self.warmup_epochs <= self.epochs,
                 f"a value in [0, epochs={self.epochs}]")
        _require("grad_accum", self.grad_accum, self.grad_accum >= 1, "an integer >= 1")
        _require("clip_grad", self.clip_grad, self.clip_grad is None or self.clip_grad > 0,
                 "null or a norm > 0")
        _require("clip_mode", self.clip_mode, self.clip_mode in CLIP_MODES, f"one of {CLIP_MODES}")
        _require("warmup_lr", self.warmup_lr, 0.0 <= self.warmup_lr <= self.lr, f"a value in [0, lr={self.lr}]")
        _require("min_lr", self.min_lr, 0.0 <= self.min_lr <= self.lr, f"a value in [0, lr={self.lr}]")
        _require("amp", self.amp, self.amp in AMP_MODES, f"one of {AMP_MODES}")
        _require("ema", self.ema, self.ema is None or 0.0 < self.ema < 1.0, "null or a decay in (0, 1)")
        _require("label_smoothing", self.label_smoothing, 0.0 <= self.label_smoothing < 1.0,
                 "a value in [0, 1)")
        _require("mixup", self.mixup, self.mixup >= 0.0, "an alpha >= 0 (0: off)")
        _require("cutmix", self.cutmix, self.cutmix >= 0.0, "an alpha >= 0 (0: off)")
        _require("monitor_mode", self.monitor_mode, self.monitor_mode in MONITOR_MODES,
                 f"one of {MONITOR_MODES}")
        _require("resume", self.resume, self.resume != "",
                 "false, true, 'auto' or a checkpoint path")
        _require("seed", self.seed, self.seed >= 0, "an integer >= 0")
        _require("device", self.device, bool(_DEVICE_RE.match(self.device)),
                 "'auto', 'cpu', 'cuda' or 'cuda:N'")
        _require("neuron_backend", self.neuron_backend, self.neuron_backend in BACKENDS, f"one of {BACKENDS}")
        _require("num_workers", self.num_workers, self.num_workers >= 0, "an integer >= 0")
        _require("max_steps_per_epoch", self.max_steps_per_epoch,
                 self.max_steps_per_epoch is None or self.max_steps_per_epoch >= 1, "null or an integer >= 1")

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python dict (YAML- and checkpoint-safe) of every field, equal to its own YAML
        round trip (tuples inside dict fields are lists, as YAML would make them)."""
        return plain_value(dataclasses.asdict(self))


def config_from_dict(values: dict[str, Any], base: TrainConfig | None = None) -> TrainConfig:
    """A :class:`TrainConfig` from ``values`` over ``base`` (defaults if ``None``).

    Raises ``ValueError`` naming an unknown key and the closest known ones.
    """
    if not isinstance(values, dict):
        raise ValueError(f"config: expected a mapping of field names to values, got {type(values).__name__}")
    merged = (base or TrainConfig()).to_dict()
    seen: dict[str, set[str]] = {}
    for key, value in values.items():
        key = _renamed(str(key), seen)
        _check_known(key)
        merged[key] = value
    return TrainConfig(**merged)


def apply_overrides(cfg: TrainConfig, overrides: list[str]) -> TrainConfig:
    """A copy of ``cfg`` with ``key=value`` overrides applied (values parsed as YAML).

    A dotted key sets one entry of a dict field: ``model_kwargs.T=8``. For text fields the raw
    text is kept, so ``out_dir=2024`` means the folder ``"2024"``, not the integer.
    """
    values = cfg.to_dict()
    hints = _field_types()
    seen: dict[str, set[str]] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"override {item!r}: expected key=value (e.g. lr=0.01 or model_kwargs.T=8)")
        top, _, sub = key.partition(".")
        top = _renamed(top, seen)
        _check_known(top)
        parsed = parse_override_value(raw)
        if sub:
            if _base_type(hints[top]) is not dict:
                raise ValueError(f"override {item!r}: field {top!r} is not a mapping, so {key!r} cannot set a sub-key")
            target = values[top] = dict(values[top] or {})
            *parents, leaf = sub.split(".")
            for p in parents:
                node = target.get(p)
                if not isinstance(node, dict):
                    node = target[p] = {}
                else:
                    node = target[p] = dict(node)
                target = node
            target[leaf] = parsed
        else:
            values[top] = _coerce(top, parsed, hints[top], raw=raw.strip())
    return TrainConfig(**values)


def load_config(path: str | os.PathLike | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Load a recipe from YAML (``None``: the defaults) and apply ``key=value`` overrides."""
    cfg = TrainConfig()
    if path is not None:
        values = read_recipe(path, "load_config")
        try:
            cfg = config_from_dict(values)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: {exc}") from exc
    return apply_overrides(cfg, list(overrides or []))


def read_recipe(path: str | os.PathLike, who: str) -> dict[str, Any]:
    """The mapping a YAML recipe holds, read in the engine's dialect (``1e-3`` is a float), before
    any field is checked: for readers of recipes that carry more than :class:`TrainConfig`
    (the lottery recipes' ``pruning:`` part). ``who`` names the caller in errors.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not YAML, or holds something other than a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{who}: no config file at {str(path)!r}")
    try:
        values = yaml.load(path.read_text(), Loader=_Loader) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{who}: {str(path)!r} is not valid YAML: {exc}") from exc
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a mapping of recipe fields, got {type(values).__name__}")
    return values


def save_config(cfg: TrainConfig, path: str | os.PathLike) -> None:
    """Write ``cfg`` as YAML (atomically), in field order, loadable by :func:`load_config`."""
    atomic_write_text(path, yaml.dump(cfg.to_dict(), Dumper=_Dumper, sort_keys=False))


def plain_value(value: Any) -> Any:
    """``value`` in the form a YAML round trip gives it: tuples (and lists) become lists and
    mappings plain dicts, recursively; other values unchanged. Compare configs in this form."""
    if isinstance(value, dict):
        return {k: plain_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_value(v) for v in value]
    return value


# --- helpers -------------------------------------------------------------------------------

def _field_types() -> dict[str, Any]:
    # String annotations (from __future__) are resolved here, once per call; cheap for ~30 fields.
    return typing.get_type_hints(TrainConfig)


def _renamed(key: str, seen: dict[str, set[str]]) -> str:
    """The current name of field ``key``, warning when it is a deprecated alias. ``seen`` maps
    each field to the spellings used so far in one mapping or override list: a field given under
    both its old and its new name is an error (repeating one spelling is not: the last wins)."""
    new = RENAMED.get(key, key)
    spellings = seen.setdefault(new, set())
    spellings.add(key)
    if len(spellings) > 1:
        raise ValueError(f"config: {sorted(spellings)} name the same field {new!r} ({new!r} is current, the "
                         "other a deprecated alias); keep only one")
    if new != key:
        warnings.warn(f"config: {key!r} is deprecated; use {new!r} (same meaning)", FutureWarning, stacklevel=4)
    return new


def _check_known(key: str) -> None:
    names = [f.name for f in dataclasses.fields(TrainConfig)]
    if key not in names:
        close = difflib.get_close_matches(key, names, n=3, cutoff=0.5)
        hint = f"did you mean {close}?" if close else f"known keys: {names}"
        raise ValueError(f"config: unknown key {key!r}; {hint}")


def _fail(name: str, value: Any, expected: str) -> typing.NoReturn:
    raise ValueError(f"config: {name}={value!r} is invalid; expected {expected}")


def _require(name: str, value: Any, ok: bool, expected: str) -> None:
    if not ok:
        _fail(name, value, expected)


def parse_override_value(raw: str) -> Any:
    """The value of a ``key=value`` override: YAML in the engine's dialect (``1e-3`` a float,
    ``None`` null); text that is not YAML stays a string, for the field's own check to name."""
    text = raw.strip()
    # "None" is what Python users type; YAML itself only knows null/~.
    if text in ("None", "none"):
        return None
    try:
        return yaml.load(text, Loader=_Loader) if text else ""
    except yaml.YAMLError:
        return text


def _base_type(hint: Any) -> Any:
    return typing.get_origin(hint) or hint


def _type_name(hint: Any) -> str:
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _type_name(a) for a in args)
    base = _base_type(hint)
    if base is list:
        (item,) = typing.get_args(hint) or (Any,)
        return f"a list of {_type_name(item)}" if item is not Any else "a list"
    return {dict: "a mapping", int: "an integer", float: "a number", str: "text", bool: "true/false"}.get(
        base, getattr(base, "__name__", str(base)))


def _coerce(name: str, value: Any, hint: Any, raw: str | None) -> Any:
    """``value`` converted to ``hint`` where lossless (int → float, raw text → str), else a
    ValueError naming the field, the value and the expected type."""
    if typing.get_origin(hint) in (Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        # Try exact matches first so `true` stays a bool in `bool | str`.
        for opt in options:
            if opt is not type(None) and _is_exact(value, opt):
                return value
        for opt in options:
            if opt is type(None):
                continue
            try:
                return _coerce(name, value, opt, raw)
            except ValueError:
                pass
        _fail(name, value, _type_name(hint))
    base = _base_type(hint)
    if base is list:
        (item,) = typing.get_args(hint) or (Any,)
        if value is None:
            return []
        if isinstance(value, (list, tuple)) and (item is Any or all(_is_exact(v, item) for v in value)):
            return list(value)
    elif base is dict:
        if value is None:
            return {}
        if isinstance(value, dict):
            # The in-memory form equals the YAML round trip (config.yaml, resume from it).
            return plain_value(value)
    elif base is bool:
        if isinstance(value, bool):
            return value
    elif base is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif base is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        # A number given as text in Python (TrainConfig(lr="3e-4")): a number field means a number.
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif base is str:
        if isinstance(value, str):
            return value
        if raw is not None and value is not None:
            return raw
    _fail(name, value, _type_name(hint))


def _is_exact(value: Any, hint: Any) -> bool:
    base = _base_type(hint)
    if base is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, base)
