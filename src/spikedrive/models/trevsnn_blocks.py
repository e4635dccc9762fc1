"""Building blocks of T-RevSNN (Hu et al., ICML 2024): the turned-off neuron, weight-standardised
convolutions, the ConvNeXt-style block, the fusion paths between levels, one column, stems, heads.

Every module here works on one time step, ``[B, C, H, W]``: T-RevSNN runs one *column* per time
step, and the only temporal state is the four level features carried from column to column
(see :mod:`spikedrive.models.trevsnn`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import ScaledStdConv2d  # weight-standardised conv (a nn.Conv2d), as the authors use
from torch import nn

__all__ = [
    "Quant", "ScaledStdConv2d", "DownPath", "UpPath", "SpikeConvNeXtBlock", "Column",
    "ImageStem", "EventStem", "AuxHead", "SpikeHead",
]


class _HalfUpQuant(torch.autograd.Function):
    """``floor(clamp(x, 0, 1) + 0.5)`` forward (0.5 rounds up, as the authors' Quant); gradient 1
    on ``[0, 1]``, boundaries included, 0 outside."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return torch.floor(torch.clamp(x, 0, 1) + 0.5)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad_out * ((x >= 0) & (x <= 1)).to(grad_out.dtype)


class Quant(nn.Module):
    """The turned-off (stateless) spiking neuron: ``floor(clamp(x, 0, 1) + 0.5)``, binary, fires
    at ``x >= 0.5``, straight-through gradient on ``[0, 1]`` (the authors' ``Quant``; plain
    ``round`` would send 0.5 to 0, rounding half to even).

    ``identity=True`` replaces it by the identity (used only to gradcheck the reversible backward,
    whose correctness does not depend on the piecewise-constant rounding).
    """

    def __init__(self, identity: bool = False) -> None:
        super().__init__()
        self.identity = identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Any shape → spikes in ``{0, 1}`` of the same shape and dtype."""
        if self.identity:
            return x
        if not torch.is_grad_enabled() or not x.requires_grad:
            return torch.floor(torch.clamp(x, 0, 1) + 0.5)
        return _HalfUpQuant.apply(x)


class DownPath(nn.Module):
    """Quant → conv (``k x k``, stride ``s``, no bias) → BN: the path from the level below."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int, quant_identity: bool = False) -> None:
        super().__init__()
        self.quant = Quant(quant_identity)
        self.conv = nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, c_in, H, W]`` → ``[B, c_out, H / stride, W / stride]``."""
        return self.bn(self.conv(self.quant(x)))


class UpPath(nn.Module):
    """Quant → 1x1 conv (no bias) → BN → nearest upsampling by ``scale`` (1: none): the path from
    the level above, previous column."""

    def __init__(self, c_in: int, c_out: int, scale: int, quant_identity: bool = False) -> None:
        super().__init__()
        self.quant = Quant(quant_identity)
        self.conv = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, c_in, H, W]`` → ``[B, c_out, H * scale, W * scale]``."""
        y = self.bn(self.conv(self.quant(x)))
        return F.interpolate(y, scale_factor=self.scale, mode="nearest") if self.scale != 1 else y


class SpikeConvNeXtBlock(nn.Module):
    """``x + gamma ⊙ dw2(pw2(Quant(pw1(dw1(Quant(x))))))``: depthwise ``k x k`` (bias), weight-
    standardised 1x1 C→4C, Quant, weight-standardised 1x1 4C→C, depthwise ``k x k``; no norm
    inside. ``gamma`` starts at 1 (the authors' ``layer_scale_init_value=1``; the 1e-6 in their
    docstring is ConvNeXt's).

    ``pw2`` / ``dw2`` may be given: the authors' second block of each level shares them across all
    columns (their "reuse" block), and has no ``gamma`` (``layer_scale=False``).
    """

    nonsynaptic_weights = True  # own parameter: gamma, a per-channel scale

    def __init__(self, dim: int, kernel_size: int, pw2: nn.Module | None = None, dw2: nn.Module | None = None,
                 layer_scale: bool = True, quant_identity: bool = False) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.quant1 = Quant(quant_identity)
        self.dw1 = nn.Conv2d(dim, dim, kernel_size, padding=pad, groups=dim)
        self.pw1 = ScaledStdConv2d(dim, 4 * dim, 1)
        self.quant2 = Quant(quant_identity)
        self.pw2 = pw2 if pw2 is not None else ScaledStdConv2d(4 * dim, dim, 1)
        self.dw2 = dw2 if dw2 is not None else nn.Conv2d(dim, dim, kernel_size, padding=pad, groups=dim)
        self.gamma = nn.Parameter(torch.ones(1, dim, 1, 1)) if layer_scale else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, dim, H, W]`` → same shape."""
        y = self.dw2(self.pw2(self.quant2(self.pw1(self.dw1(self.quant1(x))))))
        return x + (y * self.gamma if self.gamma is not None else y)


class Column(nn.Module):
    """One time step of T-RevSNN: four levels ``c_k = L_k(c_{k-1}, c_{k+1}^prev) + alpha_k ⊙ c_k^prev``.

    ``L_k`` is ``Down_k(c_{k-1}) + Up_k(c_{k+1}^prev)`` followed by ``blocks_per_level`` ConvNeXt-
    style blocks. Down: identity at level 0 (the stem output already has ``channels[0]``), 3x3
    stride 2 at levels 1 and 2, 1x1 stride 1 at level 3 (levels 2 and 3 share a resolution). Up
    (from the previous column): 1x1 + nearest x2 at levels 0 and 1, 1x1 without resampling at
    level 2, none at level 3. The first column has no previous column: no Up path, no alpha term.

    Args:
        channels: widths of the four levels.
        kernel_size: depthwise kernel of the blocks.
        first: whether this is the first column.
        shared: per level, the ``(pw2, dw2)`` modules the last block of the level shares across
            columns.
        blocks_per_level: blocks after each fusion (the authors use 2).
        quant_identity: replace every Quant by the identity (gradcheck only).
    """

    nonsynaptic_weights = True  # own parameters: alpha_0..3, per-channel scales of the state

    def __init__(self, channels: tuple[int, int, int, int], kernel_size: int, first: bool,
                 shared: list[tuple[nn.Module, nn.Module]], blocks_per_level: int = 2,
                 quant_identity: bool = False) -> None:
        super().__init__()
        if blocks_per_level < 1:
            raise ValueError(f"Column: blocks_per_level must be >= 1, got {blocks_per_level}")
        self.first = first
        q = quant_identity
        self.down = nn.ModuleList([
            nn.Identity(),
            DownPath(channels[0], channels[1], 3, 2, q),
            DownPath(channels[1], channels[2], 3, 2, q),
            DownPath(channels[2], channels[3], 1, 1, q),
        ])
        self.up = None if first else nn.ModuleList([
            UpPath(channels[1], channels[0], 2, q),
            UpPath(channels[2], channels[1], 2, q),
            UpPath(channels[3], channels[2], 1, q),
        ])
        self.blocks = nn.ModuleList()
        for k, c in enumerate(channels):
            level = [SpikeConvNeXtBlock(c, kernel_size, quant_identity=q) for _ in range(blocks_per_level - 1)]
            pw2, dw2 = shared[k]
            level.append(SpikeConvNeXtBlock(c, kernel_size, pw2=pw2, dw2=dw2, layer_scale=False, quant_identity=q))
            self.blocks.append(nn.Sequential(*level))
        # Plain attributes, not a ParameterList: the column itself declares these non-synaptic.
        for k, c in enumerate(channels):
            setattr(self, f"alpha{k}", nn.Parameter(torch.full((1, c, 1, 1), 0.5)))

    @property
    def alpha(self) -> list[nn.Parameter]:
        """``[alpha_0, ..., alpha_3]``, each ``[1, channels[k], 1, 1]`` (init 0.5)."""
        return [self.alpha0, self.alpha1, self.alpha2, self.alpha3]

    def level(self, k: int, below: torch.Tensor, above_prev: torch.Tensor | None) -> torch.Tensor:
        """``L_k``: ``below`` is ``c_{k-1}`` of this column (the stem output for ``k = 0``),
        ``above_prev`` is ``c_{k+1}`` of the previous column (``None``: first column or ``k = 3``).
        Returns ``[B, channels[k], H_k, W_k]``."""
        z = self.down[k](below)
        if above_prev is not None and k < 3:
            assert self.up is not None
            z = z + self.up[k](above_prev)
        return self.blocks[k](z)

    def forward(self, x: torch.Tensor, prev: list[torch.Tensor] | None) -> list[torch.Tensor]:
        """Stem output ``x`` ``[B, C0, H, W]`` and the previous column's levels (``None`` for the
        first) → this column's levels ``[c0, c1, c2, c3]``."""
        out: list[torch.Tensor] = []
        for k in range(4):
            below = x if k == 0 else out[k - 1]
            if prev is None:
                out.append(self.level(k, below, None))
            else:
                above = prev[k + 1] if k < 3 else None
                out.append(self.level(k, below, above) + self.alpha[k] * prev[k])
        return out

    def inverse(self, x: torch.Tensor, cur: list[torch.Tensor]) -> list[torch.Tensor]:
        """The previous column's levels from this column's (not the first column):
        ``c_k^prev = (c_k - L_k(c_{k-1}, c_{k+1}^prev)) / alpha_k``, top level first. ``x``: the
        stem output this column read."""
        if self.first:
            raise ValueError("Column.inverse: the first column has no previous column to rebuild")
        prev: list[torch.Tensor | None] = [None] * 4
        for k in range(3, -1, -1):
            below = x if k == 0 else cur[k - 1]
            prev[k] = self.previous_level(k, cur[k], self.level(k, below, prev[k + 1] if k < 3 else None))
        return prev  # type: ignore[return-value]

    def previous_level(self, k: int, current: torch.Tensor, local: torch.Tensor) -> torch.Tensor:
        """The inverse of one level's update: ``c_k^prev = (c_k - L_k) / alpha_k`` from this column's
        ``c_k`` (``current``) and its ``L_k`` output (``local``)."""
        return (current - local) / self.alpha[k]

    @torch.no_grad()
    def clamp_alpha(self, minimum: float = 1e-3) -> None:
        """Keep ``|alpha_k| >= minimum`` (sign kept; 0 goes to ``+minimum``) so the inverse
        ``(c_k - L_k) / alpha_k`` stays finite."""
        for a in self.alpha:
            sign = torch.where(a >= 0, 1.0, -1.0).to(a.dtype)
            a.copy_(sign * a.abs().clamp_min(minimum))


class ImageStem(nn.Module):
    """Weight-standardised 7x7 stride 2 then 3x3 stride 2 (``[B, 3, H, W]`` → ``[B, C0, H/4, W/4]``),
    computed once per image and shared by every column. (The authors put a leaky ReLU of slope 1,
    the identity, between the two convs; it is left out.) The first conv is the encoding layer."""

    def __init__(self, in_channels: int, c0: int) -> None:
        super().__init__()
        self.conv1 = ScaledStdConv2d(in_channels, c0, 7, stride=2, padding=3)
        self.conv2 = ScaledStdConv2d(c0, c0, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` → ``[B, C0, H/4, W/4]`` (real-valued)."""
        return self.conv2(self.conv1(x))


class EventStem(nn.Module):
    """Weight-standardised 3x3 stride 1 conv for one group of event frames (``[B, 2, H, W]`` →
    ``[B, C0, H, W]``); the DVS model has one per column."""

    def __init__(self, in_channels: int, c0: int) -> None:
        super().__init__()
        self.conv = ScaledStdConv2d(in_channels, c0, 3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, in_channels, H, W]`` → ``[B, C0, H, W]``."""
        return self.conv(x)


class AuxHead(nn.Module):
    """An intermediate column's head (training only): global average pool of ``c3`` →
    weight-standardised 1x1 conv (with bias). Takes the already pooled ``[B, C3]`` (so the
    column's full ``c3`` need not be kept for backward) → logits ``[B, classes]``."""

    def __init__(self, c3: int, num_classes: int) -> None:
        super().__init__()
        self.fc = ScaledStdConv2d(c3, num_classes, 1)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """``[B, C3]`` → ``[B, classes]``."""
        return self.fc(pooled[:, :, None, None]).flatten(1)


class SpikeHead(nn.Module):
    """The last column's head, the one used at evaluation: Quant(c3) → average pool →
    weight-standardised 1x1 conv C3→classes → weight-standardised 1x1 conv classes→classes (the
    authors' leaky ReLU of slope 1 between them is the identity and is left out)."""

    def __init__(self, c3: int, num_classes: int, quant_identity: bool = False) -> None:
        super().__init__()
        self.quant = Quant(quant_identity)
        self.fc1 = ScaledStdConv2d(c3, num_classes, 1)
        self.fc2 = ScaledStdConv2d(num_classes, num_classes, 1)

    def forward(self, c3: torch.Tensor) -> torch.Tensor:
        """``[B, C3, H, W]`` → ``[B, classes]``."""
        pooled = self.quant(c3).mean(dim=(2, 3), keepdim=True)
        return self.fc2(self.fc1(pooled)).flatten(1)
