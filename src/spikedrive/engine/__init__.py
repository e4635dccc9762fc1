"""The one training and evaluation engine of every method.

``train(load_config("configs/demo/digits.yaml", ["epochs=5"]))`` trains, evaluates, logs metrics,
writes atomic checkpoints, resumes bit-identically and runs unchanged under ``torchrun``. What
differs between classification, detection and depth is a small task object (:class:`Task`).

Every recipe has three splits: ``train``; ``val``, which picks ``best.pt``; and ``test``,
evaluated once after the last epoch with the selected weights and never used for selection
(``TrainResult.val_metrics`` / ``test_metrics``; ``val_*`` / ``test_*`` in ``metrics.json``).

Bringing your own model and data to ``train(cfg, model=..., datasets=(train, val, test))``
(classification):

* each dataset yields ``(x, y)`` samples, ``y`` an integer label; the loader batches them as
  ``[B, ...]``, or time-major ``[T, B, ...]`` when the dataset of ``[T, ...]`` sequences is
  wrapped in :class:`spikedrive.data.TimeMajorDataset` (``batch_dim=1``);
* the model is called on the batch's inputs exactly as the loader yields them and returns
  logits ``[B, classes]``.

See :func:`train` for the full contract, and :class:`TrainConfig` for the recipe fields
(mixed precision, gradient accumulation and clipping, EMA, mixup / cutmix, LAMB, weight-decay
exclusions).
"""

from .checkpoint import (
    CHECKPOINT_FORMAT,
    check_compatible,
    load_checkpoint,
    load_model,
    load_run,
    save_checkpoint,
)
from .config import (
    TrainConfig,
    apply_overrides,
    config_from_dict,
    load_config,
    save_config,
)
from .data import (
    ShardSampler,
    build_datasets,
    check_splits,
    epoch_seed,
    eval_seed,
    list_datasets,
    make_eval_loader,
    make_train_loader,
    register_dataset,
    set_loader_epoch,
)
from .distributed import (
    DistContext,
    cleanup_distributed,
    resolve_device,
    setup_distributed,
    unwrap_model,
)
from .loop import TrainingDiverged, autocast, check_finite_weights, evaluate, train_one_epoch
from .optim import WarmupCosine, apply_schedule, build_optimizer, build_scheduler, param_groups
from .seeding import (
    derive_seed,
    rank_seed,
    rng_state,
    seed_everything,
    set_deterministic,
    set_rng_state,
)
from .task import (
    ClassificationMetrics,
    ClassificationTask,
    MetricAccumulator,
    Task,
    build_task,
    list_tasks,
    move_to_device,
    register_task,
)
from .report import first_model_input, write_energy_report
from .trainer import TrainResult, train
from . import dataset_zoo  # noqa: F401,E402  (registers the image and event datasets by name)
from . import multihead  # noqa: F401,E402  (registers the multi-head classification task)
from . import depth_task  # noqa: F401,E402  (registers the depth task)
from . import detection_task  # noqa: F401,E402  (registers the detection task and datasets)

__all__ = [
    # running
    "train", "evaluate", "TrainResult", "TrainingDiverged", "write_energy_report", "first_model_input",
    # recipes
    "TrainConfig", "load_config", "save_config", "config_from_dict", "apply_overrides",
    # tasks
    "Task", "MetricAccumulator", "ClassificationTask", "ClassificationMetrics", "move_to_device",
    "register_task", "list_tasks", "build_task",
    # data
    "register_dataset", "list_datasets", "build_datasets", "check_splits", "make_train_loader", "make_eval_loader",
    "set_loader_epoch", "epoch_seed", "eval_seed", "ShardSampler",
    # checkpoints and reproducibility
    "save_checkpoint", "load_checkpoint", "load_model", "load_run", "check_compatible", "CHECKPOINT_FORMAT",
    "seed_everything", "rank_seed", "derive_seed", "rng_state", "set_rng_state", "set_deterministic",
    # building blocks
    "train_one_epoch", "check_finite_weights", "autocast", "build_optimizer", "param_groups", "build_scheduler",
    "apply_schedule",
    "WarmupCosine", "DistContext", "setup_distributed", "cleanup_distributed", "resolve_device", "unwrap_model",
]
