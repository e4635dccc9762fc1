"""Pruned models through the rest of the library: checkpoints load, spike-driven synapses see the mask."""

from __future__ import annotations

import torch

import spikedrive
from spikedrive.engine import TrainConfig, load_model, save_checkpoint
from spikedrive.pruning import prune_model


def test_load_model_restores_a_pruned_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = spikedrive.create_model("digits_snn").eval()
    prune_model(model, 0.5, criterion="magnitude", scope="global")
    cfg = TrainConfig(out_dir=str(tmp_path))
    state = {"config": cfg.to_dict(), "model": model.state_dict(), "epoch": 1, "global_step": 1,
             "optimizer": {}, "scheduler": {}, "rng": [], "history": [], "best": None, "best_epoch": 0}
    from spikedrive.engine.checkpoint import _REQUIRED
    state = {k: state.get(k) for k in set(_REQUIRED) | {"config", "model"}}
    save_checkpoint(state, tmp_path / "pruned.pt")
    loaded = load_model(tmp_path / "pruned.pt")
    x = torch.rand(4, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
    for (name, a), b in zip(loaded.named_buffers(), model.buffers()):
        if name.endswith("weight_mask"):
            assert torch.equal(a, b), name  # the masks came back, not only the zeros


def test_spike_driven_synapse_uses_the_current_pruning_mask():
    torch.manual_seed(1)
    model = spikedrive.create_model("digits_ilif", T=1).eval()
    x = torch.rand(4, 1, 8, 8) * 3
    spikedrive.to_spike_driven(model, x)
    prune_model(model, 0.6, criterion="magnitude", scope="global")  # after conversion
    with torch.no_grad():
        for m in model.modules():
            if hasattr(m, "weight_orig"):
                m.weight_orig.mul_(1.5)  # as a training step would: the effective weight is now stale
        converted = model(x)
        spikedrive.to_integer(model)
        integer = model(x)
    torch.testing.assert_close(converted, integer, rtol=1e-4, atol=1e-4)
