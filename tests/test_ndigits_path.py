"""The full event-camera path: generator → N-MNIST files → reader → frames → spiking CNN."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from spikedrive.analysis import assert_spike_driven
from spikedrive.data.ndigits import load_ndigits_frames
from spikedrive.data.sequence import time_major_collate
from spikedrive.engine import load_config, train

RECIPE = Path(__file__).resolve().parents[1] / "configs" / "demo" / "ndigits.yaml"


def test_time_major_collate_stacks_on_dim_one():
    samples = [(torch.full((3, 2), float(i)), i) for i in range(4)]
    x, y = time_major_collate(samples)
    assert x.shape == (3, 4, 2) and torch.equal(x[:, 2], torch.full((3, 2), 2.0))
    assert y.tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="differ in shape"):
        time_major_collate([(torch.zeros(3, 2), 0), (torch.zeros(4, 2), 1)])


def test_tiny_ndigits_trains_through_the_real_reader(tmp_path: Path):
    (tmp_path / "data").mkdir()  # a named root must exist: it is never created silently
    train_set, val_set, test_set = load_ndigits_frames(tmp_path / "data", T=4, n_per_class=3, n_test_per_class=1)
    assert (tmp_path / "data" / "Train" / "3").is_dir()  # the real N-MNIST layout
    frames, label = train_set[0]
    assert frames.shape == (4, 2, 34, 34) and set(frames.ravel().tolist()) <= {0.0, 1.0}
    assert len(train_set) + len(val_set) == 30 and len(test_set) == 10

    cfg = load_config(RECIPE, [f"out_dir={tmp_path / 'run'}", "epochs=1", "batch_size=10", "progress=false",
                               f"data_root={tmp_path / 'data'}", "dataset_kwargs.T=4", "model_kwargs.T=4",
                               "dataset_kwargs.n_per_class=3", "dataset_kwargs.n_test_per_class=1"])
    result = train(cfg)
    assert result.global_step == -(-len(train_set) // 10)
    # Binary event frames in, so every layer of the trained network is spike-driven.
    x, _ = time_major_collate([test_set[i] for i in range(4)])
    assert_spike_driven(result.model, x, batch_dim=1)
    assert (tmp_path / "run" / "energy.txt").is_file()


@pytest.mark.slow
def test_ndigits_recipe_reaches_90_percent(tmp_path: Path):
    torch.set_num_threads(2)
    (tmp_path / "data").mkdir()
    cfg = load_config(RECIPE, [f"out_dir={tmp_path / 'run'}", f"data_root={tmp_path / 'data'}", "progress=false"])
    result = train(cfg)
    assert result.test_metrics["accuracy"] >= 0.90
