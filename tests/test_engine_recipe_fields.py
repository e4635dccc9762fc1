"""Issue 17, recipe fields the method issues need: amp, grad_accum, clip_grad, ema,
label_smoothing, mixup / cutmix, no_weight_decay and LAMB. Each on the digits, one epoch of
two steps, checked for its effect (not only that it parses)."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

import spikedrive.engine.trainer as trainer_module
from spikedrive.data.digits import load_digits_split
from spikedrive.engine import (
    ClassificationTask,
    build_optimizer,
    evaluate,
    load_checkpoint,
    load_config,
    make_eval_loader,
    param_groups,
    train,
)

TINY = ["epochs=1", "max_steps_per_epoch=2", "batch_size=16", "lr=0.01", "warmup_epochs=0", "progress=false",
        "device=cpu", "energy_report=false", "model_kwargs.num_classes=10"]


def cfg_for(out: Path, *extra: str):
    return load_config(None, [f"out_dir={out}", *TINY, *extra])


def linear(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))


def small_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 64, 10))


class Recorder:
    """Forward hook keeping every (input, output) of a module during training."""

    def __init__(self, module: nn.Module) -> None:
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []
        module.register_forward_hook(self)

    def __call__(self, module, args, output) -> None:
        if module.training:
            self.calls.append((args[0].detach().clone(), output.detach().clone()))


def initial_val_loss(model: nn.Module) -> float:
    """Validation loss of an untrained model (what training must lower)."""
    val = load_digits_split()[1]
    return evaluate(model, ClassificationTask(), make_eval_loader(val, load_config(None, [])), "cpu")["loss"]


# --- amp ------------------------------------------------------------------------------------

def test_bf16_autocast_runs_convs_in_bfloat16_and_trains_like_fp32(tmp_path: Path) -> None:
    model = small_cnn()
    dtypes: list[torch.dtype] = []
    model[0].register_forward_hook(lambda m, a, out: dtypes.append(out.dtype))
    bf16 = train(cfg_for(tmp_path / "bf16", "amp=bf16", "max_steps_per_epoch=4"), model=model)
    assert dtypes and set(dtypes) == {torch.bfloat16}  # training steps and evaluation batches alike
    fp32 = train(cfg_for(tmp_path / "fp32", "max_steps_per_epoch=4"), model=small_cnn())
    loss_bf16, loss_fp32 = bf16.history[0]["train_loss"], fp32.history[0]["train_loss"]
    assert math.isfinite(loss_bf16) and loss_bf16 == pytest.approx(loss_fp32, rel=0.05)
    assert math.isfinite(bf16.test_metrics["loss"]) and bf16.val_metrics["loss"] < initial_val_loss(small_cnn())


def test_fp16_is_refused_on_cpu_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"amp='fp16'.*CUDA.*cpu"):
        train(cfg_for(tmp_path, "amp=fp16"), model=linear())
    with pytest.raises(ValueError, match=r"amp='fp32'.*'bf16'"):
        load_config(None, ["amp=fp32"])


# --- grad_accum -----------------------------------------------------------------------------

def test_grad_accum_of_two_batches_of_4_equals_one_batch_of_8(tmp_path: Path) -> None:
    common = ["max_steps_per_epoch=1", "optimizer=sgd", "momentum=0", "weight_decay=0", "lr=0.5"]
    one = train(cfg_for(tmp_path / "one", *common, "batch_size=8"), model=linear())
    accum = train(cfg_for(tmp_path / "accum", *common, "batch_size=4", "grad_accum=2"), model=linear())
    single = train(cfg_for(tmp_path / "single", *common, "batch_size=4"), model=linear())
    assert one.global_step == accum.global_step == 1
    for key, value in one.model.state_dict().items():
        assert torch.allclose(value, accum.model.state_dict()[key], atol=1e-6), key
    # ... and not what one micro-batch alone would have done (the accumulation is real).
    assert not torch.allclose(single.model[1].weight, one.model[1].weight, atol=1e-4)
    assert accum.history[0]["train_loss"] == pytest.approx(one.history[0]["train_loss"], rel=1e-5)


def test_grad_accum_counts_optimizer_steps_for_the_schedule(tmp_path: Path) -> None:
    result = train(cfg_for(tmp_path, "max_steps_per_epoch=null", "batch_size=64", "grad_accum=4"), model=linear())
    # 1078 training digits / 64 = 16 batches = 4 optimizer steps.
    assert result.global_step == 4
    assert load_checkpoint(tmp_path / "last.pt")["scheduler"]["last_epoch"] == 4


# --- clip_grad ------------------------------------------------------------------------------

def test_clip_grad_bounds_the_global_norm_at_every_step(tmp_path: Path) -> None:
    norms: list[float] = []

    def record(opt, args, kwargs) -> None:
        grads = [p.grad for g in opt.param_groups for p in g["params"] if p.grad is not None]
        norms.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))

    handle = register_optimizer_step_pre_hook(record)
    try:
        train(cfg_for(tmp_path / "clipped", "clip_grad=0.01"), model=linear())
        clipped = list(norms)
        norms.clear()
        train(cfg_for(tmp_path / "free"), model=linear())
    finally:
        handle.remove()
    assert len(clipped) == 2 and all(n == pytest.approx(0.01, rel=1e-4) for n in clipped)
    assert all(n > 0.05 for n in norms)  # unclipped, the gradients are much larger


def test_grad_clip_is_a_deprecated_alias_of_clip_grad(tmp_path: Path) -> None:
    with pytest.warns(FutureWarning, match="'grad_clip' is deprecated; use 'clip_grad'"):
        cfg = load_config(None, ["grad_clip=1.5"])
    assert cfg.clip_grad == 1.5
    recipe = tmp_path / "old.yaml"
    recipe.write_text("grad_clip: 2\nepochs: 3\n")
    with pytest.warns(FutureWarning, match="grad_clip"):
        assert load_config(recipe, []).clip_grad == 2.0
    with pytest.raises(ValueError, match=r"\['clip_grad', 'grad_clip'\]"):
        load_config(None, ["clip_grad=1", "grad_clip=2"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        shipped = Path(__file__).resolve().parents[1] / "configs" / "demo"
        for path in shipped.glob("*.yaml"):
            load_config(path, [])  # the shipped recipes use the new name


# --- ema ------------------------------------------------------------------------------------

def test_ema_weights_are_the_ones_validated_selected_and_tested(tmp_path: Path, monkeypatch) -> None:
    seen: list[nn.Module] = []
    steps: list[torch.Tensor] = []

    def spy(model, *args, **kwargs):
        seen.append(model)
        return evaluate(model, *args, **kwargs)

    monkeypatch.setattr(trainer_module, "evaluate", spy)
    model = linear()
    handle = register_optimizer_step_post_hook(lambda opt, a, k: steps.append(model[1].weight.detach().clone()))
    try:
        result = train(cfg_for(tmp_path, "ema=0.5"), model=model)
    finally:
        handle.remove()
    assert result.ema_model is not None and seen[0] is result.ema_model  # validation
    raw, ema = result.model.state_dict(), result.ema_model.state_dict()
    assert not torch.equal(raw["1.weight"], ema["1.weight"])
    # timm's EMA: the first update copies the weights, the second averages them with decay 0.5.
    assert len(steps) == 2 and torch.allclose(ema["1.weight"], 0.5 * steps[0] + 0.5 * steps[1], atol=1e-7)
    assert torch.equal(load_checkpoint(tmp_path / "last.pt")["ema"]["1.weight"], ema["1.weight"])
    for key, value in seen[1].state_dict().items():  # the test evaluation: the best (EMA) weights
        assert torch.equal(value, load_checkpoint(tmp_path / "best.pt")["ema"][key]), key


def test_ema_resume_round_trips_the_average(tmp_path: Path) -> None:
    extra = ["ema=0.9", "epochs=2", "scheduler=constant"]
    straight = train(cfg_for(tmp_path / "straight", *extra), model=linear())
    train(cfg_for(tmp_path / "parts", *extra, "epochs=1"), model=linear())
    state = load_checkpoint(tmp_path / "parts" / "last.pt")
    assert set(state["ema"]) == set(state["model"])
    resumed = train(cfg_for(tmp_path / "parts", *extra), model=linear(), resume=True)
    for key, value in straight.ema_model.state_dict().items():
        assert torch.equal(value, resumed.ema_model.state_dict()[key]), key
    assert straight.test_metrics == resumed.test_metrics


# --- label smoothing ------------------------------------------------------------------------

def test_label_smoothing_reaches_the_training_loss(tmp_path: Path) -> None:
    model = linear()
    rec = Recorder(model)
    task_labels: list[torch.Tensor] = []
    original = ClassificationTask.training_loss

    def keep_labels(self, m, batch):
        task_labels.append(batch[1].clone())
        return original(self, m, batch)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ClassificationTask, "training_loss", keep_labels)
        result = train(cfg_for(tmp_path, "label_smoothing=0.2", "max_steps_per_epoch=1"), model=model)
    logits, labels = rec.calls[0][1], task_labels[0]
    expected = float(F.cross_entropy(logits, labels, label_smoothing=0.2))
    assert result.history[0]["train_loss"] == pytest.approx(expected, rel=1e-6)
    assert expected != pytest.approx(float(F.cross_entropy(logits, labels)), rel=1e-3)


# --- mixup / cutmix -------------------------------------------------------------------------

def spy_mixer(monkeypatch) -> list[tuple]:
    from timm.data import Mixup

    calls: list[tuple] = []
    original = Mixup.__call__

    def recording(self, x, target):
        x_in, y_in = x.clone(), target.clone()
        mixed, soft = original(self, x, target)
        calls.append((x_in, y_in, mixed.clone(), soft.clone()))
        return mixed, soft

    monkeypatch.setattr(Mixup, "__call__", recording)
    return calls


def test_mixup_loss_is_the_soft_target_cross_entropy_of_the_mixed_batch(tmp_path: Path, monkeypatch) -> None:
    calls = spy_mixer(monkeypatch)
    model = linear()
    rec = Recorder(model[1])
    result = train(cfg_for(tmp_path, "mixup=0.8", "max_steps_per_epoch=1", "seed=3"), model=model)
    (x, y, mixed, soft), = calls
    # Soft targets: lambda on the label, 1 - lambda on the label of the reversed batch.
    partner = y.flip(0)
    rows = (y != partner).nonzero().flatten()
    lam = float(soft[rows[0], y[rows[0]]])
    assert 0.0 < lam < 1.0
    expected_soft = lam * F.one_hot(y, 10).float() + (1 - lam) * F.one_hot(partner, 10).float()
    assert torch.allclose(soft, expected_soft, atol=1e-6)
    assert torch.allclose(mixed, lam * x + (1 - lam) * x.flip(0), atol=1e-5)
    # The model saw the mixed batch, and the logged loss is the soft-target CE over it.
    assert torch.allclose(rec.calls[0][0], mixed.flatten(1), atol=1e-6)
    logits = rec.calls[0][1]
    by_hand = float(torch.sum(-soft * F.log_softmax(logits, dim=-1), dim=-1).mean())
    assert result.history[0]["train_loss"] == pytest.approx(by_hand, rel=1e-6)


def test_label_smoothing_is_folded_into_the_mixed_targets(tmp_path: Path, monkeypatch) -> None:
    calls = spy_mixer(monkeypatch)
    train(cfg_for(tmp_path, "mixup=0.8", "label_smoothing=0.1", "max_steps_per_epoch=1"), model=linear())
    _, y, _, soft = calls[0]
    assert float(soft.min()) == pytest.approx(0.1 / 10, abs=1e-6)  # timm: off-value s / classes
    assert torch.allclose(soft.sum(1), torch.ones(len(y)))


def test_time_major_cutmix_applies_one_box_and_lambda_to_every_step() -> None:
    task = ClassificationTask(cutmix=1.0, num_classes=3)
    np.random.seed(0)
    x = torch.arange(3 * 4 * 2 * 8 * 8, dtype=torch.float32).reshape(3, 4, 2, 8, 8)  # [T, B, C, H, W]
    y = torch.tensor([0, 1, 2, 0])
    mixed, soft = task.mix(nn.Identity(), x.clone(), y)
    assert mixed.shape == x.shape and soft.shape == (4, 3)
    pasted = mixed != x  # where the reversed batch's pixels replaced the sample's own
    assert pasted.any()
    for t in range(1, 3):
        assert torch.equal(pasted[t], pasted[0])  # the same box at every time step
        assert torch.equal(mixed[t][pasted[t]], x.flip(1)[t][pasted[t]])
    with pytest.raises(ValueError, match=r"\[B, C, H, W\].*shape \(4, 64\)"):
        task.mix(nn.Identity(), torch.zeros(4, 64), y)
    with pytest.raises(ValueError, match="even batch"):
        task.mix(nn.Identity(), torch.zeros(3, 1, 8, 8), y[:3])
    with pytest.raises(ValueError, match="num_classes"):
        ClassificationTask(mixup=1.0).mix(nn.Identity(), torch.zeros(4, 1, 8, 8), y)


# --- weight decay exclusions and LAMB -------------------------------------------------------

class WithPositions(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pos_embed = nn.Parameter(torch.zeros(1, 4, 8))
        self.proj = nn.Linear(8, 8)
        self.norm = nn.LayerNorm(8)
        self.alpha = nn.Parameter(torch.ones(2, 2))


def test_no_weight_decay_patterns_land_in_the_zero_decay_group() -> None:
    model = WithPositions()
    groups = param_groups(model, 0.05, ["pos_embed", "*alpha"])
    assert [(g["weight_decay"], g["param_names"]) for g in groups] == [
        (0.05, ["proj.weight"]),
        (0.0, ["pos_embed", "alpha", "proj.bias", "norm.weight", "norm.bias"]),  # own parameters first
    ]
    cfg = load_config(None, ['no_weight_decay=["pos_embed", "*alpha"]', "weight_decay=0.05"])
    optimizer = build_optimizer(model, cfg)
    zero = next(g for g in optimizer.param_groups if g["weight_decay"] == 0.0)
    assert any(p is model.pos_embed for p in zero["params"]) and any(p is model.alpha for p in zero["params"])
    assert all(p is not model.proj.weight for p in zero["params"])


def test_no_weight_decay_has_its_effect_in_training(tmp_path: Path) -> None:
    # With lr tiny for the gradient but a huge decay, decayed weights shrink; excluded ones don't.
    common = ["optimizer=adamw", "weight_decay=500", "lr=0.001", "max_steps_per_epoch=1"]
    free = train(cfg_for(tmp_path / "a", *common, 'no_weight_decay=["1.weight"]'), model=linear())
    decayed = train(cfg_for(tmp_path / "b", *common), model=linear())
    start = linear()[1].weight
    shrink = float(decayed.model[1].weight.detach().norm() / start.detach().norm())
    assert shrink < 0.6  # AdamW: w *= 1 - lr * wd = 0.5, then an Adam step of about lr per element
    assert float(free.model[1].weight.detach().norm() / start.detach().norm()) > 0.95


def test_lamb_trains_through_timm(tmp_path: Path) -> None:
    from timm.optim import Lamb

    seen: list[type] = []
    handle = register_optimizer_step_pre_hook(lambda opt, a, k: seen.append(type(opt)))
    try:
        result = train(cfg_for(tmp_path, "optimizer=lamb", "max_steps_per_epoch=4"), model=linear())
    finally:
        handle.remove()
    assert seen == [Lamb] * 4
    assert math.isfinite(result.history[0]["train_loss"]) and result.val_metrics["loss"] < initial_val_loss(linear())
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["optimizer"]["param_groups"][0]["max_grad_norm"] is None  # clip_grad is the one clip


def test_the_fp16_grad_scaler_path_clips_the_unscaled_gradients() -> None:
    """fp16 runs only on CUDA; its GradScaler steps are checked here with torch's CPU scaler."""
    from spikedrive.engine import DistContext, build_scheduler, make_train_loader, train_one_epoch

    cfg = load_config(None, TINY + ["clip_grad=0.01"])
    model = linear()
    optimizer = build_optimizer(model, cfg)
    loader = make_train_loader(load_digits_split()[0], cfg)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    norms: list[float] = []
    handle = register_optimizer_step_pre_hook(lambda opt, a, k: norms.append(
        float(torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in model.parameters()])))))
    try:
        _, steps = train_one_epoch(model, ClassificationTask(), loader, optimizer, build_scheduler(optimizer, cfg, 2),
                                   ctx=DistContext(), epoch=1, epochs=1, global_step=0, clip_grad=0.01, max_steps=2,
                                   progress=False, scaler=scaler)
    finally:
        handle.remove()
    assert steps == 2 and scaler.get_scale() == 1024.0  # finite gradients: no step skipped
    assert norms == pytest.approx([0.01, 0.01], rel=1e-4)  # clipped after un-scaling, not 1024x smaller


def test_agc_bounds_each_units_gradient_by_its_weight_norm(tmp_path: Path) -> None:
    """clip_mode=agc: after clipping, every output unit's gradient norm <= 0.02 x its weight norm
    (timm's adaptive_clip_grad, with its eps = 1e-3 floor on the weight norm)."""
    ratios: list[float] = []

    def record(opt, args, kwargs) -> None:
        for g in opt.param_groups:
            for p in g["params"]:
                if p.grad is not None and p.dim() == 2:
                    w = p.detach().norm(dim=1).clamp_min(1e-3)
                    ratios.append(float((p.grad.norm(dim=1) / w).max()))

    handle = register_optimizer_step_pre_hook(record)
    try:
        train(cfg_for(tmp_path / "agc", "clip_grad=0.02", "clip_mode=agc"), model=linear())
    finally:
        handle.remove()
    assert len(ratios) == 2 and max(ratios) <= 0.02 * (1 + 1e-4)
    with pytest.raises(ValueError, match="clip_mode"):
        load_config(None, ["clip_mode=adaptive"])


def test_warmup_lr_and_min_lr_shape_the_schedule() -> None:
    from spikedrive.engine import build_scheduler

    cfg = load_config(None, ["lr=0.1", "epochs=10", "warmup_epochs=2", "warmup_lr=0.01", "min_lr=0.001"])
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    sched = build_scheduler(opt, cfg, steps_per_epoch=5)
    lrs = []
    for _ in range(50):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.01)                      # starts at warmup_lr
    assert lrs[10] == pytest.approx(0.1)                      # reaches lr after 2 epochs of 5 steps
    assert lrs[5] == pytest.approx(0.01 + 0.09 * 5 / 10)      # linear in between
    floor = 0.001 / 0.1
    expected_last = 0.1 * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * 39 / 40)))
    assert min(lrs[10:]) >= 0.001 and lrs[-1] == pytest.approx(expected_last)
