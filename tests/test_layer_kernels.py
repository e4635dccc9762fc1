"""The compiled CPU layer kernels (channels-last batch norm, max-pool) against PyTorch's own."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import spikedrive.layers.cpu_kernels as cpu_kernels
from spikedrive.layers import BatchNorm2d, Conv2d, MaxPool2d
from spikedrive.layers.cpu_kernels import (
    DepthwiseConv2d, MaxPool2dChannelsLast, batch_norm_rows, max_pool_channels_last,
)
from spikedrive.layers.sdsa import BatchNormLast
from spikedrive.neurons.kernels.cpu import cpu_kernel_error, cpu_ops

pytestmark = pytest.mark.skipif(cpu_kernel_error() is not None,
                                reason="the fused CPU kernels cannot be built here (the layers then run PyTorch's)")


def _twin_bns(C: int, dtype: torch.dtype = torch.float32, **kwargs) -> tuple[nn.BatchNorm1d, nn.BatchNorm1d]:
    first = nn.BatchNorm1d(C, **kwargs).to(dtype)
    if first.affine:
        with torch.no_grad():
            first.weight.normal_()
            first.bias.normal_()
    second = nn.BatchNorm1d(C, **kwargs).to(dtype)
    second.load_state_dict(first.state_dict())
    return first, second


def _bn_pair(x: torch.Tensor, grad: torch.Tensor, ours: nn.BatchNorm1d, reference: nn.BatchNorm1d):
    a = x.detach().clone().requires_grad_()
    b = x.detach().clone().requires_grad_()
    y_ours = batch_norm_rows(ours, a)
    y_ref = reference(b)
    y_ours.backward(grad)
    y_ref.backward(grad)
    return (y_ours, a.grad), (y_ref, b.grad)


@pytest.mark.parametrize("shape", [(512, 384), (300, 37), (5, 1536), (2, 16), (1000, 3)])
def test_batch_norm_rows_matches_pytorch_in_float64(shape):
    torch.manual_seed(0)
    ours, ref = _twin_bns(shape[1], torch.float64)
    x = torch.randn(*shape, dtype=torch.float64) * 3 + 1
    grad = torch.randn(*shape, dtype=torch.float64)
    (y, gx), (y_ref, gx_ref) = _bn_pair(x, grad, ours, ref)
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gx, gx_ref, rtol=1e-11, atol=1e-11)
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad, rtol=1e-11, atol=1e-11)
    torch.testing.assert_close(ours.bias.grad, ref.bias.grad, rtol=1e-11, atol=1e-11)
    torch.testing.assert_close(ours.running_mean, ref.running_mean, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ours.running_var, ref.running_var, rtol=1e-12, atol=1e-12)
    assert ours.num_batches_tracked.item() == ref.num_batches_tracked.item() == 1


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_batch_norm_rows_matches_pytorch_in_float32_and_bfloat16(dtype):
    torch.manual_seed(1)
    ours, ref = _twin_bns(96)  # float32 parameters beside a bfloat16 input, as under autocast
    x = (torch.randn(4096, 96) * 2 - 0.5).to(dtype)
    grad = torch.randn(4096, 96).to(dtype)
    (y, gx), (y_ref, gx_ref) = _bn_pair(x, grad, ours, ref)
    assert y.dtype == gx.dtype == dtype and ours.weight.grad.dtype == torch.float32
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1.6e-2, atol=1e-2)
    torch.testing.assert_close(y, y_ref, **tol)
    torch.testing.assert_close(gx, gx_ref, **tol)
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(ours.bias.grad, ref.bias.grad, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(ours.running_var, ref.running_var, rtol=1e-5, atol=1e-6)


def test_batch_norm_rows_gradients_by_finite_differences():
    torch.manual_seed(2)
    x = torch.randn(7, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(5, dtype=torch.float64, requires_grad=True)
    b = torch.randn(5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *t: cpu_kernels._BatchNormRows.apply(*t, 1e-5)[0], (x, w, b))


@pytest.mark.parametrize("kwargs", [dict(momentum=None), dict(affine=False), dict(track_running_stats=False)])
def test_batch_norm_rows_follows_every_batch_norm_mode(kwargs):
    torch.manual_seed(3)
    ours, ref = _twin_bns(12, **kwargs)
    for _ in range(3):  # momentum=None averages over the batches seen
        x, grad = torch.randn(40, 12) * 2 + 1, torch.randn(40, 12)
        (y, gx), (y_ref, gx_ref) = _bn_pair(x, grad, ours, ref)
        torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(gx, gx_ref, rtol=1e-5, atol=1e-5)
    for name, buffer in ref.named_buffers():
        torch.testing.assert_close(dict(ours.named_buffers())[name], buffer, rtol=1e-5, atol=1e-6)
    ours.eval(), ref.eval()
    x = torch.randn(9, 12)
    torch.testing.assert_close(batch_norm_rows(ours, x), ref(x), rtol=1e-6, atol=1e-6)


def test_batch_norm_rows_threads_do_not_change_the_result():
    torch.manual_seed(4)
    x = torch.randn(3000, 40)
    ops, threads = cpu_ops(), torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = ops.bn_last_forward(x, None, None, 1e-5)
        torch.set_num_threads(2)
        two = ops.bn_last_forward(x, None, None, 1e-5)
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(one, two):
        assert torch.equal(a, b)


def test_batch_norm_rows_leaves_other_shapes_to_the_module():
    with pytest.raises(RuntimeError, match="running_mean should contain 2 elements not 8"):
        batch_norm_rows(nn.BatchNorm1d(8), torch.randn(4, 2, 8))  # [N, C, L] to BatchNorm1d: C = 2


def test_time_distributed_batch_norm_channels_last_equals_nchw():
    torch.manual_seed(5)
    ours, ref = BatchNorm2d(6), BatchNorm2d(6)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(3, 2, 6, 5, 4)
    cl = x.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3).requires_grad_()  # channels-last steps
    plain = x.clone().requires_grad_()
    y, y_ref = ours(cl), ref(plain)
    assert y.permute(0, 1, 3, 4, 2).is_contiguous()  # stays channels-last
    grad = torch.randn_like(y_ref)
    y.backward(grad)
    y_ref.backward(grad)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(cl.grad, plain.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours.module.running_var, ref.module.running_var)


def test_batch_norm_last_uses_the_kernel(monkeypatch):
    calls = []
    real = cpu_kernels._BatchNormRows.apply
    monkeypatch.setattr(cpu_kernels._BatchNormRows, "apply", lambda *a: calls.append(1) or real(*a))
    BatchNormLast(8)(torch.randn(2, 3, 5, 8))
    assert calls


def _pool_input(dtype: torch.dtype, binary: bool) -> torch.Tensor:
    x = torch.randn(3, 20, 13, 11)
    x = (x > 0.6).to(dtype) if binary else x.to(dtype)
    if not binary:
        x[0, 0, 0, 0] = float("nan")
        x[1, 2, 5, 5] = float("-inf")
    return x.contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("geometry", [(3, 2, 1), (3, 1, 1), (2, 2, 0), (5, 1, 2), (3, 3, 0)])
@pytest.mark.parametrize("binary", [True, False])
def test_max_pool_channels_last_is_bit_identical_to_pytorch(dtype, geometry, binary):
    torch.manual_seed(6)
    k, s, p = geometry
    x = _pool_input(dtype, binary)
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    y, y_ref = max_pool_channels_last(a, k, s, p), F.max_pool2d(b, k, s, p)
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(y.isnan(), y_ref.isnan()) and torch.equal(y.nan_to_num(), y_ref.nan_to_num())
    grad = torch.randn(y_ref.shape).to(dtype)  # overlapping windows add into one input
    y.backward(grad)
    y_ref.backward(grad)
    assert torch.equal(a.grad, b.grad)


def test_max_pool_channels_last_uses_pytorch_where_it_does_not_apply(monkeypatch):
    calls = []
    real = cpu_kernels._MaxPoolChannelsLast.apply
    monkeypatch.setattr(cpu_kernels._MaxPoolChannelsLast, "apply", lambda *a: calls.append(1) or real(*a))
    x = torch.rand(2, 4, 8, 8)
    max_pool_channels_last(x.requires_grad_(), 3, 2, 1)  # NCHW memory
    cl = x.detach().contiguous(memory_format=torch.channels_last)
    max_pool_channels_last(cl, 3, 2, 1)  # no gradient needed
    assert not calls
    max_pool_channels_last(cl.requires_grad_(), 3, 2, 1)
    assert calls


def test_max_pool_module_keeps_nn_max_pool_behaviour():
    pool = MaxPool2d(3, 2, 1)
    assert isinstance(pool.module, nn.MaxPool2d) and isinstance(pool.module, MaxPool2dChannelsLast)
    x = torch.rand(2, 1, 4, 9, 9)
    torch.testing.assert_close(pool(x), F.max_pool2d(x.flatten(0, 1), 3, 2, 1).unflatten(0, (2, 1)))
    ceil = MaxPool2dChannelsLast(3, 2, 1, ceil_mode=True)
    cl = torch.rand(1, 4, 9, 9).contiguous(memory_format=torch.channels_last).requires_grad_()
    assert torch.equal(ceil(cl), F.max_pool2d(cl, 3, 2, 1, ceil_mode=True))


def test_sdt_training_step_with_and_without_layer_kernels(monkeypatch):
    from spikedrive.models.registry import create_model

    torch.manual_seed(7)
    models = [create_model("sdt_tiny", num_classes=4, T=2) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([0, 3])
    used = {"on": True}
    real = cpu_kernels._kernel_applies
    monkeypatch.setattr(cpu_kernels, "_kernel_applies", lambda t: used["on"] and real(t))
    grads = []
    for model, on in zip(models, (True, False)):
        used["on"] = on
        F.cross_entropy(model(x), y).backward()
        grads.append({n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-3, atol=1e-5, msg=name)
    for a, b in zip(models[0].buffers(), models[1].buffers()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def _depthwise_pair(channels: int, bias: bool, kernel_size: int = 5, **kwargs) -> tuple[nn.Conv2d, nn.Conv2d]:
    ours = DepthwiseConv2d(channels, channels, kernel_size, groups=channels, bias=bias, **kwargs)
    ref = nn.Conv2d(channels, channels, kernel_size, groups=channels, bias=bias, **kwargs)
    ref.load_state_dict(ours.state_dict())
    return ours, ref


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("padding", [2, 0, (1, 2)])
def test_depthwise_conv_gradients_match_pytorch(bias, padding):
    torch.manual_seed(8)
    ours, ref = _depthwise_pair(6, bias, padding=padding)
    ours, ref = ours.double(), ref.double()
    x = torch.rand(3, 6, 9, 8, dtype=torch.float64)
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    y, y_ref = ours(a), ref(b)
    grad = torch.randn_like(y_ref)
    y.backward(grad)
    y_ref.backward(grad)
    torch.testing.assert_close(y, y_ref, rtol=0, atol=0)
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad, rtol=1e-12, atol=1e-12)
    if bias:
        torch.testing.assert_close(ours.bias.grad, ref.bias.grad, rtol=1e-12, atol=1e-12)


def test_depthwise_conv_by_finite_differences():
    x = torch.rand(2, 3, 5, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *t: cpu_kernels._DepthwiseConv2d.apply(*t, (1, 1)), (x, w, b))


def test_depthwise_conv_under_bfloat16_autocast_keeps_the_weight_gradient_in_float32():
    torch.manual_seed(9)
    ours, ref = _depthwise_pair(4, True, padding=2)
    x = (torch.rand(2, 4, 7, 7) > 0.7).float()
    grads = []
    for conv in (ours, ref):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = conv(x.requires_grad_())
        assert y.dtype == torch.bfloat16
        y.float().square().sum().backward()
        grads.append(conv.weight.grad)
    assert grads[0].dtype == torch.float32
    # PyTorch rounds its weight gradient to bfloat16 first; ours stays float32: within that rounding.
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-2, atol=1e-2)


def test_conv2d_factory_gives_depthwise_layers_the_fast_module():
    assert isinstance(Conv2d(8, 8, 7, groups=8).module, DepthwiseConv2d)
    assert type(Conv2d(8, 16, 3).module) is nn.Conv2d and type(Conv2d(8, 8, 3, groups=2).module) is nn.Conv2d
    strided = Conv2d(4, 4, 3, stride=2, groups=4)  # stride 2: PyTorch's own path, same result
    x = torch.rand(1, 2, 4, 6, 6)
    torch.testing.assert_close(strided(x), F.conv2d(x.flatten(0, 1), strided.module.weight, None, 2, 1, 1, 4).unflatten(0, (1, 2)))


def test_second_derivatives_through_the_cpu_layer_paths_match_pytorch():
    torch.manual_seed(10)
    x = torch.randn(3, 4, 6, 6, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    bn_ours, bn_ref = _twin_bns(4, torch.float64)
    dw, dw_ref = (m.double() for m in _depthwise_pair(4, True, kernel_size=3, padding=1))

    def ours(t):
        rows = batch_norm_rows(bn_ours, t.permute(0, 2, 3, 1).reshape(-1, 4)).view(3, 6, 6, 4).permute(0, 3, 1, 2)
        return max_pool_channels_last(dw(rows.contiguous(memory_format=torch.channels_last)), 3, 2, 1)

    def reference(t):
        return F.max_pool2d(dw_ref(bn_ref(t.permute(0, 2, 3, 1).reshape(-1, 4)).view(3, 6, 6, 4).permute(0, 3, 1, 2)), 3, 2, 1)

    results = []
    for fn, params in ((ours, [bn_ours.weight, dw.weight]), (reference, [bn_ref.weight, dw_ref.weight])):
        xi = x.clone().requires_grad_()
        (gx,) = torch.autograd.grad(fn(xi).pow(3).sum(), xi, create_graph=True)  # a gradient penalty
        results.append(torch.autograd.grad(gx.pow(2).sum(), [xi, *params]))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_batch_norm_subclasses_and_hooks_keep_pytorchs_module(monkeypatch):
    calls = []
    real = cpu_kernels._BatchNormRows.apply
    monkeypatch.setattr(cpu_kernels._BatchNormRows, "apply", lambda *a: calls.append(1) or real(*a))
    layer = BatchNormLast(8)
    seen = []
    layer.bn.register_forward_hook(lambda *_: seen.append(1))
    layer(torch.randn(2, 3, 5, 8))
    assert seen and not calls  # the hook ran: the module itself was called
    class CountingBatchNorm(nn.BatchNorm2d):  # a subclass may change forward (SyncBatchNorm does)
        def forward(self, x):
            seen.append(2)
            return super().forward(x)

    wrapped = BatchNorm2d(6)
    wrapped.module = CountingBatchNorm(6)
    steps = torch.randn(2, 2, 6, 3, 3).permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)  # channels-last
    wrapped(steps)
    assert seen[-1] == 2 and not calls
    mixed = nn.BatchNorm1d(4).double()  # float64 parameters beside a float32 input: PyTorch refuses it
    assert not cpu_kernels.rows_kernel_applies(mixed, torch.randn(6, 4))
