"""T-RevSNN (Hu et al., "High-Performance Temporal Reversible Spiking Neural Networks with O(L)
Training Memory and O(1) Inference Cost", ICML 2024), with its reversible backward.

Each time step is one *column* (:class:`~spikedrive.models.trevsnn_blocks.Column`) with its own
weights (the last block of each level shares its two output convs across columns, as in the
authors' code). The state carried over time is the four level features ``c0..c3``:

    c_k^t = L_k^t(c_{k-1}^t, c_{k+1}^{t-1}) + alpha_k^t ⊙ c_k^{t-1}        (c_{-1}^t: stem output)

so column ``t-1`` can be rebuilt from column ``t`` top level first:

    c_k^{t-1} = (c_k^t - L_k^t(c_{k-1}^t, c_{k+1}^{t-1})) / alpha_k^t,    k = 3, 2, 1, 0.

:class:`ReversibleColumns` uses that: its forward runs all ``T`` columns without a graph and keeps
only the stem output and the last column; its backward walks the columns back, rebuilding each
earlier column and recomputing every ``L_k`` with gradients on, so what is saved for backward does
not grow with ``T``. ``reversible=False`` runs the same modules under plain autograd (BPTT).

Training output: logits of every head ``[H, B, classes]`` (``H = T`` with per-column heads, 1
without), for the compound loss of :mod:`spikedrive.engine.multihead`; evaluation output: the last
head's logits ``[B, classes]``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from .registry import register_model
from .trevsnn_blocks import AuxHead, Column, EventStem, ImageStem, ScaledStdConv2d, SpikeHead

__all__ = ["TRevSNN", "ReversibleColumns", "paper_parameter_count"]


@contextmanager
def _frozen_bn_stats(module: nn.Module) -> Iterator[None]:
    """Batch norms keep their running statistics (momentum 0) inside: the backward's recomputation
    must not count a batch a second time."""
    saved = []
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            saved.append((m, m.momentum, None if m.num_batches_tracked is None else m.num_batches_tracked.clone()))
            m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum, tracked in saved:
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)


class ReversibleColumns(torch.autograd.Function):
    """All ``T`` columns with O(1)-in-T saved tensors.

    ``apply(net, x, *params)``: ``x`` is the stem output ``[B, C0, H, W]`` shared by every column
    or one per column ``[T, B, C0, H, W]``; ``params`` are ``net.columns``' parameters (passed so
    autograd returns their gradients). Returns the last column's ``c0, c1, c2, c3`` and the
    spatial mean of every column's ``c3``, ``[T, B, C3]`` (what the auxiliary heads read).
    Saved for backward: ``x`` and the last column only.
    """

    @staticmethod
    def forward(ctx: Any, net: "TRevSNN", x: torch.Tensor, *params: torch.Tensor) -> tuple[torch.Tensor, ...]:  # type: ignore[override]
        state: list[torch.Tensor] | None = None
        pooled = []
        for t, col in enumerate(net.columns):
            state = col(x if x.dim() == 4 else x[t], state)
            pooled.append(state[3].mean(dim=(2, 3)))
        assert state is not None
        ctx.net = net
        ctx.index = {id(p): i for i, p in enumerate(params)}
        ctx.param_meta = [(p.shape, p.dtype, p.device) for p in params]
        ctx.save_for_backward(x, *state)
        return (*state, torch.stack(pooled))

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        x, *state = ctx.saved_tensors
        net: TRevSNN = ctx.net
        g_levels = [g.clone() for g in grads[:4]]
        g_pooled = grads[4]
        g_x = torch.zeros_like(x)
        g_params: list[torch.Tensor | None] = [None] * len(ctx.param_meta)

        def add_param_grads(params: Sequence[nn.Parameter], gs: Sequence[torch.Tensor | None]) -> None:
            for p, g in zip(params, gs):
                if g is None:
                    continue
                i = ctx.index.get(id(p))
                if i is None:  # a parameter that was not passed in (requires_grad off)
                    continue
                g_params[i] = g if g_params[i] is None else g_params[i] + g

        cur = [s.detach() for s in state]
        with torch.enable_grad(), _frozen_bn_stats(net.columns):
            for t in range(len(net.columns) - 1, -1, -1):
                col = net.columns[t]
                params = [p for p in col.parameters() if p.requires_grad]
                hw = cur[3].shape[2] * cur[3].shape[3]
                g_levels[3] = g_levels[3] + (g_pooled[t] / hw)[:, :, None, None]
                x_t = (x if x.dim() == 4 else x[t]).detach().requires_grad_()
                below = [x_t] + [cur[k].detach().requires_grad_() for k in range(3)]
                prev: list[torch.Tensor | None] = [None] * 4
                g_prev: list[torch.Tensor | None] = [None] * 4
                for k in range(3, -1, -1):  # top level first: c_k^{t-1} needs c_{k+1}^{t-1}
                    above = prev[k + 1] if (t > 0 and k < 3) else None
                    local = col.level(k, below[k], above)
                    inputs = [below[k]] + ([above] if above is not None else []) + params
                    gs = torch.autograd.grad(local, inputs, g_levels[k], allow_unused=True)
                    g_below = gs[0]
                    if g_below is not None:
                        if k == 0:
                            if x.dim() == 4:
                                g_x += g_below
                            else:
                                g_x[t] += g_below
                        else:
                            g_levels[k - 1] = g_levels[k - 1] + g_below
                    if above is not None and gs[1] is not None:
                        g_prev[k + 1] = gs[1] if g_prev[k + 1] is None else g_prev[k + 1] + gs[1]
                    add_param_grads(params, gs[1 + (above is not None):])
                    if t > 0:
                        alpha = col.alpha[k]
                        with torch.no_grad():
                            rebuilt = col.previous_level(k, cur[k], local)
                        prev[k] = rebuilt.requires_grad_()
                        g_alpha = (g_levels[k] * rebuilt.detach()).sum(dim=(0, 2, 3), keepdim=True)
                        add_param_grads([alpha], [g_alpha])
                        shortcut = alpha.detach() * g_levels[k]
                        g_prev[k] = shortcut if g_prev[k] is None else g_prev[k] + shortcut
                if t > 0:
                    cur = [p.detach() for p in prev]  # type: ignore[union-attr]
                    g_levels = [g if g is not None else torch.zeros_like(c) for g, c in zip(g_prev, cur)]
        out_params = [
            g if g is not None else torch.zeros(shape, dtype=dtype, device=device)
            for g, (shape, dtype, device) in zip(g_params, ctx.param_meta)
        ]
        return (None, g_x, *out_params)


class TRevSNN(nn.Module):
    """The T-RevSNN classifier.

    Input: images ``[B, in_channels, H, W]`` (encoded once by the shared stem, H and W divisible
    by 16), or with ``event_input`` time-major event frames ``[T_in, B, in_channels, H, W]``
    (``T_in`` a multiple of ``T``: each group of ``T_in / T`` consecutive frames is summed and goes
    through its column's own stem; H, W divisible by 4). Output: ``[H, B, classes]`` logits of
    every head in training mode (``H = T`` with ``aux_heads``, else 1), ``[B, classes]`` of the
    last head in eval mode.

    Args:
        channels: widths of the levels ``c0..c3``.
        T: time steps = columns.
        num_classes: classes.
        kernel_size: depthwise kernel of the blocks.
        blocks_per_level: ConvNeXt-style blocks after each fusion (the authors use 2).
        reversible: train with :class:`ReversibleColumns` (memory flat in T); ``False`` is
            plain autograd through time (BPTT). Same parameters either way.
        aux_heads: a head after every column for training; ``False``: the last one only.
        event_input: DVS input with one stem per column (see above).
        in_channels: input channels (3 for images, 2 for event polarities).
        quant_identity: replace every Quant by the identity (gradcheck only).
    """

    def __init__(self, channels: Sequence[int] = (64, 128, 256, 384), T: int = 4, num_classes: int = 1000,
                 kernel_size: int = 3, blocks_per_level: int = 2, reversible: bool = True,
                 aux_heads: bool = True, event_input: bool = False, in_channels: int | None = None,
                 quant_identity: bool = False) -> None:
        super().__init__()
        if len(channels) != 4:
            raise ValueError(f"TRevSNN: channels must give the 4 level widths, got {tuple(channels)}")
        if T < 1:
            raise ValueError(f"TRevSNN: T must be >= 1, got {T}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"TRevSNN: kernel_size must be odd and >= 1, got {kernel_size}")
        ch = tuple(int(c) for c in channels)
        self.channels, self.T, self.num_classes = ch, T, num_classes
        self.reversible, self.aux_heads, self.event_input = reversible, aux_heads, event_input
        self.in_channels = in_channels if in_channels is not None else (2 if event_input else 3)
        pad = kernel_size // 2
        shared = [(ScaledStdConv2d(4 * c, c, 1), nn.Conv2d(c, c, kernel_size, padding=pad, groups=c)) for c in ch]
        self.columns = nn.ModuleList([
            Column(ch, kernel_size, first=t == 0, shared=shared, blocks_per_level=blocks_per_level,
                   quant_identity=quant_identity)
            for t in range(T)
        ])
        if event_input:
            self.stem: nn.Module = nn.ModuleList([EventStem(self.in_channels, ch[0]) for _ in range(T)])
        else:
            self.stem = ImageStem(self.in_channels, ch[0])
        self.aux = nn.ModuleList([AuxHead(ch[3], num_classes) for _ in range(T - 1)]) if aux_heads else nn.ModuleList()
        self.head = SpikeHead(ch[3], num_classes, quant_identity=quant_identity)
        self.apply(_init_weights)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The stem output: ``[B, C0, H/4, W/4]`` for images, ``[T, B, C0, H, W]`` for events."""
        if self.event_input:
            if x.dim() != 5 or x.shape[2] != self.in_channels or x.shape[0] % self.T:
                raise ValueError(
                    f"TRevSNN: event input must be [T_in, B, {self.in_channels}, H, W] with T_in a multiple of "
                    f"T={self.T}, got shape {tuple(x.shape)}")
            groups = x.reshape(self.T, x.shape[0] // self.T, *x.shape[1:]).sum(dim=1)
            return torch.stack([stem(groups[t]) for t, stem in enumerate(self.stem)])
        if x.dim() != 4 or x.shape[1] != self.in_channels or x.shape[2] % 16 or x.shape[3] % 16:
            raise ValueError(
                f"TRevSNN: expected images [B, {self.in_channels}, H, W] with H and W multiples of 16, "
                f"got shape {tuple(x.shape)}")
        return self.stem(x)

    def run_columns(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Stem output → (last column's ``[c0, c1, c2, c3]``, spatial means of every column's
        ``c3`` ``[T, B, C3]``), reversibly when ``reversible`` and a graph is being built."""
        for col in self.columns:
            col.clamp_alpha()
        params = [p for p in self.columns.parameters() if p.requires_grad]
        if self.reversible and torch.is_grad_enabled() and (x.requires_grad or params):
            *state, pooled = ReversibleColumns.apply(self, x, *params)
            return list(state), pooled
        state: list[torch.Tensor] | None = None
        means = []
        for t, col in enumerate(self.columns):
            state = col(x if x.dim() == 4 else x[t], state)
            means.append(state[3].mean(dim=(2, 3)))
        assert state is not None
        return state, torch.stack(means)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``[B, C, H, W]`` (or event frames ``[T_in, B, C, H, W]``) → ``[H, B, classes]``
        in training, ``[B, classes]`` in evaluation."""
        state, pooled = self.run_columns(self.encode(x))
        c3 = state[3] / self.T if self.event_input else state[3]  # the authors' DVS head reads c3 / T
        last = self.head(c3)
        if not self.training:
            return last
        heads = [aux(pooled[t]) for t, aux in enumerate(self.aux)]
        return torch.stack(heads + [last])

    def example_input(self, batch_size: int = 2) -> torch.Tensor:
        """A batch of this model's input at 32x32 (images in [0, 1], or binary event frames)."""
        g = torch.Generator().manual_seed(0)
        if self.event_input:
            return (torch.rand(self.T, batch_size, self.in_channels, 32, 32, generator=g) < 0.2).float()
        return torch.rand(batch_size, self.in_channels, 32, 32, generator=g)


def _init_weights(m: nn.Module) -> None:
    # The authors' init: every Conv2d, the weight-standardised ones included (those are scale-free),
    # trunc_normal std 0.02, biases 0. It leaves the hidden neuron of every block silent at first
    # (depthwise output std ~0.03 against the 0.5 threshold); the straight-through gradient still
    # reaches it, so it wakes after some epochs: short budgets stay near chance (see
    # configs/trevsnn/cifar_small.yaml).
    if isinstance(m, nn.Conv2d):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def paper_parameter_count(model: TRevSNN) -> int:
    """Parameters the paper counts: all but the training-time auxiliary heads."""
    aux = {id(p) for p in model.aux.parameters()}
    return sum(p.numel() for p in model.parameters() if id(p) not in aux)


@register_model
def trevsnn_tiny(num_classes: int = 1000, T: int = 4, reversible: bool = True, **kwargs: Any) -> TRevSNN:
    """T-RevSNN tiny: widths [64, 128, 256, 384], depthwise k 5, T = 4 (paper: 15.2M parameters,
    69.8% ImageNet). ``channels`` may be overridden (narrow CPU-sized runs)."""
    kwargs.setdefault("kernel_size", 5)
    kwargs.setdefault("channels", (64, 128, 256, 384))
    return TRevSNN(T=T, num_classes=num_classes, reversible=reversible, **kwargs)


@register_model
def trevsnn_small(num_classes: int = 1000, T: int = 4, reversible: bool = True, **kwargs: Any) -> TRevSNN:
    """T-RevSNN small: widths [96, 192, 384, 512], depthwise k 5, T = 4 (paper: 29.8M, 73.2%)."""
    kwargs.setdefault("kernel_size", 5)
    kwargs.setdefault("channels", (96, 192, 384, 512))
    return TRevSNN(T=T, num_classes=num_classes, reversible=reversible, **kwargs)


@register_model
def trevsnn_dvs_tiny(num_classes: int = 10, T: int = 8, reversible: bool = True, **kwargs: Any) -> TRevSNN:
    """T-RevSNN for event frames ``[T_in, B, 2, H, W]``: widths [32, 64, 128, 256], T = 8, one
    stem per column, the last head only (the authors' DVS setting)."""
    kwargs.setdefault("kernel_size", 3)
    kwargs.setdefault("aux_heads", False)
    kwargs.setdefault("channels", (32, 64, 128, 256))
    return TRevSNN(T=T, num_classes=num_classes, reversible=reversible, event_input=True, **kwargs)
