"""spikedrive.pruning: masks through torch.nn.utils.prune, the criteria against hand-computed
references, IMP with rewinding and resume on the engine, sparse energy, ResNet-19, the CLI."""

from __future__ import annotations

import copy
import dataclasses
import json
import math

import pytest
import torch
from torch import nn
from torch.nn.utils import prune
from torch.utils.data import Dataset, TensorDataset

from helpers import calibrate_bn
from spikedrive import create_model
from spikedrive.analysis import SpikeMonitor
from spikedrive.analysis.ops import nonzero_pairs
from spikedrive.cli import main
from spikedrive.engine import TrainConfig, load_config, train
from spikedrive.layers import BatchNorm2d, Conv2d, Flatten, Linear
from spikedrive.neurons import IF, LIF, ParametricLIF
from spikedrive.pruning import (
    PruneConfig, apply_masks, get_masks, load_prune_config, make_permanent, measure_spiking_stats,
    prunable_layers, prune_model, run_imp, sparse_energy_report, sparsity_report, spiking_scores,
)

T = 2


class Tiny(nn.Module):
    """[B, 1, 4, 4] -> encoding conv(1->4) BN LIF -> conv(4->4) BN LIF -> flatten -> fc(64->3)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = Conv2d(1, 4, 3, encoding=True)
        self.bn1 = BatchNorm2d(4)
        self.lif1 = LIF(tau=2.0)
        self.conv2 = Conv2d(4, 4, 3)
        self.bn2 = BatchNorm2d(4)
        self.lif2 = LIF(tau=2.0)
        self.flat = Flatten()
        self.fc = Linear(64, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(0).expand(T, *x.shape) if x.dim() == 4 else x
        h = self.lif2(self.bn2(self.conv2(self.lif1(self.bn1(self.conv1(x))))))
        return self.fc(self.flat(h)).mean(0)


def _tiny(seed: int = 0) -> Tiny:
    torch.manual_seed(seed)
    return Tiny()


def _data(n: int = 48, seed: int = 0) -> tuple[Dataset, Dataset, Dataset]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 4, 4, generator=g)
    y = (x[:, 0, :2].sum((1, 2)) > x[:, 0, 2:].sum((1, 2))).long() + (x[:, 0, 0, 0] > 0.8).long()
    return TensorDataset(x, y), TensorDataset(x[:16], y[:16]), TensorDataset(x[16:32], y[16:32])


def _cfg(tmp_path, **kw) -> TrainConfig:
    base = dict(model="tiny", epochs=2, batch_size=16, optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=5e-4,
                warmup_epochs=0, scheduler="cosine", out_dir=str(tmp_path / "run"), device="cpu", progress=False,
                energy_report=False, seed=0)
    base.update(kw)
    return TrainConfig(**base)


# --- masks and torch's conventions -----------------------------------------------------------

def test_global_magnitude_prunes_the_smallest_weights_with_torch_conventions():
    model = _tiny()
    layers = prunable_layers(model)
    weights = torch.cat([l.module.weight.detach().abs().flatten() for l in layers])
    k = round(0.5 * weights.numel())
    threshold = weights.sort().values[k - 1]
    prune_model(model, 0.5, "magnitude", "global")
    for l in layers:
        m = l.module
        assert set(dict(m.named_parameters(recurse=False))) >= {"weight_orig"}
        assert "weight_mask" in dict(m.named_buffers(recurse=False))
        assert torch.equal(m.weight, m.weight_orig * m.weight_mask)
        # exactly the k smallest |w| overall (no ties in random floats)
        assert torch.equal(m.weight_mask.bool(), m.weight_orig.abs() > threshold)
    assert sparsity_report(model).zeros == k
    # BN and biases never pruned
    for name, buf in model.named_buffers():
        assert not name.endswith("bias_mask"), name
    assert not any(hasattr(m, "weight_mask") for m in model.modules() if isinstance(m, nn.BatchNorm2d))


def test_amount_is_a_fraction_of_the_remaining_weights_per_round():
    model = _tiny()
    total = sparsity_report(model).total
    for criterion in ("magnitude", "random"):
        m = copy.deepcopy(model)
        prune_model(m, 0.25, criterion, "global")
        first = sparsity_report(m).zeros
        prune_model(m, 0.25, criterion, "global")
        assert first == round(0.25 * total)
        assert sparsity_report(m).zeros == first + round(0.25 * (total - first))
    m = copy.deepcopy(model)
    prune_model(m, 0.25, "magnitude", "layer")
    prune_model(m, 0.25, "magnitude", "layer")
    for row in sparsity_report(m).layers:
        kept = row.total - round(0.25 * row.total)
        assert row.zeros == row.total - (kept - round(0.25 * kept))


def test_random_pruning_is_seeded():
    a, b, c = _tiny(), _tiny(), _tiny()
    prune_model(a, 0.5, "random", seed=3)
    prune_model(b, 0.5, "random", seed=3)
    prune_model(c, 0.5, "random", seed=4)
    ma, mb, mc = get_masks(a), get_masks(b), get_masks(c)
    assert all(torch.equal(ma[k], mb[k]) for k in ma)
    assert any(not torch.equal(ma[k], mc[k]) for k in ma)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"criterion='snip'; expected one of \('magnitude', 'random', 'spiking'\)"):
        prune_model(_tiny(), 0.5, "snip")
    with pytest.raises(ValueError, match=r"scope='local'; expected one of \('global', 'layer'\)"):
        prune_model(_tiny(), 0.5, scope="local")
    with pytest.raises(ValueError, match=r"amount=1.5: a fraction must be in \[0, 1\]"):
        prune_model(_tiny(), 1.5)
    with pytest.raises(ValueError, match="criterion='spiking' needs data="):
        prune_model(_tiny(), 0.5, "spiking")
    with pytest.raises(ValueError, match="pruning: rate=1.0 is invalid; expected a fraction in \\(0, 1\\)"):
        PruneConfig(rate=1.0)


# --- the spiking criterion -------------------------------------------------------------------

def _hand_charge(x: torch.Tensor, tau: float, v_th: float) -> torch.Tensor:
    """LIF decay_input, hard reset to 0, written out step by step."""
    v, hs = torch.zeros_like(x[0]), []
    for t in range(x.shape[0]):
        h = v + (x[t] - v) / tau
        s = (h >= v_th).float()
        v = h * (1 - s)
        hs.append(h)
    return torch.stack(hs)


def test_spiking_scores_match_the_formula_by_hand():
    model = _tiny()
    x = torch.rand(8, 1, 4, 4, generator=torch.Generator().manual_seed(1)) * 3
    calibrate_bn(model, x)  # so the untrained network fires
    with torch.no_grad():
        xt = x.unsqueeze(0).expand(T, *x.shape)
        s1 = model.lif1(model.bn1(model.conv1(xt)))
        current = model.bn2(model.conv2(s1))
        h = _hand_charge(current, 2.0, 1.0)
    rate = s1.mean(dim=(0, 1, 3, 4))  # per input channel of conv2
    mu = h.mean(dim=(0, 1, 3, 4))
    var = h.var(dim=(0, 1, 3, 4), unbiased=False)
    bn = model.bn2.module
    scale = bn.weight.abs() / torch.sqrt(bn.running_var + bn.eps)
    density = torch.exp(-(mu - 1.0) ** 2 / (2 * var)) / torch.sqrt(2 * math.pi * var)
    w = model.conv2.module.weight
    expected = rate.view(1, 4, 1, 1) * w.abs() * (scale * density).view(4, 1, 1, 1)

    stats = measure_spiking_stats(model, [x])
    assert set(stats) == {"conv1", "conv2"}  # the classifier feeds no neuron
    st = stats["conv2"]
    assert (st.neuron, st.bn) == ("lif2", "bn2")
    assert 0 < float(rate.min()) and float(rate.max()) < 1  # a real test: channels fire, not all
    torch.testing.assert_close(st.input_rate, rate, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(st.mu, mu, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(st.var, var, rtol=1e-4, atol=1e-6)
    layer = next(l for l in prunable_layers(model) if l.name == "conv2")
    torch.testing.assert_close(spiking_scores(layer, st), expected.detach(), rtol=1e-4, atol=1e-8)


def test_spiking_global_leaves_encoding_and_classifier_to_magnitude():
    x = torch.rand(8, 1, 4, 4, generator=torch.Generator().manual_seed(1)) * 3
    model = _tiny()
    calibrate_bn(model, x)
    magnitude = copy.deepcopy(model)
    prune_model(magnitude, 0.4, "magnitude", "global")
    prune_model(model, 0.4, "spiking", "global", data=[x])
    got, ref = get_masks(model), get_masks(magnitude)
    for name in ("conv1", "fc"):  # the encoding conv and the classifier: identical to magnitude
        assert torch.equal(got[name], ref[name]), name
    assert sparsity_report(model).zeros == sparsity_report(magnitude).zeros
    assert not torch.equal(got["conv2"], ref["conv2"])  # the criterion does decide elsewhere
    # per layer: every layer pruned by the same fraction
    per_layer = _tiny()
    calibrate_bn(per_layer, x)
    prune_model(per_layer, 0.5, "spiking", "layer", data=[x])
    assert [r.zeros for r in sparsity_report(per_layer).layers] == [18, 72, 96]


def _plain_charge(x: torch.Tensor, inv_tau: float, v_th: float, v_reset: float | None,
                  decay_input: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``(H, spikes)`` of a LIF written out step by step from the neuron's documented equations."""
    rest = 0.0 if v_reset is None else v_reset
    v, hs, ss = torch.full_like(x[0], rest), [], []
    for t in range(x.shape[0]):
        h = v + (x[t] - (v - rest)) * inv_tau if decay_input else v - (v - rest) * inv_tau + x[t]
        s = (h >= v_th).to(h.dtype)
        v = h - v_th * s if v_reset is None else h * (1 - s) + v_reset * s
        hs.append(h)
        ss.append(s)
    return torch.stack(hs), torch.stack(ss)


@pytest.mark.parametrize("make, inv_tau", [
    (lambda: LIF(tau=2.0), 0.5),
    (lambda: LIF(tau=3.0, v_threshold=0.7, v_reset=None), 1 / 3),  # soft reset
    (lambda: LIF(tau=4.0, v_threshold=0.8, v_reset=-0.25, decay_input=False), 0.25),  # leak towards -0.25
    (lambda: LIF.with_decay(0.5, 1.0), 0.5),
    (lambda: IF(v_threshold=0.6), 0.0),
    (lambda: ParametricLIF(init_tau=2.0), 0.5),
])
def test_spiking_charge_statistics_match_the_neurons_own_dynamics(make, inv_tau):
    """The criterion replays the neuron's charge: its mu / var are those of the plain loop, and
    that loop fires exactly as the neuron module does (so the replay cannot drift from it)."""
    torch.manual_seed(0)
    neuron = make()
    model = nn.Sequential(Linear(5, 6), neuron, Linear(6, 2))
    x = torch.randn(4, 3, 5) * 4  # [T, B, F], strong enough that some steps fire
    with torch.no_grad():
        current = model[0](x)
        h, spikes = _plain_charge(current, inv_tau, neuron.v_threshold, neuron.v_reset, neuron.decay_input)
        torch.testing.assert_close(neuron(current), spikes, rtol=0, atol=0)
    assert 0 < float(spikes.mean()) < 1  # the resets are exercised
    st = measure_spiking_stats(model, [x, x[:, :2]])["0"]
    pooled = torch.cat([h, h[:, :2]], 1)  # both batches, pooled per channel (dim 2)
    torch.testing.assert_close(st.mu, pooled.mean(dim=(0, 1)), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(st.var, pooled.var(dim=(0, 1), unbiased=False), rtol=1e-4, atol=1e-6)
    assert st.v_threshold == neuron.v_threshold and st.bn is None


# --- training keeps the zeros ----------------------------------------------------------------

def test_pruned_weights_stay_zero_through_momentum_decay_checkpoint_and_resume(tmp_path):
    model = _tiny()
    prune_model(model, 0.6, "magnitude", "global")
    masks = get_masks(model)
    cfg = _cfg(tmp_path)
    result = train(cfg, model=model, datasets=_data())
    init = {l.name: l.module.weight.detach() for l in prunable_layers(_tiny())}
    for l in prunable_layers(result.model):
        off = masks[l.name] == 0
        assert torch.equal(l.weight[off], torch.zeros(int(off.sum())))
        assert not torch.equal(l.module.weight_orig[~off], init[l.name][~off])  # it did train
    # resume (epochs extended) from last.pt into a freshly masked model
    fresh = apply_masks(_tiny(), masks)
    more = train(dataclasses.replace(cfg, epochs=3), model=fresh, datasets=_data(), resume=True)
    assert more.epochs == 3
    assert sparsity_report(more.model).zeros == sum(int((m == 0).sum()) for m in masks.values())
    # state_dict round trip and prune.remove
    clone = apply_masks(_tiny(1), {k: torch.ones_like(v) for k, v in masks.items()})
    clone.load_state_dict(more.model.state_dict())
    x = torch.rand(4, 1, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(clone.eval()(x), more.model.eval()(x))
    make_permanent(clone)
    assert not any(n.endswith("weight_orig") or n.endswith("weight_mask") for n in clone.state_dict())
    assert sparsity_report(clone).zeros == sparsity_report(more.model).zeros


# --- IMP with rewinding, resume and the re-init control ---------------------------------------

class _Interrupt(Dataset):
    """The training split, raising KeyboardInterrupt once at item ``at`` of a given call count."""

    def __init__(self, base: Dataset, at: int) -> None:
        self.base, self.at, self.calls = base, at, 0

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt("simulated interruption")
        return self.base[i]


def test_imp_rounds_rewind_resume_mid_round_and_reinit(tmp_path):
    splits = _data()
    p = PruneConfig(criterion="magnitude", rate=0.25, rounds=2, rewind_epoch=1, reinit_control=True,
                    energy_samples=16)
    cfg = _cfg(tmp_path, scheduler="constant", epochs=3)
    result = run_imp(cfg, p, model_fn=Tiny, datasets=splits)
    out = tmp_path / "run"
    total = sparsity_report(Tiny()).total
    zeros = [round(r.sparsity * total) for r in result.rounds]
    assert zeros[0] == 0 and zeros[1] == round(0.25 * total)
    assert zeros[2] == zeros[1] + round(0.25 * (total - zeros[1]))
    assert [r.epochs for r in result.rounds] == [3, 2, 2]
    assert [r.sparsity for r in result.reinit] == [r.sparsity for r in result.rounds[1:]]
    # rewind.pt holds the weights after exactly one epoch: a 1-epoch run of the same recipe
    torch.manual_seed(cfg.seed)
    one = train(dataclasses.replace(cfg, epochs=1, out_dir=str(tmp_path / "one")), model=Tiny(), datasets=splits)
    rewind = torch.load(out / "rewind.pt", weights_only=True)
    for k, v in one.model.state_dict().items():
        torch.testing.assert_close(rewind[k], v, rtol=0, atol=0, msg=k)
    assert json.loads((out / "imp.json").read_text())["rounds"][2]["energy"]["total_sops"] >= 0

    # the same run interrupted in the middle of round 2 and continued gives the same numbers
    cfg2 = dataclasses.replace(cfg, out_dir=str(tmp_path / "again"))
    p2 = dataclasses.replace(p, reinit_control=False)
    n = len(splits[0])  # items read per epoch: round 0 has 3 epochs, rounds 1 and 2 have 2
    flaky = (_Interrupt(splits[0], 3 * n + 2 * n + n + 5), splits[1], splits[2])  # in round 2's 2nd epoch
    with pytest.raises(KeyboardInterrupt):
        run_imp(cfg2, p2, model_fn=Tiny, datasets=flaky)
    assert (tmp_path / "again" / "round_01" / "result.json").is_file()
    assert not (tmp_path / "again" / "round_02" / "result.json").is_file()
    assert torch.load(tmp_path / "again" / "round_02" / "last.pt", weights_only=False)["epoch"] == 1
    again = run_imp(cfg2, p2, model_fn=Tiny, datasets=splits)
    for a, b in zip(again.rounds, result.rounds):
        assert a.sparsity == b.sparsity and a.test_metrics == b.test_metrics and a.val_metrics == b.val_metrics


def test_run_folder_of_another_pruning_recipe_is_refused(tmp_path):
    cfg = _cfg(tmp_path, epochs=1)
    run_imp(cfg, PruneConfig(rounds=1, energy_samples=0), model_fn=Tiny, datasets=_data())
    with pytest.raises(ValueError, match="holds a pruning run made with other settings"):
        run_imp(cfg, PruneConfig(rounds=1, criterion="random", energy_samples=0), model_fn=Tiny, datasets=_data())


# --- energy: zeros cost nothing --------------------------------------------------------------

def test_sparse_sops_are_the_nonzero_pairs_counted_by_hand():
    torch.manual_seed(0)
    conv = Conv2d(2, 3, 3)
    with torch.no_grad():
        conv.module.weight[conv.module.weight.abs() < 0.1] = 0.0
    x = (torch.rand(T, 2, 2, 4, 4) < 0.4).float()
    w = conv.module.weight.detach()
    count = 0  # a plain loop over outputs, taps and input channels
    for t in range(T):
        for b in range(2):
            for o in range(3):
                for i in range(4):
                    for j in range(4):
                        for c in range(2):
                            for di in range(3):
                                for dj in range(3):
                                    ii, jj = i + di - 1, j + dj - 1
                                    if 0 <= ii < 4 and 0 <= jj < 4 and x[t, b, c, ii, jj] != 0 and w[o, c, di, dj] != 0:
                                        count += 1
    assert nonzero_pairs(conv, x) == count
    net = nn.Sequential(Conv2d(2, 2, 1, encoding=True), conv)
    with torch.no_grad():
        net[0].module.weight.copy_(torch.eye(2).view(2, 2, 1, 1))
    with SpikeMonitor(net, batch_dim=1, sparse_weights=True) as mon:
        net(x)
    assert mon.synapses["1"].sops == count
    assert mon.synapses["1"].macs == nonzero_pairs(conv, torch.ones_like(x))  # every tap of a non-zero weight
    with SpikeMonitor(net, batch_dim=1) as dense:
        net(x)
    assert dense.synapses["1"].sops > mon.synapses["1"].sops  # zeros counted there


def test_sparse_energy_report_of_a_pruned_model_drops_with_sparsity():
    x = torch.rand(8, 1, 4, 4, generator=torch.Generator().manual_seed(1)) * 3
    model = _tiny()
    calibrate_bn(model, x)
    dense = sparse_energy_report(model, x)
    prune_model(model, 0.75, "magnitude", "layer")
    sparse = sparse_energy_report(model, x)
    assert sparse.snn_energy_pj < dense.snn_energy_pj
    assert sparse.encoding_macs == pytest.approx(dense.encoding_macs * 0.25, rel=0.35)


# --- ResNet-19 -------------------------------------------------------------------------------

def test_resnet19_structure_and_tiny_forward():
    full = create_model("resnet19", num_classes=100)
    layers = prunable_layers(full)
    convs = [l for l in layers if isinstance(l.module, nn.Conv2d) and l.module.kernel_size == (3, 3)]
    assert len(convs) == 17 and len([l for l in layers if isinstance(l.module, nn.Linear)]) == 2
    assert [l.name for l in layers if l.encoding] == ["conv1"]
    assert [l.name for l in layers if l.classifier] == ["fc2"]
    assert full.conv1.module.out_channels == 64 and full.fc1.module.out_features == 256
    assert full.layer3[-1].conv2.module.out_channels == 512 and full.fc2.module.out_features == 100
    lif = full.lif1
    assert (lif.tau, lif.v_threshold, lif.v_reset, lif.decay_input) == (pytest.approx(4 / 3), 1.0, 0.0, True)
    tiny = create_model("resnet19_tiny", T=2)
    assert tiny(torch.rand(3, 1, 8, 8)).shape == (3, 10)
    with pytest.raises(ValueError, match=r"SpikingResNet19: expected \[B, 1, H, W\]"):
        tiny(torch.rand(3, 3, 8, 8))


# --- the command line ------------------------------------------------------------------------

def test_cli_prune_runs_a_recipe_and_names_a_bad_key(tmp_path, capsys):
    out = tmp_path / "lt"
    code = main(["prune", "--config", "configs/lottery/digits.yaml", f"out_dir={out}", "epochs=1",
                 "max_steps_per_epoch=1", "model_kwargs.T=1", "pruning.rounds=1", "pruning.rewind_epoch=0",
                 "pruning.criterion=spiking", "pruning.stats_batches=1", "pruning.energy_samples=8", "device=cpu"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "25.00%" in text and (out / "round_01" / "masks.pt").is_file()
    code = main(["prune", "--config", "configs/lottery/digits.yaml", f"out_dir={tmp_path / 'x'}", "pruning.rouds=3"])
    assert code == 1
    assert "unknown pruning key(s) ['rouds']" in capsys.readouterr().err
    cfg, p = load_prune_config("configs/lottery/cifar10.yaml")
    assert (cfg.model, cfg.lr, cfg.batch_size, cfg.epochs, p.rewind_epoch, p.rate) == ("resnet19", 0.3, 128, 300, 20, 0.25)


def test_pruning_overrides_are_parsed_as_the_engines_overrides():
    """``pruning.key=value`` reads its value by the engine's override rule, as ``key=value`` does:
    exponent floats are numbers, and text that is not YAML reaches the field's check, which names
    it (not a YAML parser error)."""
    cfg, p = load_prune_config("configs/lottery/digits.yaml", ["pruning.rate=1e-1", "lr=2e-3"])
    assert (p.rate, cfg.lr) == (0.1, 0.002)
    with pytest.raises(ValueError, match=r"pruning: criterion='\[spiking' is invalid; expected one of"):
        load_prune_config("configs/lottery/digits.yaml", ["pruning.criterion=[spiking"])


@pytest.mark.parametrize("reader", [load_prune_config, lambda path: load_config(path)], ids=["prune", "train"])
def test_recipe_readers_name_a_bad_file(tmp_path, reader):
    """Both recipe readers go through the engine's read_recipe: a missing file, text that is not
    YAML and YAML that is not a mapping are errors naming the file, never a parser traceback."""
    with pytest.raises(FileNotFoundError, match="no config file"):
        reader(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("model: [resnet19\n")
    with pytest.raises(ValueError, match="is not valid YAML"):
        reader(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- model\n- lr\n")
    with pytest.raises(ValueError, match="expected a mapping of recipe fields, got list"):
        reader(listing)
