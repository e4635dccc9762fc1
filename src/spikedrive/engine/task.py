"""What differs between classification, detection and depth: the *task* object.

The engine knows nothing about labels, boxes or depth maps. A task tells it how to move a batch
to the device, how to get the training loss, and how to accumulate evaluation metrics. Detection
and depth define their tasks in their own packages; they satisfy these protocols structurally
(the same method names and signatures) and never import the engine.

The contract, in full:

* ``task.to_device(batch, device) -> batch``: whatever the DataLoader yields, moved to ``device``.
* ``task.training_loss(model, batch) -> (loss, logs)``: a scalar tensor to back-propagate and a
  mapping of extra numbers to average over the epoch (floats or 0-d tensors).
* ``task.forward(model, batch) -> output``: the model's output for evaluation (``model`` is in
  eval mode and gradients are off).
* optional ``task.model_input(batch) -> input``: what ``model(...)`` takes, so the engine can
  write its energy and firing-rate report after training (skipped when absent).
* ``task.new_metrics() -> accumulator`` with
  ``update(output, batch)`` (called per evaluation batch),
  ``reduce(all_reduce)`` (``all_reduce(t)`` returns the element-wise sum of ``t`` over all ranks;
  called once before ``compute``, also in single-process runs, where it is the identity), and
  ``compute() -> dict[str, float]``. Keep the accumulator's state as sums (counts, sums of
  losses, histograms) so a sum over ranks is the state of the whole evaluation set.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

from .._registry import Registry

__all__ = [
    "ClassificationMetrics",
    "ClassificationTask",
    "MetricAccumulator",
    "Task",
    "build_task",
    "list_tasks",
    "move_to_device",
    "register_task",
]


@runtime_checkable
class MetricAccumulator(Protocol):
    """Sum-able evaluation state: update per batch, all-reduce across ranks, compute at the end."""

    def update(self, output: Any, batch: Any) -> None:
        """Add one batch: ``output`` from ``Task.forward``, ``batch`` from ``Task.to_device``."""
        ...

    def reduce(self, all_reduce: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Replace every state tensor ``s`` by ``all_reduce(s)`` (its sum over ranks)."""
        ...

    def compute(self) -> dict[str, float]:
        """The metrics of everything seen (after ``reduce``), e.g. ``{"accuracy": 0.97}``."""
        ...


@runtime_checkable
class Task(Protocol):
    """How the engine feeds one kind of problem to a model. See the module docstring."""

    def to_device(self, batch: Any, device: torch.device) -> Any:
        """The DataLoader's ``batch`` with its tensors on ``device``."""
        ...

    def training_loss(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, Mapping[str, float | torch.Tensor]]:
        """``(scalar loss to minimise, extra numbers to log)`` for one training batch."""
        ...

    def forward(self, model: nn.Module, batch: Any) -> Any:
        """The model's output on ``batch``, as the metric accumulator expects it."""
        ...

    def new_metrics(self) -> MetricAccumulator:
        """A fresh, empty accumulator for one evaluation pass."""
        ...


def move_to_device(batch: Any, device: torch.device) -> Any:
    """Tensors in nested tuples / lists / dicts moved to ``device`` (other leaves unchanged)."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return type(batch)({k: move_to_device(v, device) for k, v in batch.items()})
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(move_to_device(v, device) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to_device(v, device) for v in batch)
    return batch


class ClassificationMetrics:
    """Top-1 accuracy and mean cross-entropy over an evaluation pass.

    State: one float64 tensor ``[correct, sum of per-sample losses, samples]`` (float64 keeps
    counts exact far beyond any dataset size).
    """

    def __init__(self) -> None:
        self.state: torch.Tensor | None = None

    def update(self, output: torch.Tensor, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
        """``output``: logits ``[B, classes]``; ``batch``: ``(inputs, labels [B])``."""
        labels = batch[1]
        logits = output.detach().float()
        # Accumulate on the logits' device: no host sync per batch.
        step = torch.stack([
            (logits.argmax(dim=1) == labels).sum().double(),
            F.cross_entropy(logits, labels, reduction="sum").double(),
            torch.tensor(float(labels.numel()), dtype=torch.float64, device=logits.device),
        ])
        self.state = step if self.state is None else self.state + step

    def reduce(self, all_reduce: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Sum the state over ranks (a rank that saw no batch contributes zeros)."""
        if self.state is None:
            self.state = torch.zeros(3, dtype=torch.float64)
        self.state = all_reduce(self.state)

    def compute(self) -> dict[str, float]:
        """``{"accuracy": fraction correct, "loss": mean cross-entropy}`` (NaN if nothing seen)."""
        if self.state is None or float(self.state[2]) == 0.0:
            return {"accuracy": float("nan"), "loss": float("nan")}
        correct, loss_sum, n = (float(v) for v in self.state.cpu())
        return {"accuracy": correct / n, "loss": loss_sum / n}


class ClassificationTask:
    """Batches ``(inputs, labels [B] int64)``; the model maps inputs to logits ``[B, classes]``.

    Args:
        label_smoothing: cross-entropy label smoothing for training (evaluation loss is plain
            cross-entropy, so it stays comparable across recipes).
        mixup: mixup alpha of ``timm.data.Mixup`` for training batches (``0``: off).
        cutmix: cutmix alpha (``0``: off); with both on, each batch draws one of the two.
        num_classes: width of the mixed one-hot targets; ``None``: the model's ``num_classes``
            attribute (an error if it has none and mixing is on).

    With mixup or cutmix on, the inputs are mixed before the model and the loss is the
    soft-target cross-entropy ``mean_b sum_c -target[b, c] * log_softmax(logits)[b, c]``
    against timm's mixed targets, into which ``label_smoothing`` is folded. Inputs must be
    images ``[B, C, H, W]`` or time-major images ``[T, B, C, H, W]``; for the latter the
    sequence is viewed as ``[B, T*C, H, W]``, so one draw (the same lambda, the same cutmix
    box, the same partner sample) mixes every time step alike. The logged training accuracy is
    against the unmixed labels.
    """

    def __init__(self, label_smoothing: float = 0.0, mixup: float = 0.0, cutmix: float = 0.0,
                 num_classes: int | None = None) -> None:
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"ClassificationTask: label_smoothing must be in [0, 1), got {label_smoothing}")
        for name, alpha in (("mixup", mixup), ("cutmix", cutmix)):
            if alpha < 0:
                raise ValueError(f"ClassificationTask: {name} must be an alpha >= 0 (0: off), got {alpha}")
        self.label_smoothing = float(label_smoothing)
        self.mixup, self.cutmix = float(mixup), float(cutmix)
        self.num_classes = num_classes
        self._mixer: Any = None

    @property
    def mixing(self) -> bool:
        """Whether training batches are mixed (mixup or cutmix on)."""
        return self.mixup > 0 or self.cutmix > 0

    def to_device(self, batch: Any, device: torch.device) -> Any:
        """``(inputs, labels)`` on ``device``."""
        return move_to_device(batch, device)

    def forward(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Logits ``[B, classes]`` for the batch's inputs."""
        return model(batch[0])

    def model_input(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """What the model is called on (for the energy report): the batch's inputs."""
        return batch[0]

    def training_loss(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]
                      ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Mean (label-smoothed) cross-entropy, or the soft-target cross-entropy of the mixed
        batch when mixing is on; and the batch's accuracy to log."""
        inputs, labels = batch
        if self.mixing:
            inputs, targets = self.mix(model, inputs, labels)
            logits = model(inputs)
            loss = torch.sum(-targets * F.log_softmax(logits.float(), dim=-1), dim=-1).mean()
        else:
            logits = model(inputs)
            loss = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        accuracy = (logits.detach().argmax(dim=1) == labels).float().mean()
        return loss, {"accuracy": accuracy}

    def mix(self, model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mixed inputs, soft targets [B, classes])`` from timm's ``Mixup`` (drawn from NumPy's
        global RNG, which the engine seeds and checkpoints). ``inputs`` is ``[B, C, H, W]`` or
        time-major ``[T, B, C, H, W]``; ``labels`` ``[B]``."""
        batch_dim = {4: 0, 5: 1}.get(inputs.dim())
        if batch_dim is None or inputs.shape[batch_dim] != labels.shape[0]:
            raise ValueError(
                f"ClassificationTask: mixup/cutmix mix image batches [B, C, H, W] or time-major [T, B, C, H, W]; "
                f"got inputs of shape {tuple(inputs.shape)} with {labels.shape[0]} labels")
        if labels.shape[0] % 2:
            raise ValueError(f"ClassificationTask: mixup/cutmix need an even batch per rank (each sample is mixed "
                             f"with the batch reversed), got {labels.shape[0]}")
        mixer = self._get_mixer(model)
        if batch_dim == 0:
            return mixer(inputs, labels)
        steps, b, c = inputs.shape[:3]
        flat = inputs.transpose(0, 1).reshape(b, steps * c, *inputs.shape[3:])
        mixed, targets = mixer(flat, labels)
        return mixed.reshape(b, steps, c, *inputs.shape[3:]).transpose(0, 1), targets

    def _get_mixer(self, model: nn.Module) -> Any:
        if self._mixer is None:
            num_classes = self.num_classes or getattr(getattr(model, "module", model), "num_classes", None)
            if not num_classes:
                raise ValueError("ClassificationTask: mixup/cutmix need the number of classes for the mixed "
                                 "targets: set model_kwargs.num_classes in the recipe (or give the model a "
                                 "num_classes attribute)")
            from timm.data import Mixup

            self._mixer = Mixup(mixup_alpha=self.mixup, cutmix_alpha=self.cutmix, label_smoothing=self.label_smoothing,
                                num_classes=int(num_classes))
        return self._mixer

    def new_metrics(self) -> ClassificationMetrics:
        """An empty accuracy / loss accumulator."""
        return ClassificationMetrics()


# --- the task registry ----------------------------------------------------------------------

TaskBuilder = Callable[..., Task]
_TASKS: Registry[TaskBuilder] = Registry("task")


def register_task(name: str, builder: TaskBuilder) -> None:
    """Make ``task: <name>`` in a recipe build ``builder(cfg)`` (``cfg`` a ``TrainConfig``)."""
    _TASKS.add(name, builder)


def list_tasks() -> list[str]:
    """Sorted names of the registered tasks."""
    return _TASKS.names()


def build_task(cfg: Any) -> Task:
    """The task object named by ``cfg.task``, built from the config."""
    builder = _TASKS.get(cfg.task, field="config: task")
    return builder(cfg)


def _classification(cfg: Any) -> ClassificationTask:
    return ClassificationTask(label_smoothing=cfg.label_smoothing, mixup=getattr(cfg, "mixup", 0.0),
                              cutmix=getattr(cfg, "cutmix", 0.0),
                              num_classes=(getattr(cfg, "model_kwargs", None) or {}).get("num_classes"))


register_task("classification", _classification)
