"""Event-camera depth: log depth, losses, MVSEC metrics, the depth task, the spiking U-Net and
the ``spikedrive depth`` command bodies (tiny shapes throughout)."""

from __future__ import annotations

import argparse
import math

import numpy as np
import pytest
import torch

from spikedrive.depth import (
    METRIC_KEYS, DepthMetrics, DepthTask, depth_metrics, from_log_depth, gradient_matching_loss,
    scale_invariant_loss, to_log_depth,
)
from spikedrive.models import create_model
from spikedrive.models.depth import SpikingUNetDepth, count_parameters


def _np_metrics(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    ok = mask & np.isfinite(gt) & (gt > 0)
    p, g = pred[ok].astype(np.float64), gt[ok].astype(np.float64)
    ratio = np.maximum(p / g, g / p)
    out = {"abs_rel": np.mean(np.abs(p - g) / g), "sq_rel": np.mean((p - g) ** 2 / g),
           "rmse": np.sqrt(np.mean((p - g) ** 2)), "rmse_log": np.sqrt(np.mean((np.log(p) - np.log(g)) ** 2)),
           "a1": np.mean(ratio < 1.25), "a2": np.mean(ratio < 1.25 ** 2), "a3": np.mean(ratio < 1.25 ** 3)}
    for c in (10, 20, 30):
        out[f"mean_err_{c}"] = np.mean(np.abs(p - g)[g <= c])
    return out


def _depth_pair(seed: int = 0, shape=(2, 1, 6, 7)) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    gt = rng.uniform(2.0, 60.0, shape).astype(np.float32)
    gt[rng.random(shape) < 0.2] = np.nan  # lidar holes
    pred = (gt * rng.uniform(0.7, 1.4, shape)).astype(np.float32)
    pred[np.isnan(pred)] = 5.0
    mask = rng.random(shape) > 0.1
    return torch.from_numpy(pred), torch.from_numpy(gt), torch.from_numpy(mask)


# --- normalised log depth ------------------------------------------------------------------

def test_log_depth_matches_formula_clips_and_keeps_nan():
    d = torch.tensor([0.0, 1.0, 1.98, 10.0, 80.0, 200.0, float("nan")])
    out = to_log_depth(d)
    with np.errstate(divide="ignore"):
        ref = np.clip(1 + np.log(d.numpy().astype(np.float64) / 80.0) / 3.7, 0, 1)
    np.testing.assert_allclose(out[:-1].numpy(), ref[:-1], rtol=1e-6, atol=1e-6)
    assert math.isnan(out[-1]) and out[0] == 0 and out[5] == 1
    back = from_log_depth(to_log_depth(torch.tensor([3.0, 10.0, 42.0])))
    np.testing.assert_allclose(back.numpy(), [3.0, 10.0, 42.0], rtol=1e-5)
    np.testing.assert_allclose(from_log_depth(torch.tensor([0.0, 1.0])).numpy(), [80 * math.exp(-3.7), 80.0], rtol=1e-6)


def test_log_depth_rejects_bad_constants():
    with pytest.raises(ValueError, match=r"to_log_depth: d_max must be a finite depth > 0 in metres, got -1"):
        to_log_depth(torch.ones(1), d_max=-1)
    with pytest.raises(ValueError, match=r"from_log_depth: alpha must be a finite number > 0, got 0"):
        from_log_depth(torch.ones(1), alpha=0)


# --- metrics -------------------------------------------------------------------------------

@pytest.mark.parametrize("key", METRIC_KEYS)
def test_depth_metrics_each_key_matches_numpy_with_nan_holes(key):
    pred, gt, mask = _depth_pair()
    got = depth_metrics(pred, gt, mask)
    assert set(got) == set(METRIC_KEYS)
    ref = _np_metrics(pred.numpy(), gt.numpy(), mask.numpy())
    assert math.isfinite(got[key])
    assert got[key] == pytest.approx(ref[key], rel=1e-9, abs=1e-12)


def test_depth_metrics_without_mask_uses_finite_gt_and_empty_cutoff_is_nan():
    pred, gt, _ = _depth_pair(1)
    got = depth_metrics(pred, gt)
    ref = _np_metrics(pred.numpy(), gt.numpy(), np.ones(gt.shape, bool))
    assert got["rmse"] == pytest.approx(ref["rmse"], rel=1e-9)
    far = torch.full((1, 1, 2, 2), 50.0)
    assert math.isnan(depth_metrics(far, far)["mean_err_10"])
    assert depth_metrics(far, far)["abs_rel"] == 0.0


def test_depth_metrics_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"depth_metrics: pred and gt must have the same shape, got \(2, 2\) and \(3,\)"):
        depth_metrics(torch.ones(2, 2), torch.ones(3))


def test_accumulator_over_batches_equals_one_pass():
    pred, gt, mask = _depth_pair(2, (4, 1, 5, 6))
    log_pred = to_log_depth(pred)
    acc = DepthMetrics()
    for sl in (slice(0, 1), slice(1, 4)):
        acc.update(log_pred[sl], (None, gt[sl], mask[sl] & torch.isfinite(gt[sl])))
    acc.reduce(lambda t: t)
    got = acc.compute()
    whole = depth_metrics(from_log_depth(log_pred), gt, mask)
    for k in METRIC_KEYS:
        assert got[k] == pytest.approx(whole[k], rel=1e-6)
    assert math.isfinite(got["loss"])


# --- losses --------------------------------------------------------------------------------

def test_scale_invariant_loss_matches_numpy_and_ignores_holes():
    rng = np.random.default_rng(3)
    pred = rng.random((2, 1, 4, 5)).astype(np.float32)
    tgt = rng.random((2, 1, 4, 5)).astype(np.float32)
    mask = rng.random((2, 1, 4, 5)) > 0.3
    tgt[~mask] = np.nan
    ref = []
    for b in range(2):
        r = (pred[b] - tgt[b])[mask[b]].astype(np.float64)
        ref.append(np.mean(r ** 2) - 0.5 * np.mean(r) ** 2)
    p = torch.from_numpy(pred).requires_grad_()
    loss = scale_invariant_loss(p, torch.from_numpy(tgt), torch.from_numpy(mask), lam=0.5)
    assert float(loss.detach()) == pytest.approx(np.mean(ref), rel=1e-5)
    loss.backward()
    assert torch.isfinite(p.grad).all() and (p.grad[~torch.from_numpy(mask)] == 0).all()
    # lam = 1: a global log shift costs nothing.
    t = torch.from_numpy(np.nan_to_num(tgt))
    full = torch.ones_like(t, dtype=torch.bool)
    assert float(scale_invariant_loss(t + 0.3, t, full, lam=1.0)) == pytest.approx(0.0, abs=1e-6)


def test_gradient_matching_loss_matches_numpy_loops():
    rng = np.random.default_rng(4)
    pred, tgt = rng.random((1, 1, 6, 6)), rng.random((1, 1, 6, 6))
    mask = rng.random((1, 1, 6, 6)) > 0.2
    r = np.where(mask, pred - tgt, 0.0)
    ref = 0.0
    for s in range(2):
        rs, ms = r[0, 0, :: 2 ** s, :: 2 ** s], mask[0, 0, :: 2 ** s, :: 2 ** s]
        acc = 0.0
        for i in range(rs.shape[0]):
            for j in range(rs.shape[1]):
                if j + 1 < rs.shape[1] and ms[i, j] and ms[i, j + 1]:
                    acc += abs(rs[i, j + 1] - rs[i, j])
                if i + 1 < rs.shape[0] and ms[i, j] and ms[i + 1, j]:
                    acc += abs(rs[i + 1, j] - rs[i, j])
        ref += acc / ms.sum()
    got = gradient_matching_loss(torch.from_numpy(pred), torch.from_numpy(tgt), torch.from_numpy(mask), scales=2)
    assert float(got) == pytest.approx(ref, rel=1e-9)


def test_loss_rejects_wrong_shapes():
    with pytest.raises(ValueError, match=r"scale_invariant_loss: pred must be \[B, 1, H, W\], got shape \(2, 3\)"):
        scale_invariant_loss(torch.ones(2, 3), torch.ones(2, 3), torch.ones(2, 3, dtype=torch.bool))


# --- the task ------------------------------------------------------------------------------

def test_task_prepares_mask_from_nan_and_given_mask():
    frames = torch.zeros(3, 2, 2, 4, 5)
    depth = torch.full((2, 4, 5), 10.0)
    depth[0, 0, 0] = float("nan")
    depth[1, 1, 1] = 0.0
    given = torch.ones(2, 4, 5, dtype=torch.bool)
    given[1, 3, 4] = False
    f, d, m = DepthTask().to_device((frames, depth, given), torch.device("cpu"))
    assert d.shape == (2, 1, 4, 5) and m.dtype == torch.bool
    assert int((~m).sum()) == 3 and not m[0, 0, 0, 0] and not m[1, 0, 1, 1] and not m[1, 0, 3, 4]
    with pytest.raises(ValueError, match=r"DepthTask: depth must be \[B, H, W\] or \[B, 1, H, W\] = \(2, 1, 4, 5\)"):
        DepthTask().prepare((frames, torch.ones(2, 3, 5)))
    with pytest.raises(ValueError, match=r"DepthTask: frames must be time-major \[T, B, C, H, W\], got shape \(2, 2, 4, 5\)"):
        DepthTask().prepare((frames[0], depth))


# --- models --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["spiking_unet_depth", "ann_unet_depth"])
def test_unet_depth_shapes_range_and_parameter_count(name, capsys):
    torch.manual_seed(0)
    model = create_model(name, T=3, base=4, levels=2)
    out = model(torch.rand(3, 2, 2, 13, 18) * 3)  # sides not multiples of 4: padded then cropped
    assert out.shape == (2, 1, 13, 18)
    assert ((out > 0) & (out < 1)).all()
    n = count_parameters(model)
    with capsys.disabled():
        print(f"\n{name} (T=3, base=4, levels=2): {n} parameters; "
              f"default (T=5, base=16, levels=3): {count_parameters(create_model(name))} parameters")
    assert n > 0


def test_snn_and_ann_share_architecture_except_input_width():
    from spikedrive.neurons import LIF

    snn, ann = (create_model(n, T=3, base=4, levels=2) for n in ("spiking_unet_depth", "ann_unet_depth"))
    kinds = [type(m).__name__ for m in snn.modules()]
    assert [k if k != "LIF" else "ReLU" for k in kinds] == [type(m).__name__ for m in ann.modules()]
    assert any(isinstance(m, LIF) for m in snn.modules())
    a, b = dict(snn.named_parameters()), dict(ann.named_parameters())
    assert a.keys() == b.keys()
    differ = {k for k in a if a[k].shape != b[k].shape}
    # only the first conv (C*T input channels) and the temporal attention MLPs (T = 1 in the ANN)
    assert "stem.0.module.weight" in differ and b["stem.0.module.weight"].shape[1] == 2 * 3
    assert all(k == "stem.0.module.weight" or ".temporal." in k for k in differ)


def test_readouts_are_the_integrator_formulas():
    torch.manual_seed(0)
    x = torch.rand(3, 1, 2, 4, 4)
    for readout in ("leaky", "mean"):
        model = SpikingUNetDepth(T=3, base=4, levels=1, readout=readout, tau_out=2.0).eval()
        seen = {}
        model.head.register_forward_hook(lambda m, i, o: seen.setdefault("i", o))
        out = model(x)
        cur = seen["i"]
        v = torch.zeros_like(cur[0])
        for t in range(3):
            v = v + (cur[t] - v) / 2.0
        expected = v if readout == "leaky" else cur.sum(0) / 3
        torch.testing.assert_close(out, torch.sigmoid(expected))


def test_unet_rejects_wrong_input_naming_shape():
    model = SpikingUNetDepth(T=3, base=4, levels=1)
    with pytest.raises(ValueError, match=r"SpikingUNetDepth: expected frames \[T=3, B, C=2, H, W\], got shape \(2, 1, 2, 4, 4\)"):
        model(torch.zeros(2, 1, 2, 4, 4))
    with pytest.raises(ValueError, match=r"SpikingUNetDepth: readout must be 'mean' or 'leaky', got 'last'"):
        SpikingUNetDepth(readout="last")


def test_energy_report_counts_the_snn_and_ann_comparison():
    from spikedrive.analysis import energy_report

    model = create_model("spiking_unet_depth", T=2, base=4, levels=1)
    report = energy_report(model, (torch.rand(2, 1, 2, 8, 8) < 0.3).float() * 2, batch_dim=1)
    assert report.layers and report.ann_energy_pj > 0 and report.ratio > 0
    assert not [n for n in report.notes if "not counted" in n]


# --- engine: registered task, train / eval / predict ------------------------------------------

@pytest.fixture(scope="module")
def tiny_mvsec(tmp_path_factory):
    from spikedrive.data.datasets import make_mvsec

    root = tmp_path_factory.mktemp("mvsec")
    # full MVSEC sensor (the registered `mvsec` dataset assumes 346x260), 0.25 s: 5 depth maps
    return make_mvsec(root, ("outdoor_day1", "outdoor_day2"), duration_us=250_000, n_objects=1)


def test_depth_train_eval_predict_commands(tiny_mvsec, tmp_path, capsys):
    from spikedrive.engine import list_tasks
    from spikedrive.engine.depth_task import depth_eval, depth_predict, depth_train

    assert "depth" in list_tasks()
    out_dir = tmp_path / "run"
    overrides = [f"data_root={tiny_mvsec}", f"out_dir={out_dir}", "epochs=1", "batch_size=2", "model_kwargs.T=2",
                 "model_kwargs.base=2", "model_kwargs.levels=1", "model_kwargs.attention=false", "dataset_kwargs.T=2",
                 "progress=false", "energy_report=false", "device=cpu", "seed=0"]
    assert depth_train(argparse.Namespace(config="configs/depth/synthetic.yaml", overrides=overrides, resume=False)) == 0
    printed = capsys.readouterr().out
    assert "test: abs_rel" in printed and "mean_err_30" in printed
    ckpt = next(out_dir.glob("*.pt"))
    assert depth_eval(argparse.Namespace(checkpoint=str(ckpt), overrides=[])) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("val: abs_rel") and lines[1].startswith("test: abs_rel")
    pngs = tmp_path / "png"
    assert depth_predict(argparse.Namespace(checkpoint=str(ckpt), out=str(pngs), split="test", samples=2, overrides=[])) == 0
    files = sorted(pngs.glob("*.png"))
    assert [f.name for f in files] == ["test_0000.png", "test_0001.png"]
    assert files[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_depth_train_refuses_a_classification_recipe():
    from spikedrive.engine.depth_task import depth_train

    with pytest.raises(ValueError, match=r"depth train: --config 'configs/demo/digits.yaml' has task 'classification', expected 'depth'"):
        depth_train(argparse.Namespace(config="configs/demo/digits.yaml", overrides=[], resume=False))
