"""Run by tests/test_engine_distributed.py under torchrun: train the digits demo briefly, then
record what this rank saw and ended with under ``<out>/rank<r>.pt``."""

from __future__ import annotations

import os
import sys
import time

import torch

from spikedrive.data.digits import load_digits_split
from spikedrive.engine import (
    ClassificationTask,
    build_datasets,
    evaluate,
    load_config,
    make_eval_loader,
    register_dataset,
    train,
)


class RecordingTask(ClassificationTask):
    """Classification that notes the size of every training batch this rank sees."""

    def __init__(self) -> None:
        super().__init__()
        self.batch_sizes: list[int] = []

    def training_loss(self, model, batch):
        self.batch_sizes.append(int(batch[1].numel()))
        return super().training_loss(model, batch)


def timed_digits(root, **kwargs):
    """The digits, built slowly, noting when this rank's build started and ended (as
    ``<root>/build<rank>.txt`` lines ``start end``): a cold dataset cache being filled."""
    start = time.time()
    time.sleep(0.5)
    split = load_digits_split(**kwargs)
    with open(os.path.join(root, f"build{os.environ['RANK']}.txt"), "a") as f:
        f.write(f"{start} {time.time()}\n")
    return split


def main(out: str) -> None:
    torch.set_num_threads(1)
    register_dataset("timed_digits", timed_digits)
    cfg = load_config(None, [f"out_dir={out}/run", "model_kwargs.T=2", "epochs=1", "batch_size=32",
                             "max_steps_per_epoch=8", "warmup_epochs=0", "progress=false", "device=cpu",
                             "dataset=timed_digits", f"data_root={out}"])
    task = RecordingTask()
    result = train(cfg, task=task)
    group_left = not torch.distributed.is_initialized()
    rank = int(os.environ["RANK"])
    # The full validation and test sets, evaluated by this process alone: what the all-reduced
    # metrics claim (one epoch: the best weights are the final ones).
    _, val, test = build_datasets(cfg)
    alone = evaluate(result.model, ClassificationTask(), make_eval_loader(val, cfg), "cpu")
    alone_test = evaluate(result.model, ClassificationTask(), make_eval_loader(test, cfg), "cpu")
    torch.save({"world_size": int(os.environ["WORLD_SIZE"]), "batch_sizes": task.batch_sizes,
                "state": result.model.state_dict(), "metrics": result.metrics, "alone": alone,
                "test_metrics": result.test_metrics, "alone_test": alone_test, "best_epoch": result.best_epoch,
                "group_left": group_left},
               os.path.join(out, f"rank{rank}.pt"))


if __name__ == "__main__":
    main(sys.argv[1])
