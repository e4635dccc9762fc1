"""TA, MA and ASA modules against plain reference computations written here (loops, no reuse of
the modules' helpers), frame dropping that really skips frames, and gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spikedrive.layers import AdvanceSpatialAttention, MultiDimensionalAttention, TemporalAttention


def _mlp_ref(v: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    return w2 @ torch.clamp(w1 @ v, min=0)


def test_temporal_attention_matches_reference() -> None:
    torch.manual_seed(0)
    T, B = 6, 2
    ta = TemporalAttention(T, reduction=2)
    x = torch.randn(T, B, 3, 4, 4)
    y = ta(x)
    for b in range(B):
        s = torch.stack([x[t, b].mean() for t in range(T)])
        h = torch.clamp(ta.fc1.weight @ s + ta.fc1.bias, min=0)
        d = torch.sigmoid(ta.fc2.weight @ h + ta.fc2.bias)
        for t in range(T):
            torch.testing.assert_close(y[t, b], d[t] * x[t, b])
    assert ta.last_skipped == 0


def test_temporal_attention_on_fc_sequences() -> None:
    ta = TemporalAttention(4, reduction=4)
    assert ta.fc1.out_features == 1
    x = torch.randn(4, 3, 5)
    d = ta.scores(x)  # [T, B]
    torch.testing.assert_close(ta(x), x * d[..., None])


def _forced_scores(ta: TemporalAttention, low: list[int]) -> None:
    """Make frames ``low`` score sigmoid(-10) and the others sigmoid(10), whatever the input."""
    with torch.no_grad():
        ta.fc1.weight.zero_()
        ta.fc1.bias.fill_(1.0)
        ta.fc2.weight.zero_()
        ta.fc2.bias.fill_(10.0)
        ta.fc2.bias[low] = -10.0


def test_frame_dropping_skips_computation_downstream() -> None:
    T = 8
    ta = TemporalAttention(T, reduction=2, drop_threshold=0.5)
    _forced_scores(ta, [1, 4, 5])
    conv = nn.Conv2d(3, 3, 3, padding=1)
    seen: list[int] = []
    conv.register_forward_hook(lambda m, a, o: seen.append(a[0].shape[0]))
    x = torch.randn(T, 2, 3, 4, 4)
    ta.eval()
    y = ta(x)
    conv(y.flatten(0, 1))
    assert y.shape[0] == 5 and ta.last_skipped == 3
    assert ta.last_kept.tolist() == [0, 2, 3, 6, 7]
    assert seen == [5 * 2]  # the downstream layer computed 5 frames of 2 samples, not 8
    torch.testing.assert_close(y, x[[0, 2, 3, 6, 7]] * torch.sigmoid(torch.tensor(10.0)))
    assert (ta.skipped_total, ta.frames_total) == (3, 8)
    ta.train()  # training never drops
    assert ta(x).shape[0] == T and ta.last_skipped == 0


def test_frame_dropping_keeps_frames_another_sample_needs_and_never_empties() -> None:
    T = 4
    ta = TemporalAttention(T, drop_threshold=0.9).eval()
    _forced_scores(ta, [0, 1, 2, 3])
    y = ta(torch.randn(T, 1, 2))
    assert y.shape[0] == 1 and ta.last_skipped == 3  # all below: the best frame is kept
    # Downstream TA given kept indices scores them with skipped frames' squeeze set to 0.
    ta2 = TemporalAttention(T, reduction=2)
    x = torch.randn(2, 3, 5)
    frames = torch.tensor([1, 3])
    full = torch.zeros(T, 3, 5)
    full[frames] = x
    torch.testing.assert_close(ta2(x, frames), ta2(full)[frames])


def test_temporal_attention_errors_name_the_argument() -> None:
    with pytest.raises(ValueError, match="TemporalAttention: drop_threshold must be None or in \\[0, 1\\], got 2"):
        TemporalAttention(4, drop_threshold=2)
    with pytest.raises(ValueError, match="TemporalAttention: expected T = 4 time steps in dim 0, got shape \\(3, 2, 5\\)"):
        TemporalAttention(4)(torch.zeros(3, 2, 5))
    with pytest.raises(ValueError, match="TemporalAttention: reduction must be a positive integer, got 0"):
        TemporalAttention(4, reduction=0)


def test_multidimensional_attention_matches_reference() -> None:
    torch.manual_seed(1)
    T, B, C, H, W = 5, 2, 8, 4, 4
    ma = MultiDimensionalAttention(T, C, reduction_t=2, reduction_c=4)
    x = torch.randn(T, B, C, H, W)
    y = ma(x)
    wt1, wt2 = ma.temporal[0].weight, ma.temporal[2].weight
    wc1, wc2 = ma.channel[0].weight, ma.channel[2].weight
    ref = torch.empty_like(x)
    for b in range(B):
        xb = x[:, b]  # [T, C, H, W]
        avg = torch.stack([xb[t].mean() for t in range(T)])
        mx = torch.stack([xb[t].max() for t in range(T)])
        mt = torch.sigmoid(_mlp_ref(avg, wt1, wt2) + _mlp_ref(mx, wt1, wt2))
        x1 = xb * mt[:, None, None, None]
        avg_c = torch.stack([x1[:, c].mean() for c in range(C)])
        max_c = torch.stack([x1[:, c].max() for c in range(C)])
        mc = torch.sigmoid(_mlp_ref(avg_c, wc1, wc2) + _mlp_ref(max_c, wc1, wc2))
        x2 = x1 * mc[None, :, None, None]
        pooled = torch.stack([x2.mean(dim=(0, 1)), x2.amax(dim=(0, 1))])[None]  # [1, 2, H, W]
        ms = torch.sigmoid(nn.functional.conv2d(pooled, ma.spatial.weight, padding=1))[0, 0]
        ref[:, b] = torch.clamp(x2 * ms, min=0)
    torch.testing.assert_close(y, ref)


def test_multidimensional_attention_subsets_and_fc() -> None:
    torch.manual_seed(2)
    x = torch.randn(4, 2, 6, 3, 3)
    only_c = MultiDimensionalAttention(4, 6, temporal=False, spatial=False, relu=False)
    assert only_c.temporal is None and only_c.spatial is None
    torch.testing.assert_close(only_c(x), x * only_c.channel_weights(x)[None, :, :, None, None])
    fc = MultiDimensionalAttention(4, 10, channel=False, spatial=False, relu=False)
    seq = torch.randn(4, 2, 10)
    torch.testing.assert_close(fc(seq), seq * fc.temporal_weights(seq).t()[..., None])
    with pytest.raises(ValueError, match="channel and spatial attention need \\[T, B, C, H, W\\], got shape \\(4, 2, 10\\)"):
        MultiDimensionalAttention(4, 10)(seq)


def test_asa_matches_reference_per_sample() -> None:
    torch.manual_seed(3)
    T, B, C, H, W = 4, 2, 6, 3, 3
    asa = AdvanceSpatialAttention(T, C, reduction=2, split=0.5)
    x = torch.randn(T, B, C, H, W)
    y = asa(x)
    w1, w2 = asa.score_mlp[0].weight, asa.score_mlp[2].weight
    a, bb = asa.a.item(), asa.b.item()
    ref = torch.empty_like(x)
    for b in range(B):
        avg = x[:, b].mean(dim=(2, 3))  # [T, C]
        mx = x[:, b].amax(dim=(2, 3))
        f = 0.5 * (avg + mx) + a * avg + bb * mx
        m = torch.stack([_mlp_ref(f[:, c], w1, w2) for c in range(C)], dim=1)  # [T, C]
        important = torch.zeros(T, C, dtype=torch.bool)
        for t in range(T):
            for c in range(C):
                in_c = c in m[t].topk(3).indices.tolist()   # K_c = int(0.5 * 6)
                in_t = t in m[:, c].topk(2).indices.tolist()  # K_t = int(0.5 * 4)
                important[t, c] = in_c != in_t                # XOR, as released
        for t in range(T):
            xi = x[t, b] * important[t, :, None, None]
            xs = x[t, b] * (~important[t, :, None, None])
            p1 = torch.stack([xi.mean(0) / 0.5, xi.amax(0)])[None]
            p2 = torch.stack([xs.mean(0) / 0.5, xs.amax(0)])[None]
            a1 = torch.sigmoid(nn.functional.conv2d(p1, asa.important_conv.weight, padding=1))[0]
            a2 = torch.sigmoid(nn.functional.conv2d(p2, asa.sub_conv.weight, padding=1))[0]
            ref[t, b] = a1 * xi + a2 * xs
    torch.testing.assert_close(y, ref)


def test_asa_mask_is_per_sample_not_batch_wide() -> None:
    torch.manual_seed(4)
    asa = AdvanceSpatialAttention(4, 6, reduction=2)
    x = torch.randn(4, 3, 6, 3, 3)
    together = asa(x)
    alone = torch.cat([asa(x[:, i:i + 1]) for i in range(3)], dim=1)
    torch.testing.assert_close(together, alone)


def test_asa_scores_receive_gradient_through_the_split() -> None:
    torch.manual_seed(5)
    asa = AdvanceSpatialAttention(4, 6, reduction=1)
    x = torch.randn(4, 2, 6, 3, 3, requires_grad=True)
    asa(x).square().sum().backward()
    for name in ("a", "b", "score_mlp.0.weight", "score_mlp.2.weight", "important_conv.weight", "sub_conv.weight"):
        g = dict(asa.named_parameters())[name].grad
        assert g is not None and g.abs().sum() > 0, name
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_gradients_flow_through_ta_and_ma() -> None:
    torch.manual_seed(6)
    for module in (TemporalAttention(4, 1), MultiDimensionalAttention(4, 6, 1, 1)):
        x = torch.randn(4, 2, 6, 3, 3, requires_grad=True)
        module(x).square().sum().backward()
        assert x.grad is not None and x.grad.abs().sum() > 0
        # Every parameter gets a gradient (a single dead ReLU unit may give one row zeros).
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters()), type(module).__name__


def test_asa_errors_name_the_argument() -> None:
    with pytest.raises(ValueError, match="AdvanceSpatialAttention: split must be in \\(0, 1\\) .*got 1.0"):
        AdvanceSpatialAttention(4, 6, split=1.0)
    with pytest.raises(ValueError, match="AdvanceSpatialAttention: combine must be one of"):
        AdvanceSpatialAttention(4, 6, combine="nand")
