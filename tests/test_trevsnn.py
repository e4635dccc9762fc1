"""T-RevSNN: the reversible backward against plain autograd, reconstruction, memory, heads, loss."""

from __future__ import annotations

import pytest
import torch

from spikedrive.analysis import saved_bytes_for_backward
from spikedrive.engine.multihead import MultiHeadClassificationTask, multihead_loss
from spikedrive.layers.weights import unknown_weight_modules
from spikedrive.models import create_model
from spikedrive.models.trevsnn import ReversibleColumns, TRevSNN, paper_parameter_count

TINY = (4, 8, 8, 8)


def _pair(T: int = 3, dtype: torch.dtype = torch.float64, **kw) -> tuple[TRevSNN, TRevSNN]:
    torch.manual_seed(0)
    rev = TRevSNN(TINY, T=T, num_classes=5, reversible=True, **kw).to(dtype)
    bptt = TRevSNN(TINY, T=T, num_classes=5, reversible=False, **kw).to(dtype)
    bptt.load_state_dict(rev.state_dict())
    # Move alpha away from 0.5 so the shortcut and inverse are exercised with uneven scales.
    with torch.no_grad():
        for m in (rev, bptt):
            for t, col in enumerate(m.columns):
                for k, a in enumerate(col.alpha):
                    a.copy_(torch.linspace(0.3, 1.7, a.shape[1], dtype=dtype).view_as(a) * (1 + 0.1 * (t + k)))
    return rev, bptt


def test_inverse_rebuilds_every_column_float64() -> None:
    rev, _ = _pair(T=4)
    x = rev.encode(torch.rand(2, 3, 32, 32, dtype=torch.float64))
    states, s = [], None
    with torch.no_grad():
        for col in rev.columns:
            s = col(x, s)
            states.append(s)
        cur = states[-1]
        for t in range(len(states) - 1, 0, -1):
            cur = rev.columns[t].inverse(x, cur)
            for k in range(4):
                torch.testing.assert_close(cur[k], states[t - 1][k], rtol=0, atol=1e-10)
    with pytest.raises(ValueError, match="first column has no previous"):
        rev.columns[0].inverse(x, states[0])


@pytest.mark.parametrize("event_input", [False, True])
def test_reversible_gradients_equal_plain_autograd(event_input: bool) -> None:
    rev, bptt = _pair(T=3, event_input=event_input)
    if event_input:
        img = (torch.rand(6, 2, 2, 16, 16, dtype=torch.float64) < 0.3).double()
    else:
        img = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    labels = torch.tensor([1, 3])
    grads = {}
    for name, m in (("rev", rev), ("bptt", bptt)):
        m.train()
        x = img.clone().requires_grad_()
        loss = multihead_loss(m(x), labels)
        loss.backward()
        grads[name] = (loss.detach(), x.grad, {n: p.grad for n, p in m.named_parameters()})
    torch.testing.assert_close(grads["rev"][0], grads["bptt"][0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grads["rev"][1], grads["bptt"][1], rtol=1e-7, atol=1e-10)
    assert grads["rev"][1].abs().sum() > 0
    for n, g in grads["bptt"][2].items():
        g_rev = grads["rev"][2][n]
        if g is None:  # first column's alpha multiplies a zero state: zero gradient
            assert g_rev is None or not g_rev.any(), n
            continue
        torch.testing.assert_close(g_rev, g, rtol=1e-7, atol=1e-10, msg=lambda m, n=n: f"{n}: {m}")
    # The backward's recomputation must not count the batch twice in the running statistics.
    for (n, b1), (_, b2) in zip(rev.named_buffers(), bptt.named_buffers()):
        torch.testing.assert_close(b1, b2, rtol=1e-12, atol=1e-12, msg=lambda m, n=n: f"{n}: {m}")


def test_gradcheck_reversible_function_with_identity_quant() -> None:
    # Quant's true derivative is 0 almost everywhere (the straight-through gradient is not the
    # derivative of round), so a finite-difference check can only test the reversible machinery
    # with Quant made the identity; the straight-through network is checked against plain autograd
    # above. BN stays in training mode (batch statistics): smooth, and the widest path.
    torch.manual_seed(1)
    net = TRevSNN((2, 2, 2, 2), T=3, num_classes=3, kernel_size=3, blocks_per_level=1,
                  quant_identity=True).double().train()
    x = torch.randn(2, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    params = list(net.columns.parameters())

    def f(x: torch.Tensor, *ps: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return ReversibleColumns.apply(net, x, *ps)

    # fast_mode: one random directional derivative per input (all column parameters and x).
    assert torch.autograd.gradcheck(f, (x, *params), eps=1e-6, atol=1e-5, rtol=1e-4, fast_mode=True)


def test_saved_bytes_flat_in_T_for_reversible_and_growing_for_bptt() -> None:
    img = torch.rand(2, 3, 32, 32)
    labels = torch.tensor([0, 1])
    measured = {}
    for reversible in (True, False):
        for T in (1, 4):
            torch.manual_seed(0)
            m = TRevSNN((8, 16, 16, 16), T=T, num_classes=4, reversible=reversible).train()
            measured[reversible, T] = saved_bytes_for_backward(
                lambda: multihead_loss(m(img), labels), exclude=list(m.parameters()))
    print("saved bytes (reversible, T):", measured)
    assert measured[True, 4] <= 1.2 * measured[True, 1]
    assert measured[False, 4] >= 2.5 * measured[False, 1]
    assert measured[False, 4] >= 4 * measured[True, 4]


def test_create_model_variants_shapes_and_state_dict_transfer() -> None:
    for name in ("trevsnn_tiny", "trevsnn_small", "trevsnn_dvs_tiny"):
        assert name in __import__("spikedrive").models.list_models()
    tiny = create_model("trevsnn_tiny", T=1, num_classes=7, reversible=False)
    assert isinstance(tiny, TRevSNN) and not tiny.reversible and tiny.channels == (64, 128, 256, 384)
    with torch.no_grad():
        assert tiny.eval()(torch.rand(1, 3, 32, 32)).shape == (1, 7)
    torch.manual_seed(0)
    rev = TRevSNN(TINY, T=2, num_classes=7, reversible=True)
    bptt = TRevSNN(TINY, T=2, num_classes=7, reversible=False)
    bptt.load_state_dict(rev.state_dict())
    img = torch.rand(2, 3, 32, 32)
    rev.eval(), bptt.eval()
    with torch.no_grad():
        out = rev(img)
        assert out.shape == (2, 7)
        torch.testing.assert_close(out, bptt(img))
    rev.train()
    assert rev(img).shape == (2, 2, 7)  # [heads, B, classes]
    dvs = create_model("trevsnn_dvs_tiny", T=2, num_classes=3)
    assert dvs.channels == (32, 64, 128, 256)
    assert dvs(torch.zeros(4, 2, 2, 16, 16)).shape == (1, 2, 3)  # last head only, 2 frames per stem
    with pytest.raises(ValueError, match=r"event input must be \[T_in, B, 2, H, W\] with T_in a multiple of T=2"):
        dvs(torch.zeros(3, 2, 2, 16, 16))
    with pytest.raises(ValueError, match=r"expected images \[B, 3, H, W\] with H and W multiples of 16, got shape \(2, 3, 20, 20\)"):
        rev(torch.zeros(2, 3, 20, 20))
    with pytest.raises(ValueError, match="channels must give the 4 level widths"):
        TRevSNN((4, 8, 8), T=2)
    assert unknown_weight_modules(rev) == [] and unknown_weight_modules(dvs) == []


def test_alpha_kept_away_from_zero() -> None:
    m = TRevSNN(TINY, T=2, num_classes=3)
    with torch.no_grad():
        m.columns[1].alpha[0].zero_()
        m.columns[1].alpha[1].fill_(-1e-5)
    m.eval()
    with torch.no_grad():
        m(torch.rand(1, 3, 16, 16))
    assert torch.all(m.columns[1].alpha[0] == 1e-3)
    assert torch.all(m.columns[1].alpha[1] == -1e-3)


def test_parameter_counts_next_to_paper() -> None:
    # Paper: tiny 15.2M, small 29.8M (METHODS: 32.33M for small with the auxiliary heads).
    counts = {}
    for name in ("trevsnn_tiny", "trevsnn_small"):
        with torch.device("meta"):  # shapes only: no memory, no initialisation
            m = create_model(name, num_classes=1000)
        total = sum(p.numel() for p in m.parameters())
        counts[name] = (total, paper_parameter_count(m))
        print(f"{name}: {total / 1e6:.3f}M with aux heads, {counts[name][1] / 1e6:.3f}M without")
    assert round(counts["trevsnn_small"][0] / 1e4) == 3233  # 32.33M, as METHODS.md reports
    assert abs(counts["trevsnn_tiny"][1] - 15.2e6) / 15.2e6 < 0.08
    assert abs(counts["trevsnn_small"][1] - 29.8e6) / 29.8e6 < 0.05


def test_multihead_loss_and_task() -> None:
    torch.manual_seed(0)
    out = torch.randn(4, 3, 5)
    labels = torch.tensor([0, 4, 2])
    ce = [torch.nn.functional.cross_entropy(out[i], labels) for i in range(4)]
    expected = ce[0] * 0.25 + ce[1] * 0.5 + ce[2] * 0.75 + ce[3] * 1.0 + ce[3]
    torch.testing.assert_close(multihead_loss(out, labels), expected)
    with pytest.raises(ValueError, match=r"outputs must be \[heads, B, classes\] with B = 3 labels, got shape \(3, 5\)"):
        multihead_loss(out[0], labels)

    task = MultiHeadClassificationTask(label_smoothing=0.1)
    m = TRevSNN(TINY, T=2, num_classes=5)
    batch = (torch.rand(2, 3, 16, 16), torch.tensor([1, 2]))
    m.train()
    loss, logs = task.training_loss(m, batch)
    assert loss.dim() == 0 and loss.requires_grad and 0.0 <= float(logs["accuracy"]) <= 1.0
    m.eval()
    with torch.no_grad():
        assert task.forward(m, batch).shape == (2, 5)
    metrics = task.new_metrics()
    metrics.update(torch.tensor([[0.0, 1.0], [1.0, 0.0]]), (None, torch.tensor([1, 1])))
    metrics.reduce(lambda t: t)
    assert metrics.compute()["accuracy"] == 0.5
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\), got 1.5"):
        MultiHeadClassificationTask(label_smoothing=1.5)


def test_quant_fires_at_half_and_passes_gradient_on_unit_interval() -> None:
    # The authors' Quant is floor(clamp(x, 0, 1) + 0.5): x = 0.5 fires (round-half-to-even would
    # give 0); straight-through gradient on [0, 1], boundaries included, zero outside.
    from spikedrive.models.trevsnn_blocks import Quant

    x = torch.tensor([-0.3, 0.0, 0.25, 0.4999, 0.5, 0.75, 1.0, 1.5], dtype=torch.float64, requires_grad=True)
    expected = torch.floor(torch.clamp(x.detach(), 0, 1) + 0.5)
    torch.testing.assert_close(expected, torch.tensor([0, 0, 0, 0, 1, 1, 1, 1], dtype=torch.float64))
    q = Quant()
    out = q(x)
    torch.testing.assert_close(out, expected)
    (out * torch.arange(1.0, 9.0, dtype=torch.float64)).sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([0, 2, 3, 4, 5, 6, 7, 0], dtype=torch.float64))
    with torch.no_grad():  # evaluation path (no graph) gives the same spikes
        torch.testing.assert_close(q(x), expected)
