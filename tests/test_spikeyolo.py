"""SpikeYOLO (spikedrive.models.spikeyolo): the output contract, sizes, I-LIF settings, the ANN twin.

Every network here is the ``pico`` size on 64x64 (or 32x32) inputs; the released sizes are only
built on the meta device, to count their parameters.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import spikedrive.models.spikeyolo as sy
from helpers import calibrate_bn
from spikedrive.models.registry import create_model
from spikedrive.neurons import ILIF

torch.set_num_threads(1)

# Parameter counts of the released configurations (nc = 80 unless said), METHODS.md [code].
RELEASED = {("n", 80): 13.27e6, ("s", 80): 23.15e6, ("s", 2): 23.12e6, ("m", 80): 47.84e6, ("l", 80): 68.48e6}


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts_match_the_released_sizes() -> None:
    rows = []
    for (size, nc), expected in RELEASED.items():
        with torch.device("meta"):
            model = create_model(f"spikeyolo_{size}", num_classes=nc)
        n = _params(model)
        rows.append(f"spikeyolo_{size:<4} nc={nc:<3} {n / 1e6:7.2f}M  released {expected / 1e6:.2f}M")
        assert abs(n - expected) / expected < 0.003, rows[-1]  # well inside the 3% asked for
    print("\n" + "\n".join(rows))


def test_output_contract_on_images_and_frames() -> None:
    torch.manual_seed(0)
    model = create_model("spikeyolo_pico", num_classes=3, T=2)
    assert model.strides == (8, 16, 32) and model.reg_max == 16 and model.num_classes == 3
    out = model(torch.rand(2, 3, 64, 64))
    assert isinstance(out, list) and len(out) == 3
    for o, s in zip(out, model.strides):
        assert o.shape == (2, 4 * 16 + 3, 64 // s, 64 // s)
    frames = model(torch.rand(3, 2, 3, 32, 64))  # T' = 3 frames, not the model's T
    assert [tuple(o.shape) for o in frames] == [(2, 67, 4, 8), (2, 67, 2, 4), (2, 67, 1, 2)]


def test_images_are_repeated_over_T() -> None:
    """An image equals the sequence of T copies of it (the release's MS_GetT)."""
    torch.manual_seed(0)
    model = create_model("spikeyolo_pico", num_classes=2, T=2).eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        a, b = model(x), model(x.unsqueeze(0).repeat(2, 1, 1, 1, 1))
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v, rtol=0, atol=0)


def test_outputs_are_the_time_mean_of_the_head() -> None:
    """Each level's output is the mean over T of ``cat(box, cls)`` at that level."""
    torch.manual_seed(0)
    model = create_model("spikeyolo_pico", num_classes=2, T=3).eval()
    seen: list[torch.Tensor] = []
    for branch in (*model.head.box, *model.head.cls):
        branch[-1].register_forward_hook(lambda m, a, out: seen.append(out))
    with torch.no_grad():
        out = model(torch.rand(2, 3, 32, 32))
    box, cls = seen[0::2], seen[1::2]  # the head runs box then class at each level
    for o, b, c in zip(out, box, cls):
        assert b.shape[0] == 3
        torch.testing.assert_close(o, torch.cat((b, c), 2).mean(0))


def test_head_biases_start_at_the_yolov8_prior() -> None:
    model = create_model("spikeyolo_pico", num_classes=5)
    for box, cls, s in zip(model.head.box, model.head.cls, (8, 16, 32)):
        assert torch.equal(box[-1].module.bias, torch.ones(64))
        torch.testing.assert_close(cls[-1].module.bias, torch.full((5,), math.log(5 / 5 / (640 / s) ** 2)))


def test_ilif_settings_t_by_d_and_the_gen1_charge() -> None:
    coco = create_model("spikeyolo_pico", num_classes=2, T=1)
    neurons = [m for m in coco.modules() if isinstance(m, ILIF)]
    assert neurons and all(m.D == 4 and m.beta == 0.25 and m.charge == "decay" for m in neurons)
    with torch.device("meta"):
        gen1 = create_model("spikeyolo_gen1")
    assert gen1.T == 2 and gen1.num_classes == 2
    assert all(m.charge == "tau" and m.tau == 2.0 and m.D == 4 for m in gen1.modules() if isinstance(m, ILIF))
    d2 = create_model("spikeyolo_pico", D=2)
    assert {m.D for m in d2.modules() if isinstance(m, ILIF)} == {2}


def test_tau_charge_changes_the_dynamics() -> None:
    """The same weights with the Gen1 tau-form charge give other outputs (over T = 2 steps)."""
    torch.manual_seed(0)
    decay = create_model("spikeyolo_pico", num_classes=2, T=2)
    tau = create_model("spikeyolo_pico", num_classes=2, T=2, charge="tau").eval()
    x = torch.rand(2, 3, 32, 32)
    calibrate_bn(decay, x)  # untrained running statistics would silence every neuron in eval mode
    tau.load_state_dict(decay.state_dict())
    with torch.no_grad():
        assert not all(torch.equal(a, b) for a, b in zip(decay(x), tau(x)))


def test_backward_reaches_the_stem() -> None:
    torch.manual_seed(0)
    model = create_model("spikeyolo_pico", num_classes=2, T=2)
    out = model(torch.rand(2, 3, 64, 64))
    sum(o.square().mean() for o in out).backward()
    grad = model.stem[0].module.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_ann_twin_has_the_same_weights_and_no_spiking_neurons() -> None:
    snn = create_model("spikeyolo_pico", num_classes=2)
    ann = create_model("spikeyolo_pico_ann", num_classes=2)
    assert ann.ann and ann.T == 1
    assert not any(isinstance(m, ILIF) for m in ann.modules())
    assert sum(isinstance(m, nn.ReLU) for m in ann.modules()) == sum(isinstance(m, ILIF) for m in snn.modules())
    assert [(k, v.shape) for k, v in ann.state_dict().items()] == [(k, v.shape) for k, v in snn.state_dict().items()]
    out = ann(torch.rand(2, 3, 32, 32))
    assert [tuple(o.shape) for o in out] == [(2, 66, 4, 4), (2, 66, 2, 2), (2, 66, 1, 1)]


@pytest.mark.parametrize("shape, match", [
    ((1, 3, 48, 64), r"multiples of 32.*\(48, 64\)"),
    ((1, 1, 32, 32), r"expected images \[B, 3, H, W\].*\(1, 1, 32, 32\)"),
    ((3, 32, 32), r"got shape \(3, 32, 32\)"),
])
def test_bad_inputs_are_refused_by_name(shape, match) -> None:
    model = create_model("spikeyolo_pico")
    with pytest.raises(ValueError, match=match):
        model(torch.rand(*shape))


def test_bad_arguments_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"size must be one of .* got 'xl'"):
        sy.SpikeYOLO(size="xl")
    with pytest.raises(ValueError, match=r"num_classes must be an integer >= 1, got 0"):
        create_model("spikeyolo_pico", num_classes=0)
    with pytest.raises(ValueError, match=r"charge must be 'decay' or 'tau', got 'exp'"):
        create_model("spikeyolo_pico", charge="exp")


def test_registered_names_fix_their_size_and_kind() -> None:
    with pytest.raises(TypeError, match=r"spikeyolo_pico: size is fixed by the name \(pico\), got size='n'"):
        create_model("spikeyolo_pico", size="n")
    with pytest.raises(TypeError, match=r"spikeyolo_pico_ann: ann is fixed by the name \(True\), got ann=False"):
        create_model("spikeyolo_pico_ann", ann=False)
    assert create_model("spikeyolo_pico", ann=True).ann  # the flag works on the spiking names
