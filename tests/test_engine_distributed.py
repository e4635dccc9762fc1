"""The unchanged ``train`` under ``torchrun`` with two CPU processes (gloo)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from spikedrive.engine import DistContext, load_checkpoint, load_config, train

HELPER = Path(__file__).resolve().parent / "_ddp_train.py"

pytestmark = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                                reason="needs torch.distributed with gloo")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TwoRanks(DistContext):
    """Rank ``rank`` of two, whose collective ``any`` sees ``others_flag`` from the other rank
    and records the order of events in ``log``."""

    def __init__(self, rank: int, others_flag: bool, log: list[str]) -> None:
        super().__init__(rank=rank, world_size=2)
        object.__setattr__(self, "others_flag", others_flag)
        object.__setattr__(self, "log", log)

    def any(self, flag: bool) -> bool:
        self.log.append("barrier")
        return flag or self.others_flag


def test_main_first_runs_rank_0_before_the_barrier_and_stops_everyone_on_its_error() -> None:
    log: list[str] = []
    assert TwoRanks(0, False, log).main_first(lambda: log.append("build") or "train, val") == "train, val"
    assert log == ["build", "barrier"]
    log.clear()
    assert TwoRanks(1, False, log).main_first(lambda: log.append("build") or "train, val") == "train, val"
    assert log == ["barrier", "build"]

    def fail() -> None:
        log.append("build")
        raise OSError("disk full")

    log.clear()
    with pytest.raises(OSError, match="disk full"):  # rank 0 tells the others, then raises its own error
        TwoRanks(0, False, log).main_first(fail)
    assert log == ["build", "barrier"]
    log.clear()
    with pytest.raises(RuntimeError, match="rank 0 failed"):  # the others stop instead of building
        TwoRanks(1, True, log).main_first(fail)
    assert log == ["barrier"]


def test_torchrun_two_cpu_processes(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}",
           str(HELPER), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    # The global batch of 32 is split: 16 per rank, 8 steps each.
    assert [r["batch_sizes"] for r in ranks] == [[16] * 8, [16] * 8]
    assert all(r["world_size"] == 2 and r["group_left"] for r in ranks)
    # Rank 0 builds the datasets first (filling a cold cache once); rank 1 starts after it is done.
    (start0, end0), (start1, _) = [map(float, (tmp_path / f"build{r}.txt").read_text().splitlines()[0].split())
                                   for r in (0, 1)]
    assert start1 >= end0 > start0
    for key, value in ranks[0]["state"].items():
        assert torch.equal(value, ranks[1]["state"][key]), key  # parameters and buffers alike
    # The all-reduced metrics are those of the whole validation and test sets, on both ranks:
    # the test evaluation shards like validation.
    for r in ranks:
        assert r["metrics"]["accuracy"] == pytest.approx(r["alone"]["accuracy"], abs=1e-12)
        assert r["metrics"]["loss"] == pytest.approx(r["alone"]["loss"], rel=1e-6)
        assert r["best_epoch"] == 1
        assert r["test_metrics"]["accuracy"] == pytest.approx(r["alone_test"]["accuracy"], abs=1e-12)
        assert r["test_metrics"]["loss"] == pytest.approx(r["alone_test"]["loss"], rel=1e-6)

    run = tmp_path / "run"
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["global_step"] == 8  # written once, by rank 0
    assert json.loads(lines[1])["test_accuracy"] == ranks[0]["test_metrics"]["accuracy"]  # then the test record
    assert len(json.loads((run / "metrics.json").read_text())) == 2
    assert sorted(p.name for p in run.iterdir()) == ["best.pt", "config.yaml", "energy.json", "energy.txt",
                                                     "firing_rates.png", "last.pt", "metrics.json",
                                                     "metrics.jsonl"]
    state = load_checkpoint(run / "last.pt")
    assert state["epoch"] == 1 and len(state["rng"]) == 2  # one RNG snapshot per rank
    for key, value in state["model"].items():
        assert torch.equal(value, ranks[0]["state"][key]), key

    # A run made by two processes continues in one (the RNG streams cannot be replayed there).
    # (The helper's timed_digits is registered in its processes only; it is the plain digits, which
    # take no data_root.)
    more = train(load_config(run / "config.yaml", ["epochs=2", "dataset=digits", "data_root=null"]), resume=True)
    assert [r["epoch"] for r in more.history] == [1, 2] and more.global_step == 16  # max_steps_per_epoch=8
