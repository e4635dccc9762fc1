"""The compiled CPU layer kernels (``neurons/kernels/csrc/layers_cpu.cpp``) behind PyTorch's API.

PyTorch's CPU batch norm walks each channel of a ``[M, C]`` token matrix with a stride of ``C``,
and its channels-last max-pool keeps an int64 index per output and zero-fills its gradient in a
separate pass; between the fused neurons these two were a fifth of an SDT training step. The
kernels here take their place only where they give the same result:

* :func:`batch_norm_rows`: batch norm over the rows of a contiguous ``[M, C]`` tensor with batch
  statistics (training, or no running statistics); statistics in float32 (float64 for
  float64), gradients by the textbook formula. Equal to ``F.batch_norm`` within float rounding
  (the sums run in another order), and running statistics updated exactly as it does.
* :func:`max_pool_channels_last`: ``F.max_pool2d`` (no dilation, no ceil mode) on a
  channels-last ``[N, C, H, W]`` that needs a gradient; values, argmax ties and gradients are
  bit-identical to PyTorch's, and the argmax is one byte per output instead of eight.

And one that needs no compiled code: the weight gradient of a depthwise convolution
(:class:`DepthwiseConv2d`), which PyTorch's CPU backward computes 10-20x slower than the forward
(a 7x7 depthwise layer of Meta-SpikeFormer: 6 ms forward, 100-120 ms weight gradient), is
computed as one grouped convolution of the input by the output gradient.

Everything else (another device or layout, eval mode, a batch-norm subclass such as
``SyncBatchNorm`` or one with hooks, a ``TorchFunctionMode`` such as the conversion's tracer, the
kernel not built) runs PyTorch's own module or operator. A second backward (``create_graph=True``)
goes through PyTorch's differentiable operators. ``SPIKEDRIVE_NO_CPU_KERNEL=1`` turns the
compiled kernels off together with the fused neurons.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..neurons.kernels.cpu import cpu_ops, cpu_tensor_supported

__all__ = ["rows_kernel_applies", "batch_norm_rows", "max_pool_channels_last", "MaxPool2dChannelsLast",
           "DepthwiseConv2d"]


def _kernel_applies(x: torch.Tensor) -> bool:
    return not torch._C._is_torch_function_mode_enabled() and cpu_tensor_supported(x)


class _BatchNormRows(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,
                eps: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        y, mean, var, invstd = cpu_ops().bn_last_forward(x, weight, bias, eps)
        ctx.save_for_backward(x, mean, invstd, weight)
        ctx.eps = eps
        ctx.mark_non_differentiable(mean, var)
        return y, mean, var

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor, _mean: None, _var: None):
        x, mean, invstd, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        if torch.is_grad_enabled():  # create_graph: a gradient that is itself differentiable
            return _replayed_batch_norm_grads(ctx, x, weight, grad_y)
        grad_x, grad_w, grad_b = cpu_ops().bn_last_backward(grad_y, x, mean, invstd, weight, need_x)
        # Autograd casts each gradient to its input's dtype.
        return (grad_x if need_x else None), (grad_w if need_w else None), (grad_b if need_b else None), None


def _replayed_batch_norm_grads(ctx, x: torch.Tensor, weight: torch.Tensor | None, grad_y: torch.Tensor):
    # The same batch norm replayed with PyTorch's operators, whose backward builds a graph.
    need_x, need_w, need_b = ctx.needs_input_grad[:3]
    y = F.batch_norm(x, None, None, weight, None, True, 0.0, ctx.eps)
    wanted = [t for t, need in ((x, need_x), (weight, need_w)) if need]
    grads = iter(torch.autograd.grad(y, wanted, grad_y, create_graph=True) if wanted else ())
    grad_x = next(grads) if need_x else None
    grad_w = next(grads) if need_w else None
    grad_b = grad_y.sum(0) if need_b else None
    return grad_x, grad_w, grad_b, None


def rows_kernel_applies(bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> bool:
    """Whether :func:`batch_norm_rows` runs ``bn`` on ``x`` ``[M, C]`` through the CPU kernel: a
    plain ``nn.BatchNorm1d/2d`` without hooks, using batch statistics (training, or no running
    ones), on a contiguous CPU ``x`` with at least two rows and parameters in ``x``'s dtype or
    float32 (the dtype mixes ``nn.BatchNorm`` accepts)."""
    return (type(bn) in (nn.BatchNorm1d, nn.BatchNorm2d) and not bn._forward_hooks and not bn._forward_pre_hooks
            and (bn.training or (bn.running_mean is None and bn.running_var is None))
            and x.dim() == 2 and x.shape[1] == bn.num_features and x.shape[0] >= 2 and x.is_contiguous()
            and (bn.weight is None or bn.weight.dtype in (x.dtype, torch.float32)) and _kernel_applies(x))


def batch_norm_rows(bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> torch.Tensor:
    """``bn`` over the rows of ``x`` ``[M, C]`` (rows are samples, the last dim channels; for a
    ``BatchNorm2d``, an ``[N, C, H, W]`` batch in channels-last memory flattened to its NHWC
    rows), through the CPU kernel where :func:`rows_kernel_applies`, else by calling ``bn``
    itself (valid for a ``BatchNorm1d``; a caller with a ``BatchNorm2d`` checks first).

    The running statistics and ``num_batches_tracked`` move exactly as in ``nn.BatchNorm*``'s
    forward (momentum, or the cumulative average when ``momentum`` is ``None``; the running
    variance unbiased)."""
    return _batch_norm_rows_kernel(bn, x) if rows_kernel_applies(bn, x) else bn(x)


def _batch_norm_rows_kernel(bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> torch.Tensor:
    # batch_norm_rows once rows_kernel_applies(bn, x) has been checked.
    # The order of nn.BatchNorm's forward: count the batch, then choose the averaging factor.
    factor = 0.0 if bn.momentum is None else bn.momentum
    if bn.training and bn.track_running_stats and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
    y, mean, var = _BatchNormRows.apply(x, bn.weight, bn.bias, bn.eps)
    if bn.training and bn.track_running_stats and bn.running_mean is not None:
        with torch.no_grad():
            m = x.shape[0]
            bn.running_mean.mul_(1 - factor).add_(mean.to(bn.running_mean.dtype), alpha=factor)
            bn.running_var.mul_(1 - factor).add_((var * (m / (m - 1))).to(bn.running_var.dtype), alpha=factor)
    return y


class _MaxPoolChannelsLast(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, kernel: int, stride: int, padding: int) -> torch.Tensor:
        nhwc = x.permute(0, 2, 3, 1)
        y, argmax = cpu_ops().spike_max_pool_forward(nhwc, kernel, stride, padding)
        ctx.save_for_backward(argmax)
        ctx.geometry = (x.shape[2], x.shape[3], kernel, stride, padding)
        return y.permute(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor):
        (argmax,) = ctx.saved_tensors
        return _MaxPoolScatter.apply(grad_y, argmax, ctx.geometry), None, None, None


class _MaxPoolScatter(torch.autograd.Function):
    """The max-pool's input gradient: each output's gradient added into its argmax. It is linear
    in the output gradient, so its own backward (a second derivative) gathers at the argmax."""

    @staticmethod
    def forward(ctx, grad_y: torch.Tensor, argmax: torch.Tensor, geometry: tuple[int, ...]) -> torch.Tensor:
        ctx.save_for_backward(argmax)
        ctx.geometry = geometry
        return cpu_ops().spike_max_pool_backward(grad_y.permute(0, 2, 3, 1), argmax, *geometry).permute(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, grad_grad_x: torch.Tensor):
        (argmax,) = ctx.saved_tensors
        height, width, kernel, stride, padding = ctx.geometry
        n, ho, wo, c = argmax.shape
        offset = argmax.long()
        rows = torch.arange(ho).view(1, ho, 1, 1) * stride - padding + offset // kernel
        cols = torch.arange(wo).view(1, 1, wo, 1) * stride - padding + offset % kernel
        flat = (rows * width + cols).permute(0, 3, 1, 2).reshape(n, c, ho * wo)  # argmax as h * W + w
        gathered = grad_grad_x.reshape(n, c, height * width).gather(2, flat)
        return gathered.view(n, c, ho, wo), None, None


def _single(value: int | tuple[int, ...]) -> int | None:
    if isinstance(value, int):
        return value
    return value[0] if len(set(value)) == 1 else None


def max_pool_channels_last(x: torch.Tensor, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
                           padding: int | tuple[int, int] = 0) -> torch.Tensor:
    """``F.max_pool2d(x, kernel_size, stride, padding)`` on ``[N, C, H, W]``; through the CPU
    kernel when ``x`` is channels-last in memory and needs a gradient (same values, argmax and
    gradients, the argmax kept in one byte), else through PyTorch."""
    k, s, p = _single(kernel_size), _single(stride if stride is not None else kernel_size), _single(padding)
    if (k is None or s is None or p is None or k > 15 or 2 * p > k or x.dim() != 4
            or not (torch.is_grad_enabled() and x.requires_grad) or not x.permute(0, 2, 3, 1).is_contiguous()
            or x.shape[2] + 2 * p < k or x.shape[3] + 2 * p < k or not _kernel_applies(x)):
        return F.max_pool2d(x, kernel_size, stride, padding)
    return _MaxPoolChannelsLast.apply(x, k, s, p)


class MaxPool2dChannelsLast(nn.MaxPool2d):
    """``nn.MaxPool2d`` that trains through :func:`max_pool_channels_last` where it applies
    (no dilation, no ceil mode, no returned indices); otherwise exactly ``nn.MaxPool2d``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C, H, W] -> [N, C, H', W']``."""
        if self.return_indices or self.ceil_mode or _single(self.dilation) != 1:
            return super().forward(x)
        return max_pool_channels_last(x, self.kernel_size, self.stride, self.padding)


class _DepthwiseConv2d(torch.autograd.Function):
    """``F.conv2d(x, weight, bias, 1, padding, 1, C)`` (depthwise, stride 1, no dilation) whose
    weight gradient is one grouped convolution: for each channel ``c`` and sample ``n``,
    ``dL/dw[c, i, j] = sum_{y, x} x_pad[n, c, y + i, x + j] g[n, c, y, x]`` is the cross-correlation
    of the padded input plane with the gradient plane (a ``kh x kw`` output), summed over ``n``.
    It runs in float32 (float64 for float64) whatever the input's dtype; the input gradient is
    PyTorch's own."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                padding: tuple[int, int]) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.padding = padding
        # Under autocast, F.conv2d casts the weight to x's dtype here, as it would outside.
        return F.conv2d(x, weight, bias, 1, padding, 1, x.shape[1])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # differentiable ops only: a second backward works
        x, weight = ctx.saved_tensors
        n, c = x.shape[:2]
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        grad_x = grad_w = grad_b = None
        if need_x:
            grad_x = torch.ops.aten.convolution_backward(
                grad, x, weight.to(x.dtype), None, [1, 1], list(ctx.padding), [1, 1], False, [0, 0], c,
                [True, False, False])[0]
        compute = torch.promote_types(x.dtype, torch.float32)
        if need_w:
            planes = x.to(compute).transpose(0, 1).reshape(1, c * n, *x.shape[2:])
            kernels = grad.to(compute).transpose(0, 1).reshape(c * n, 1, *grad.shape[2:])
            per_sample = F.conv2d(planes, kernels, None, 1, ctx.padding, 1, c * n)  # [1, C N, kh, kw]
            grad_w = per_sample.view(c, n, *weight.shape[2:]).sum(1, keepdim=True)
        if need_b:
            grad_b = grad.to(compute).sum((0, 2, 3))
        return grad_x, grad_w, grad_b, None  # autograd casts each to its input's dtype


class DepthwiseConv2d(nn.Conv2d):
    """``nn.Conv2d`` with ``groups = in_channels = out_channels`` whose CPU training backward runs
    :class:`_DepthwiseConv2d` (stride 1, no dilation, zero padding); otherwise ``nn.Conv2d``.
    Same parameters, state dict and hooks as ``nn.Conv2d``."""

    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if (input.device.type == "cpu" and input.dim() == 4 and self.groups == self.in_channels == self.out_channels
                and self.stride == (1, 1) and self.dilation == (1, 1) and self.padding_mode == "zeros"
                and not isinstance(self.padding, str) and torch.is_grad_enabled()
                and (weight.requires_grad or input.requires_grad)
                and not torch._C._is_torch_function_mode_enabled()):
            return _DepthwiseConv2d.apply(input, weight, bias, tuple(self.padding))
        return super()._conv_forward(input, weight, bias)
