"""Stateless layers applied to every time step by folding time into the batch."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .cpu_kernels import DepthwiseConv2d, _batch_norm_rows_kernel, rows_kernel_applies

__all__ = [
    "TimeDistributed", "Synapse", "Conv2d", "ConvTranspose2d", "Linear", "BatchNorm2d", "BatchNorm1d",
    "SYNAPTIC_TYPES",
]

#: Module types that multiply weights by their input: the layers whose input must be spikes.
SYNAPTIC_TYPES: tuple[type[nn.Module], ...] = (
    nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear,
)
_TRANSPOSED = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


class TimeDistributed(nn.Module):
    """Apply a stateless ``module`` to ``[T, B, ...]`` as one call on ``[T * B, ...]``."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[T, B, *in] -> [T, B, *out]``."""
        if x.dim() < 2:
            raise ValueError(f"{type(self).__name__}: expected [T, B, ...], got shape {tuple(x.shape)}")
        steps, batch = x.shape[:2]
        y = self.module(x.flatten(0, 1))
        return y.unflatten(0, (steps, batch))


class Synapse(TimeDistributed):
    """A weight layer (conv, transposed conv or linear) over time, aware of I-LIF's virtual time steps.

    Normally ``[T, B, *in] -> [T, B, *out]``. With ``virtual_steps = D > 1`` (set by
    :func:`spikedrive.to_spike_driven`) the input is I-LIF's binary expansion ``[T * D, B, *in]``:
    the layer applies its weights to each binary map, sums the ``D`` maps of every step, adds the
    bias once, and returns ``[T, B, *out]`` — an accumulate-only computation equal to one pass
    over the integers.

    Args:
        module: an ``nn.Conv1d/2d/3d``, ``nn.ConvTranspose1d/2d/3d`` or ``nn.Linear``.
        encoding: marks the encoding layer, the one synaptic layer allowed to see real-valued
            input (and counted with MACs rather than ACs in the energy model).
    """

    def __init__(self, module: nn.Module, encoding: bool = False) -> None:
        if not isinstance(module, SYNAPTIC_TYPES):
            raise TypeError(f"Synapse: module must be one of {[t.__name__ for t in SYNAPTIC_TYPES]}, got {type(module).__name__}")
        super().__init__(module)
        self.encoding = encoding
        self.virtual_steps = 1

    def _without_bias(self, x: torch.Tensor) -> torch.Tensor:
        m = self.module
        # The weight is used without calling the module, so run its pre-hooks first: that is
        # where torch.nn.utils.prune recomputes ``weight = weight_orig * weight_mask``.
        for key, hook in m._forward_pre_hooks.items():
            if key in m._forward_pre_hooks_with_kwargs:
                hook(m, (x,), {})
            else:
                hook(m, (x,))
        if isinstance(m, nn.Linear):
            return F.linear(x, m.weight)
        if isinstance(m, nn.modules.conv._ConvTransposeNd):
            return _TRANSPOSED[len(m.kernel_size)](x, m.weight, None, m.stride, m.padding, m.output_padding,
                                                  m.groups, m.dilation)
        return m._conv_forward(x, m.weight, None)  # type: ignore[union-attr]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[T, B, *in] -> [T, B, *out]`` (or ``[T * D, B, *in] -> [T, B, *out]`` in spike-driven mode)."""
        d = self.virtual_steps
        if d == 1:
            return super().forward(x)
        if x.dim() < 2 or x.shape[0] % d:
            raise ValueError(
                f"Synapse in spike-driven mode (D={d}) expects [T*D, B, ...] input, got shape {tuple(x.shape)}"
            )
        steps, batch = x.shape[0] // d, x.shape[1]
        y = self._without_bias(x.flatten(0, 1))
        y = y.unflatten(0, (steps, d, batch)).sum(dim=1)
        bias = self.module.bias
        if bias is not None:
            # One bias per real time step, not one per virtual step.
            shape = (1, 1, -1) + (1,) * (y.dim() - 3) if not isinstance(self.module, nn.Linear) else (-1,)
            y = y + bias.view(shape)
        return y

    def extra_repr(self) -> str:
        return f"encoding={self.encoding}, virtual_steps={self.virtual_steps}"


def Conv2d(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int | None = None,
           groups: int = 1, bias: bool = False, encoding: bool = False) -> Synapse:
    """A 2-D convolution over ``[T, B, C, H, W]``; ``padding`` defaults to ``kernel_size // 2``."""
    pad = kernel_size // 2 if padding is None else padding
    # A depthwise conv takes the module whose CPU weight gradient is not 10-20x its forward.
    conv = DepthwiseConv2d if 1 < groups == in_channels == out_channels else nn.Conv2d
    return Synapse(conv(in_channels, out_channels, kernel_size, stride, pad, groups=groups, bias=bias), encoding)


def ConvTranspose2d(in_channels: int, out_channels: int, kernel_size: int, stride: int = 2, padding: int = 0,
                    output_padding: int = 0, bias: bool = False, encoding: bool = False) -> Synapse:
    """A 2-D transposed convolution (up-sampling) over ``[T, B, C, H, W]``; with the defaults
    (``kernel_size = stride = 2``) each side doubles."""
    return Synapse(nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride, padding, output_padding,
                                      bias=bias), encoding)


def Linear(in_features: int, out_features: int, bias: bool = True, encoding: bool = False) -> Synapse:
    """A fully connected layer over ``[T, B, ..., in_features]``."""
    return Synapse(nn.Linear(in_features, out_features, bias=bias), encoding)


class BatchNorm2d(TimeDistributed):
    """Batch norm over ``[T, B, C, H, W]`` with statistics shared across time (over T, B, H, W).

    Steps in channels-last memory are normalised as the rows of ``[T B H W, C]`` (no copy; on the
    CPU by :func:`~spikedrive.layers.cpu_kernels.batch_norm_rows`) and stay channels-last."""

    def __init__(self, num_features: int, **kwargs) -> None:
        super().__init__(nn.BatchNorm2d(num_features, **kwargs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[T, B, C, H, W] -> [T, B, C, H, W]``."""
        nhwc = x.permute(0, 1, 3, 4, 2) if x.dim() == 5 else None
        if nhwc is not None and nhwc.is_contiguous():
            rows = nhwc.view(-1, x.shape[2])
            if rows_kernel_applies(self.module, rows):
                return _batch_norm_rows_kernel(self.module, rows).view(nhwc.shape).permute(0, 1, 4, 2, 3)
        return super().forward(x)


class BatchNorm1d(TimeDistributed):
    """Batch norm over ``[T, B, C]`` with statistics shared across time (over T, B)."""

    def __init__(self, num_features: int, **kwargs) -> None:
        super().__init__(nn.BatchNorm1d(num_features, **kwargs))
