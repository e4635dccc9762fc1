"""Spike-Driven Transformer v1 and v2 (Meta-SpikeFormer): parameter counts, attention arithmetic,
re-parameterised convs, spike-driven checks and energy, shapes and errors."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch

import spikedrive.models.sdt  # noqa: F401  (registers the SDT models)
import spikedrive.models.sdt_v2  # noqa: F401
from spikedrive.analysis import NotSpikeDrivenError, assert_spike_driven, energy_report
from spikedrive.layers.sdsa import RepConv, SpikeDrivenSelfAttention, sdt_lif
from spikedrive.layers.sdt_blocks import DepthwisePointwise
from spikedrive.layers.spike_products import SpikeLinearAttention
from spikedrive.models.registry import create_model, model_default_input
from spikedrive.models.sdt import SpikeDrivenTransformer
from spikedrive.models.sdt_v2 import MetaSpikeFormer

#: name -> parameters in millions from the papers (v1: NeurIPS 2023 tables; v2: the release's
#: sizes as METHODS.md counts them), at the models' default classes (1000 / 10 / 11).
PAPER_PARAMS_M = {
    "sdt_8_384": 16.81, "sdt_8_512": 29.68, "sdt_8_768": 66.34, "sdt_cifar_2_512": 10.28, "sdt_dvs_2_256": 2.57,
    "sdt_v2_15m": 15.11, "sdt_v2_31m": 31.33, "sdt_v2_55m": 55.35, "sdt_v2_124m": 123.74,
}


def _count_m(name: str) -> float:
    with torch.device("meta"):  # no memory, no init cost: the 124M model builds in milliseconds
        model = create_model(name)
    return sum(p.numel() for p in model.parameters()) / 1e6


def test_parameter_counts_match_the_papers_within_2_percent(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [(name, _count_m(name), paper) for name, paper in PAPER_PARAMS_M.items()]
    with capsys.disabled():
        print("\n| model | params (ours) | paper | diff |\n|---|---|---|---|")
        for name, ours, paper in rows:
            print(f"| {name} | {ours:.2f}M | {paper:.2f}M | {100 * (ours - paper) / paper:+.2f}% |")
    for name, ours, paper in rows:
        assert abs(ours - paper) / paper < 0.02, f"{name}: {ours:.3f}M vs paper {paper}M"


def _binary(*shape: int, p: float = 0.4, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g) < p).float()


def test_spike_linear_attention_equals_softmax_free_attention_and_counts_accumulates() -> None:
    q, k, v = _binary(2, 1, 2, 5, 3, seed=1), _binary(2, 1, 2, 5, 3, seed=2), _binary(2, 1, 2, 5, 3, seed=3)
    out = SpikeLinearAttention(scale=0.125)(q, k, v)
    # Reference: (Q Kᵀ) V with explicit sums (quadratic order, same result).
    ref = torch.zeros_like(out)
    for idx in itertools.product(*map(range, q.shape[:3])):
        a = q[idx] @ k[idx].T
        ref[idx] = a @ v[idx] * 0.125
    torch.testing.assert_close(out, ref)
    # Accumulates: for K^T V, each pair (k[n, c] = 1, v[n, m] = 1); then one add of d entries per Q spike.
    kv_pairs = sum(float(k[i][n].sum() * v[i][n].sum()) for i in itertools.product(*map(range, q.shape[:3])) for n in range(5))
    assert SpikeLinearAttention().count_sops(q, k, v) == pytest.approx(kv_pairs + float(q.sum()) * 3)
    assert SpikeLinearAttention().count_macs(q, k, v) == 2 * (1 * 2) * 5 * 3 * 3


def test_spike_linear_attention_refuses_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match=r"SpikeLinearAttention: q, k, v must share one shape"):
        SpikeLinearAttention()(torch.zeros(1, 1, 1, 4, 2), torch.zeros(1, 1, 1, 4, 2), torch.zeros(1, 1, 1, 3, 2))


def _attention_internals(attn: SpikeDrivenSelfAttention, x: torch.Tensor) -> dict[str, torch.Tensor]:
    seen: dict[str, torch.Tensor] = {}
    hooks = [getattr(attn, n)[-1].register_forward_hook(lambda m, a, o, n=n: seen.__setitem__(n, o)) for n in "qkv"]
    hooks.append(attn.attn_lif.register_forward_hook(lambda m, a, o: seen.__setitem__("mask", o)))
    hooks.append(attn.proj.register_forward_pre_hook(lambda m, a: seen.__setitem__("out", a[0])))
    attn(x)
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize("variant", ["code", "paper"])
def test_sdsa_variants_compute_their_formulas_from_q_k_v(variant: str) -> None:
    torch.manual_seed(0)
    attn = SpikeDrivenSelfAttention(16, num_heads=4, variant=variant).eval()
    x = torch.randn(3, 2, 6, 16) * 3  # [T, B, N, C] membrane
    s = _attention_internals(attn, x)
    q, k, v = s["q"], s["k"], s["v"]
    for t in (q, k, v):
        assert set(t.unique().tolist()) <= {0.0, 1.0}
    lif = sdt_lif(0.5)
    if variant == "code":
        # Q ⊙ SN(sum over tokens of K ⊙ V): one value per channel, broadcast over tokens.
        mask = lif((k * v).sum(dim=2, keepdim=True))
        expected = q * mask
    else:
        # SN(sum over each head's channels of Q ⊙ K) ⊙ V: one value per token and head.
        per_head = (q * k).view(3, 2, 6, 4, 4).sum(-1, keepdim=True)
        expected = (lif(per_head) * v.view(3, 2, 6, 4, 4)).view(3, 2, 6, 16)
    torch.testing.assert_close(s["out"], expected)


def test_sdsa_is_linear_in_tokens_a_permutation_of_tokens_permutes_the_output() -> None:
    torch.manual_seed(0)
    attn = SpikeDrivenSelfAttention(16, num_heads=4).eval()
    x = torch.randn(2, 1, 7, 16) * 3
    perm = torch.randperm(7)
    torch.testing.assert_close(attn(x)[:, :, perm], attn(x[:, :, perm]))


def test_sdsa_refuses_heads_that_do_not_divide_the_width_and_bad_variants() -> None:
    with pytest.raises(ValueError, match=r"SpikeDrivenSelfAttention: dim must be divisible by num_heads, got dim=10, num_heads=4"):
        SpikeDrivenSelfAttention(10, num_heads=4)
    with pytest.raises(ValueError, match=r"variant must be 'code' or 'paper', got 'xor'"):
        SpikeDrivenSelfAttention(16, variant="xor")


def _randomise_bn(module: torch.nn.Module) -> None:
    g = torch.Generator().manual_seed(5)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(m.num_features, generator=g))
            m.bias.data.copy_(torch.randn(m.num_features, generator=g))


def test_repconv_folds_into_one_3x3_conv_equal_to_its_branch_in_eval() -> None:
    torch.manual_seed(0)
    rep = RepConv(6, 5)
    _randomise_bn(rep)
    rep.eval()
    x = _binary(2, 3, 6, 7, 9)
    branch = rep._branch(x.flatten(0, 1)).unflatten(0, (2, 3))
    torch.testing.assert_close(rep(x), branch, rtol=1e-4, atol=1e-4)
    assert rep.fused.module.weight.shape == (5, 6, 3, 3)
    # The fused conv is a plain tensor, not a second copy of the parameters.
    assert sum(p.numel() for p in rep.parameters()) == 6 * 6 + 9 * 6 + 6 * 5 + 2 * 6 + 2 * 5


def test_repconv_border_is_the_bn_image_of_zero_so_the_branch_equals_zero_padding() -> None:
    torch.manual_seed(0)
    rep = RepConv(4, 4)
    _randomise_bn(rep)
    rep.eval()
    x = _binary(5, 4, 6, 6)
    a1 = rep.bn1.weight / torch.sqrt(rep.bn1.running_var + rep.bn1.eps)
    b1 = rep.bn1.bias - rep.bn1.running_mean * a1
    y = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (1, 1, 1, 1)), rep.pw1.weight)
    y = y * a1.view(1, -1, 1, 1) + b1.view(1, -1, 1, 1)
    ref = rep.bn2(rep.pw2(rep.dw(y)))
    torch.testing.assert_close(rep._branch(x), ref, rtol=1e-5, atol=1e-5)


def test_depthwise_pointwise_fused_equals_the_pair() -> None:
    torch.manual_seed(0)
    pair = DepthwisePointwise(4, 3, kernel_size=7)
    x = _binary(2, 2, 4, 9, 9)
    unfused = pair.pw(pair.dw(x))
    torch.testing.assert_close(pair.eval()(x), unfused, rtol=1e-5, atol=1e-5)


def _trained_bn(model: torch.nn.Module, x: torch.Tensor) -> torch.nn.Module:
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(x)
    return model


@pytest.mark.parametrize("name,kwargs,shape", [
    ("sdt_tiny", {}, (2, 3, 64, 64)),
    ("sdt_tiny", {"variant": "paper"}, (2, 3, 32, 32)),
    ("sdt_tiny", {"in_channels": 2, "pooling": "0111", "erode": True}, (3, 2, 2, 32, 32)),
    ("sdt_v2_tiny", {}, (2, 3, 64, 64)),
])
def test_each_family_is_spike_driven_in_eval_but_for_the_encoding_layer(name: str, kwargs: dict, shape: tuple) -> None:
    torch.manual_seed(0)
    x = torch.rand(*shape) if len(shape) == 4 else _binary(*shape, p=0.3)
    model = _trained_bn(create_model(name, **kwargs), x)
    summary = assert_spike_driven(model, x, batch_dim=0 if x.dim() == 4 else 1)
    assert len(summary.encoding) == 1
    # Every attention product is among the checked layers.
    products = [n for n, m in model.named_modules() if getattr(m, "spike_inputs", False)]
    assert products and set(products) <= set(summary.checked)


def test_v2_without_folding_is_not_spike_driven_and_the_check_names_the_inner_convs() -> None:
    torch.manual_seed(0)
    x = torch.rand(1, 3, 32, 32)
    model = _trained_bn(create_model("sdt_v2_tiny", fuse=False), x)
    with pytest.raises(NotSpikeDrivenError, match=r"stage3\.1\.attn\.q\.0\.dw"):
        assert_spike_driven(model, x)


@pytest.mark.parametrize("name", ["sdt_tiny", "sdt_v2_tiny"])
def test_energy_report_counts_attention_products_and_beats_the_ann(name: str) -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32)
    model = _trained_bn(create_model(name), x)
    report = energy_report(model, x)
    products = [row for row in report.layers if row.kind.startswith("Spike")]
    assert products and all(row.counted and row.binary and row.sops >= 0 for row in products)
    assert 0 < report.snn_energy_pj < report.ann_energy_pj


@pytest.mark.parametrize("name,T", [("sdt_tiny", 2), ("sdt_v2_tiny", 1)])
def test_images_and_sequences_give_logits_and_gradients(name: str, T: int) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=5, T=T)
    out = model(torch.rand(2, 3, 64, 64))
    assert out.shape == (2, 5)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    seq = model(torch.rand(3, 2, 3, 64, 64))
    assert seq.shape == (2, 5) and torch.isfinite(seq).all()


@pytest.mark.parametrize("name", ["sdt_tiny", "sdt_v2_tiny"])
def test_direct_encoding_runs_the_encoding_conv_once_with_the_same_result(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, T=3)
    img = torch.rand(2, 3, 32, 32)
    repeated = img.unsqueeze(0).repeat(3, 1, 1, 1, 1)  # a real copy: the stride-0 shortcut is off
    calls: list[tuple[int, ...]] = []
    encoding = next(m for m in model.modules() if getattr(m, "encoding", False))
    encoding.register_forward_hook(lambda m, a, o: calls.append(tuple(a[0].shape)))
    for mode in ("eval", "train"):  # train: BN's batch statistics over T copies equal those over one
        getattr(model, mode)()
        # Each input on its own copy: a training pass moves the running statistics (which v2's
        # RepConv border reads even while training).
        once, every = copy.deepcopy(model)(img), copy.deepcopy(model)(repeated)
        torch.testing.assert_close(once, every)
    assert calls == [(1, 2, 3, 32, 32), (3, 2, 3, 32, 32)] * 2


def test_stem_keeps_channels_last_memory_through_the_encoded_steps_and_their_gradient() -> None:
    # The direct-encoded steps are one stride-0 expansion: the first neuron and max-pool must see
    # (and the encoding BN's backward must get) channels-last tensors; an NCHW max-pool or a
    # mixed-layout BN backward is several times slower on CPU. Same values as the NCHW path.
    torch.manual_seed(0)
    model = create_model("sdt_tiny", T=3, pooling="1111")
    img = torch.rand(2, 3, 32, 32)
    nchw = copy.deepcopy(model)
    seen: dict[str, torch.Tensor] = {}

    def keep_pool_input(module: torch.nn.Module, args: tuple, out: torch.Tensor) -> None:
        seen["pool_in"] = args[0]  # (a hook that returned a tensor would replace the output)

    def watch_gradient(module: torch.nn.Module, args: tuple, out: torch.Tensor) -> None:
        out.register_hook(lambda g: seen.setdefault("bn_grad", g))

    model.stem.stages[0][-1].register_forward_hook(keep_pool_input)
    model.stem.encode[1].register_forward_hook(watch_gradient)
    logits = model(img)
    logits.sum().backward()
    channels_last = torch.channels_last
    assert seen["pool_in"].flatten(0, 1).is_contiguous(memory_format=channels_last)
    assert seen["bn_grad"].flatten(0, 1).is_contiguous(memory_format=channels_last)
    # The same network in NCHW memory, on a repeated (not expanded) input: the same logits and
    # stem gradient.
    nchw.to(memory_format=torch.contiguous_format)
    logits_nchw = nchw(img.unsqueeze(0).repeat(3, 1, 1, 1, 1))
    logits_nchw.sum().backward()
    torch.testing.assert_close(logits, logits_nchw)
    torch.testing.assert_close(model.stem.encode[0].module.weight.grad, nchw.stem.encode[0].module.weight.grad,
                               rtol=1e-4, atol=1e-6)

    lif = sdt_lif()
    step = torch.randn(8, 8, 5, 5).contiguous(memory_format=channels_last)
    x = step[None].expand(3, -1, -1, -1, -1)  # [3, 8, 8, 5, 5], stride 0 over time
    out = lif(x)
    assert out[0].is_contiguous(memory_format=channels_last)
    assert torch.equal(out, sdt_lif()(x.contiguous()))


def test_wrong_input_shapes_are_refused_naming_the_expected_layout() -> None:
    with pytest.raises(ValueError, match=r"SpikeDrivenTransformer: expected \[B, 3, H, W\] or \[T, B, 3, H, W\], got shape \(2, 1, 8, 8\)"):
        SpikeDrivenTransformer(1, 16, 10, 2, pooling="0000")(torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match=r"MetaSpikeFormer: expected \[B, 3, H, W\]"):
        MetaSpikeFormer((4, 8, 8, 8), 10, 1, num_heads=2)(torch.rand(1, 2, 3, 16, 16, 1))
    with pytest.raises(ValueError, match=r"pooling must be 4 characters of '0'/'1'"):
        SpikeDrivenTransformer(1, 16, pooling="11")


def test_models_name_their_data() -> None:
    assert model_default_input("sdt_8_384").dataset == "imagenet"
    assert model_default_input("sdt_cifar_2_512").dataset == "cifar10"
    assert model_default_input("sdt_dvs_2_256").dataset == "gesture"
    assert model_default_input("sdt_v2_15m").dataset == "imagenet"



def test_event_frames_without_a_marked_encoding_layer_are_charged_accumulates_only() -> None:
    torch.manual_seed(0)
    frames = _binary(3, 2, 2, 32, 32, p=0.2)
    model = _trained_bn(create_model("sdt_tiny", in_channels=2, pooling="0111", mark_encoding=False), frames)
    summary = assert_spike_driven(model, frames, batch_dim=1)
    assert summary.encoding == () and "stem.encode.0" in summary.checked
    report = energy_report(model, frames, batch_dim=1)
    first = next(row for row in report.layers if row.name == "stem.encode.0")
    assert not first.encoding and first.binary and first.sops == pytest.approx(first.input_rate * first.macs)
    assert report.encoding_macs == 0


def test_attn_scale_reaches_every_v2_attention_and_a_silent_attention_explodes_gradients() -> None:
    model = create_model("sdt_v2_tiny", attn_scale=2.0)
    scales = {m.scale for m in model.modules() if isinstance(m, SpikeLinearAttention)}
    assert scales == {2.0}
    # The release's 0.125 on 2 x 2 tokens with 8 channels a head: the attention neuron never
    # fires, the BNs behind it normalise a constant and the stem's gradient blows up.
    torch.manual_seed(0)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    grads = {}
    for scale in (0.125, 2.0):
        torch.manual_seed(0)
        m = create_model("sdt_v2_tiny", T=2, num_heads=2, attn_scale=scale)
        torch.nn.functional.cross_entropy(m(x), y).backward()
        grads[scale] = float(m.stage1[0].body[0].module.weight.grad.norm())
    assert grads[2.0] < 10 < 1e3 * grads[2.0] < grads[0.125]


def test_v2_stem_stride_one_keeps_4x4_tokens_at_32_px_with_the_same_parameters() -> None:
    # Downsampling 16 leaves 2 x 2 tokens from 32 px (the release's 14 x 14 needs 224 px);
    # stem stride 1 gives 4 x 4 and changes no weight shape.
    torch.manual_seed(0)
    grids = {}
    for stride in (2, 1):
        m = create_model("sdt_v2_tiny", T=1, num_heads=2, attn_scale=2.0, stem_stride=stride)
        seen = []
        m.stage3.register_forward_hook(lambda mod, i, out: seen.append(tuple(out.shape[-2:])))
        assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)
        grids[stride] = (seen[0], sum(p.numel() for p in m.parameters()))
    assert grids[2][0] == (2, 2) and grids[1][0] == (4, 4)
    assert grids[1][1] == grids[2][1]
    with pytest.raises(ValueError, match=r"MetaSpikeFormer: stem_stride must be 1 or 2, got 3"):
        MetaSpikeFormer((16, 32, 64, 64), 10, stem_stride=3)
