"""spikedrive.robustness: RSC coders, attacks (with checks against gradient masking), certificates."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from scipy import stats
from torch import nn

from spikedrive.encoding import PoissonEncoder, RSCEncoder, rsc_encode
from spikedrive.models import create_model
from spikedrive.robustness import (
    CodedModel, PixelInput, Smooth, accuracy, certified_accuracy, clopper_pearson_lower, fgsm, loss_and_grad,
    make_coder, pgd, qte,
)


# --- coders -------------------------------------------------------------------------------

def test_rsc_one_draw_for_all_steps_vs_a_draw_per_step():
    x = torch.rand(3, 1, 4, 4)
    one = rsc_encode(x, 5, 0.3, "I", torch.Generator().manual_seed(0))
    per = rsc_encode(x, 5, 0.3, "II", torch.Generator().manual_seed(0))
    assert one.shape == per.shape == (5, 3, 1, 4, 4)
    assert torch.equal(one[0], one[4])                      # RSC-I: the same noisy image every step
    assert not torch.allclose(per[0], per[1])               # RSC-II: fresh noise
    # The first draw is the same Gaussian sample in both modes: x + sigma * randn.
    ref = x + 0.3 * torch.randn((1, *x.shape), generator=torch.Generator().manual_seed(0))[0]
    assert torch.allclose(one[0], ref) and torch.allclose(per[0], ref)


def test_rsc_noise_statistics_and_gradient():
    x = torch.full((20000,), 0.4, requires_grad=True)
    code = rsc_encode(x, 2, 0.25, "II", torch.Generator().manual_seed(1))
    code.sum().backward()
    code = code.detach()
    assert abs(float((code - 0.4).std()) - 0.25) < 0.01 and abs(float(code.mean()) - 0.4) < 0.01
    assert torch.equal(x.grad, torch.full_like(x, 2.0))     # d x_t / d x = 1 per step


def test_rsc_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"rsc_encode: sigma must be .* got -0.1"):
        rsc_encode(torch.zeros(1), 2, -0.1)
    with pytest.raises(ValueError, match=r"RSCEncoder: mode must be one of \('I', 'II'\).* got 'III'"):
        RSCEncoder(2, 0.1, "III")
    with pytest.raises(ValueError, match=r"make_coder: sigma=0.2 applies only to the rsc1 / rsc2 coders, not 'poisson'"):
        make_coder("poisson", 4, 0.2)


def test_coded_model_undoes_the_normalization():
    base = create_model("digits_snn", T=2, in_channels=3, image_size=8, channels=(4,), pool_after=(True,), hidden=8)
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
    coded = CodedModel(make_coder("direct", 2), base, mean, std).eval()
    pixels = torch.rand(2, 3, 8, 8)
    normalized = (pixels - torch.tensor(mean).view(-1, 1, 1)) / torch.tensor(std).view(-1, 1, 1)
    with torch.no_grad():
        want = base(pixels.unsqueeze(0).expand(2, *pixels.shape))
        assert torch.allclose(coded(normalized), want, atol=1e-5)
        assert torch.allclose(PixelInput(coded)(pixels), want, atol=1e-6)
    with pytest.raises(ValueError, match="give both input_mean and input_std"):
        CodedModel(make_coder("direct", 2), base, mean, None)


def test_registered_coded_model_takes_sigma_from_the_recipe():
    m = create_model("coded", base="digits_snn", coder="rsc1", sigma=0.25, T=3, num_classes=10)
    assert isinstance(m.coder, RSCEncoder) and m.coder.sigma == 0.25 and m.coder.mode == "I" and m.model.T == 3
    assert m(torch.rand(2, 1, 8, 8)).shape == (2, 10)


# --- trained tiny models ------------------------------------------------------------------

def _train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int) -> nn.Module:
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(y))
        for idx in perm.split(64):
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def digits():
    from spikedrive.data.digits import load_digits_split

    train, _, test = load_digits_split(seed=0)
    xtr, ytr = train.tensors
    xte, yte = test.tensors
    return xtr, ytr, xte[:60], yte[:60]


def _small(T: int) -> nn.Module:
    torch.manual_seed(0)
    return create_model("digits_snn", T=T, channels=(8, 16), hidden=32)


@pytest.fixture(scope="module")
def direct_snn(digits):
    xtr, ytr, _, _ = digits
    return _train(CodedModel(make_coder("direct", 2), _small(2)), xtr, ytr, epochs=3)


@pytest.fixture(scope="module")
def poisson_snn(digits):
    xtr, ytr, _, _ = digits
    return _train(CodedModel(make_coder("poisson", 3), _small(3)), xtr, ytr, epochs=3)


# --- checks against gradient masking ------------------------------------------------------

def test_trained_models_are_accurate(direct_snn, poisson_snn, digits):
    _, _, x, y = digits
    assert accuracy(direct_snn, x, y) > 0.85
    torch.manual_seed(0)
    assert accuracy(poisson_snn, x, y) > 0.75


def test_pgd_loss_rises_with_epsilon(direct_snn, digits):
    _, _, x, y = digits
    losses = []
    for eps in (0.0, 0.03, 0.08, 0.15):
        adv = pgd(direct_snn, x, y, eps, steps=5, generator=torch.Generator().manual_seed(0))
        assert float((adv - x).abs().max()) <= eps + 1e-6 and adv.min() >= 0 and adv.max() <= 1
        with torch.no_grad():
            losses.append(float(F.cross_entropy(direct_snn(adv), y)))
    assert all(b > a for a, b in zip(losses, losses[1:])), losses


def test_more_pgd_steps_never_raise_accuracy(direct_snn, digits):
    _, _, x, y = digits
    accs = [accuracy(direct_snn, pgd(direct_snn, x, y, 0.08, steps=s, step_size=0.02,
                                     generator=torch.Generator().manual_seed(3)), y) for s in (0, 1, 3, 6)]
    assert all(b <= a for a, b in zip(accs, accs[1:])), accs
    assert accs[-1] < accs[0]


def test_unbounded_attack_reaches_zero_accuracy(direct_snn, digits):
    _, _, x, y = digits
    adv = pgd(direct_snn, x, y, math.inf, steps=15, step_size=0.1, generator=torch.Generator().manual_seed(0))
    assert accuracy(direct_snn, adv, y) <= 0.02


def test_l2_pgd_stays_in_the_ball(direct_snn, digits):
    _, _, x, y = digits
    adv = pgd(direct_snn, x, y, 0.5, steps=5, norm="l2", generator=torch.Generator().manual_seed(0))
    assert float((adv - x).flatten(1).norm(dim=1).max()) <= 0.5 + 1e-5
    assert accuracy(direct_snn, adv, y) < accuracy(direct_snn, x, y)


def test_bernoulli_coder_without_straight_through_masks_the_gradient(poisson_snn, digits):
    _, _, x, y = digits
    masked = CodedModel(PoissonEncoder(3, straight_through=False), poisson_snn.model).eval()
    torch.manual_seed(0)
    _, grad, _ = loss_and_grad(masked, x[:16], y[:16])
    assert torch.count_nonzero(grad) == 0                   # a naive attack sees nothing
    torch.manual_seed(0)
    _, grad, _ = loss_and_grad(poisson_snn, x[:16], y[:16])
    assert torch.count_nonzero(grad) > 0                    # the straight-through coder does
    torch.manual_seed(1)
    naive = accuracy(masked, fgsm(masked, x, y, 0.3), y)
    torch.manual_seed(1)
    eot = accuracy(poisson_snn, pgd(poisson_snn, x, y, 0.3, steps=6, eot=2,
                                    generator=torch.Generator().manual_seed(0)), y)
    assert eot < naive - 0.3, (naive, eot)


def test_eot_pgd_is_at_least_as_strong_as_fgsm_on_a_stochastic_model(poisson_snn, digits):
    _, _, x, y = digits
    torch.manual_seed(1)
    acc_fgsm = accuracy(poisson_snn, fgsm(poisson_snn, x, y, 0.2, eot=2), y)
    torch.manual_seed(1)
    adv = pgd(poisson_snn, x, y, 0.2, steps=7, eot=2, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(2)
    acc_pgd = accuracy(poisson_snn, adv, y, samples=4)
    assert acc_pgd <= acc_fgsm, (acc_pgd, acc_fgsm)
    with pytest.raises(ValueError, match=r"pgd: keep must be 'auto', 'first_fooled' or 'last', got 'best'"):
        pgd(poisson_snn, x, y, 0.2, keep="best")


def test_eot_gradient_is_the_mean_of_per_draw_gradients():
    torch.manual_seed(0)
    base = nn.Sequential(nn.Flatten(2), nn.Linear(4, 3))

    class MeanOverTime(nn.Module):
        def forward(self, s: torch.Tensor) -> torch.Tensor:
            return base(s).mean(0)

    def coded() -> CodedModel:
        return CodedModel(RSCEncoder(2, 0.5, "II", torch.Generator().manual_seed(7)), MeanOverTime())

    x, y = torch.rand(5, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1])
    _, g, _ = loss_and_grad(coded(), x, y, eot=3)
    model, want = coded(), torch.zeros_like(x)
    for _ in range(3):
        xi = x.clone().requires_grad_(True)
        F.cross_entropy(model(xi), y, reduction="sum").backward()
        want += xi.grad / 3
    assert torch.allclose(g, want, atol=1e-6)


def test_attack_errors_name_the_argument(direct_snn):
    x, y = torch.rand(2, 1, 8, 8), torch.tensor([0, 1])
    with pytest.raises(ValueError, match=r"pgd: an unbounded attack \(eps=inf\) needs an explicit finite step_size"):
        pgd(direct_snn, x, y, math.inf)
    with pytest.raises(ValueError, match=r"pgd: norm must be one of \('linf', 'l2'\), got 'l1'"):
        pgd(direct_snn, x, y, 0.1, norm="l1")
    with pytest.raises(ValueError, match=r"fgsm: y must be labels \[B\] = \[2\], got shape \(3,\)"):
        fgsm(direct_snn, x, torch.zeros(3, dtype=torch.long), 0.1)


# --- certification ------------------------------------------------------------------------

def test_clopper_pearson_lower_against_the_beta_quantile_by_hand():
    for k, n, alpha in ((95, 100, 0.001), (480, 500, 0.05), (1, 10, 0.1), (100, 100, 0.001)):
        p = clopper_pearson_lower(k, n, alpha)
        assert p == pytest.approx(stats.beta.ppf(alpha, k, n - k + 1), rel=1e-12)
        # The defining property: at p, seeing k or more successes has probability alpha.
        tail = sum(math.comb(n, j) * p ** j * (1 - p) ** (n - j) for j in range(k, n + 1))
        assert tail == pytest.approx(alpha, rel=1e-6)
    assert clopper_pearson_lower(0, 10, 0.05) == 0.0
    with pytest.raises(ValueError, match=r"clopper_pearson_lower: need integers 0 <= k <= n, n >= 1, got k=11, n=10"):
        clopper_pearson_lower(11, 10, 0.05)


class _Constant(nn.Module):
    """Always class 2 (any input shape; batch in dim ``batch_dim``)."""

    def __init__(self, batch_dim: int = 0) -> None:
        super().__init__()
        self.batch_dim = batch_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(x.shape[self.batch_dim], 4)
        out[:, 2] = 1.0
        return out


def test_certify_radius_for_a_sure_class_is_closed_form():
    # All n samples agree: p_lower = alpha ** (1 / n) (the Beta(n, 1) quantile).
    n, alpha, x = 200, 0.001, torch.rand(1, 3, 3)
    p = alpha ** (1 / n)
    c, r = Smooth(_Constant(), 4, 0.25).certify(x, 10, n, alpha, 64)
    assert c == 2 and r == pytest.approx(0.25 * stats.norm.ppf(p), rel=1e-9)
    c, r = Smooth(_Constant(1), 4, 0.25, T=4).certify(x, 10, n, alpha, 64)
    assert c == 2 and r == pytest.approx(0.25 * stats.norm.ppf(p) / 2, rel=1e-9)     # / sqrt(T)
    c, r = Smooth(_Constant(1), 4, 0.0, noise="bernoulli", T=4).certify(x, 10, n, alpha, 64)
    assert c == 2 and r == pytest.approx((p - 0.5) / 4, rel=1e-9)


class _Sign(nn.Module):
    """Class 1 if the first pixel > 0 else 0: its Gaussian-smoothed version is robust exactly up
    to L2 distance |x_0| (the decision boundary is the hyperplane x_0 = 0)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.one_hot((x.flatten(1)[:, 0] > 0).long(), 2).float()


def test_gaussian_certificate_is_sound_and_close_on_a_linear_classifier():
    x = torch.zeros(1, 2, 2)
    x[0, 0, 0] = 0.3
    smooth = Smooth(_Sign(), 2, 0.5, seed=0)
    c, r = smooth.certify(x, 50, 4000, 0.001, 1000)
    assert c == 1 and 0.2 < r <= 0.3                      # sound (<= the true radius), not vacuous
    assert smooth.predict(x, 1000, 0.001, 500) == 1
    assert Smooth(_Sign(), 2, 0.5).predict(torch.zeros(1, 2, 2), 200, 0.001, 100) == Smooth.ABSTAIN


class _AnySpike(nn.Module):
    """Class 1 if any input spike over the T steps, else 0 (input [T, B, 1])."""

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return F.one_hot((s.sum(dim=(0, 2)) > 0).long(), 2).float()


def test_bernoulli_radius_divides_by_the_draws():
    # x = 0 never spikes: p_A = 1. Moving x by delta = 0.2 (|delta|_1 = 0.2) gives P(class 0) =
    # 0.8^4 = 0.41 < 1/2 with T = 4: the smoothed prediction flips. The one-draw radius
    # p_lower - 1/2 (~0.5) would wrongly certify it; (p_lower - 1/2) / T does not.
    x = torch.zeros(1)
    smooth = Smooth(_AnySpike(), 2, 0.0, noise="bernoulli", T=4, seed=0)
    c, r = smooth.certify(x, 20, 1000, 0.001, 500)
    p_lower = 0.001 ** (1 / 1000)
    assert c == 0 and r == pytest.approx((p_lower - 0.5) / 4) and r < 0.2 < p_lower - 0.5
    assert smooth.predict(x + 0.2, 2000, 0.001, 1000) == 1
    assert 0.8 ** 4 < 0.5


def test_smooth_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"Smooth: sigma=0.5 has no meaning for bernoulli coding"):
        Smooth(_Constant(), 4, 0.5, noise="bernoulli", T=2)
    with pytest.raises(ValueError, match=r"Smooth: bernoulli coding needs T"):
        Smooth(_Constant(), 4, 0.0, noise="bernoulli")
    with pytest.raises(ValueError, match=r"Smooth: noise must be one of \('gaussian', 'bernoulli'\), got 'laplace'"):
        Smooth(_Constant(), 4, 0.5, noise="laplace")


def test_certified_accuracy_curve():
    preds, radii, labels = [1, 2, Smooth.ABSTAIN, 0], [0.5, 0.1, 0.0, 0.3], [1, 2, 0, 1]
    assert certified_accuracy(preds, radii, labels, [0.0, 0.1, 0.2, 0.5, 0.6]) == [0.5, 0.5, 0.25, 0.25, 0.0]


# --- distillation -------------------------------------------------------------------------

def test_distillation_loss_by_hand_and_in_the_engine():
    from spikedrive.robustness import DistillationTask, distillation_loss

    s, t, y = torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([[0.0, 1.0, 0.0]]), torch.tensor([0])
    ps, pt = torch.softmax(s / 2, -1), torch.softmax(t / 2, -1)
    kl = float((pt * (pt.log() - ps.log())).sum())
    ce = float(-torch.log_softmax(s, -1)[0, 0])
    assert float(distillation_loss(s, t, y, alpha=0.3, tau=2.0)) == pytest.approx(0.7 * ce + 0.3 * 4 * kl, rel=1e-6)
    with pytest.raises(ValueError, match=r"distillation_loss: alpha must be in \[0, 1\], got 1.5"):
        DistillationTask(nn.Identity(), alpha=1.5)
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    task = DistillationTask(teacher, alpha=1.0, tau=1.0)
    student = CodedModel(make_coder("rsc2", 2, 0.1), _small(2))
    x, y = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    loss, logs = task.training_loss(student, (x, y))
    loss.backward()
    assert loss.item() > 0 and 0.0 <= float(logs["accuracy"]) <= 1.0
    assert all(p.grad is None for p in teacher.parameters())


# --- QTE ----------------------------------------------------------------------------------

def test_qte_is_the_trapezoid_of_methods_md():
    eps, acc = [0.0, 0.1, 0.2, 0.4], [0.9, 0.5, 0.4, 0.1]
    assert qte(eps, acc) == pytest.approx(0.4 * (0.1 + 0.9) / 2)
    assert qte(eps, acc, 0.1, 0.2) == pytest.approx(0.1 * (0.4 + 0.5) / 2)
    assert qte(eps, acc, 0.05, 0.3) == pytest.approx(0.25 * (0.7 + 0.25) / 2)           # interpolated ends
    assert qte(eps, acc, composite=True) == pytest.approx(0.1 * 1.4 / 2 + 0.1 * 0.9 / 2 + 0.2 * 0.5 / 2)
    with pytest.raises(ValueError, match="qte: eps must be strictly increasing"):
        qte([0.1, 0.0], [1, 1])


# --- commands -----------------------------------------------------------------------------

def test_attack_and_certify_commands_on_a_checkpoint(tmp_path, capsys):
    from spikedrive.engine import load_config, train
    from spikedrive.robustness.commands import run_attack, run_certify

    cfg = load_config("configs/rsc/digits.yaml", [f"out_dir={tmp_path / 'run'}", "epochs=1", "max_steps_per_epoch=2",
                                                  "progress=false", "energy_report=false", "device=cpu"])
    result = train(cfg)
    ckpt = str(result.last_checkpoint)
    run_attack(SimpleNamespace(checkpoint=ckpt, attack="pgd", norm="linf", eps=[0.0, 0.1], steps=2, step_size=None,
                               eot=2, samples=8, batch_size=8, seed=0, out=str(tmp_path / "a.json"), overrides=[]))
    run_certify(SimpleNamespace(checkpoint=ckpt, n0=4, n=16, alpha=0.01, batch_size=16, samples=2, sigma=None,
                                radii=[0.0, 0.1], seed=0, out=str(tmp_path / "c.json"), plot=str(tmp_path / "c.png"),
                                overrides=[]))
    out = capsys.readouterr().out
    assert "pgd linf eps 0.1: accuracy" in out and "QTE over [0, 0.1]" in out
    assert "gaussian smoothing (sigma 0.25, T 4)" in out and (tmp_path / "c.png").is_file()


def test_attacks_and_certification_keep_each_submodule_mode():
    from spikedrive.robustness import Smooth

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8),
                                torch.nn.Dropout(0.5), torch.nn.Linear(8, 3))
    model.train()
    model[2].eval()  # a frozen batch norm inside a model being trained
    x, y = torch.rand(5, 1, 2, 2), torch.randint(0, 3, (5,))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fgsm(model, x, y, eps=0.1)
    pgd(model, x, y, eps=0.1, steps=2)
    Smooth(model, num_classes=3, sigma=0.25).sample_counts(x[0], num=4, batch_size=2)
    assert model.training and not model[2].training and model[3].training
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
