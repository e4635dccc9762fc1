"""SpikeYOLO (Luo et al., ECCV 2024): a spiking YOLOv8 with I-LIF neurons.

Architecture as released (BICLab/SpikeYOLO, ``snn_yolov8.yaml`` and ``yolo_spikformer.py``), with
widths ``w = (w4, w8, w16, w32)`` at strides 4 / 8 / 16 / 32 and backbone repeats ``n``:

* stem: conv 7x7 stride 4 (padding 2, bias) + BN — the encoding layer, the only MAC layer;
* backbone: ``AllConvBlock(w4, 4) x n1``; down (neuron + 3x3 s2 conv with bias + BN) to w8;
  ``AllConvBlock(w8, 4) x n2``; down; ``ConvBlock(w16, 3) x n3``; down; ``ConvBlock(w32, 2) x n4``;
  ``SPPF(w32, w32, 5)``;
* neck (YOLOv8 PAN): ``StdConv1x1 w32->w16`` (kept), up x2, ``ConvBlock(w16, 3)``, concat P4;
  ``StdConv1x1 -> w8`` (kept), up x2, ``AllConvBlock(w8, 4)``, concat P3; ``StdConv1x1 -> w8``,
  ``AllConvBlock(w8, 4)`` = **P3**; ``StdConv3x3 s2``, concat the kept w8 map, ``ConvBlock(w16, 3)``
  = **P4**; ``StdConv3x3 s2``, concat the kept w16 map, ``ConvBlock(w32, r_last)`` = **P5**
  (``r_last`` = 1 for n / s, 2 for m / l, as the yaml's comment asks);
* head: :class:`~.spikeyolo_blocks.DetectHead` on (P3, P4, P5).

I-LIF: ``D = 4``, ``beta = 0.25``; COCO runs ``T = 1`` (images repeated), Gen1 ``T`` event frames
with the tau-form charge (``charge="tau"``). ``ann=True`` puts ReLU in every neuron's place (the
same-architecture ANN of the paper's comparison).

Output contract (shared with :mod:`spikedrive.detection`): a list of three raw maps, one per
stride in ``strides = (8, 16, 32)``, each ``[B, 4 * reg_max + num_classes, H / s, W / s]``,
averaged over time; the first ``4 * reg_max`` channels are DFL box-side logits, the rest class
logits.

Deployment: :meth:`SpikeYOLO.reparameterize` folds every RepConv / SepRepConv into one 3x3 conv;
then :func:`spikedrive.to_spike_driven` expands the I-LIF integers into ``D`` binary virtual steps
(the training form puts batch norm directly on I-LIF output inside SepRepConv, which the
conversion rightly refuses).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..encoding import direct_encode
from ..layers import Conv2d
from .registry import ModelInput, register_model
from .spikeyolo_blocks import (
    SPPF, AllConvBlock, ConvBlock, DetectHead, StdConv, Upsample, bn, make_neuron, reparameterize,
)

__all__ = ["SpikeYOLO", "SpikeYOLOConfig", "SIZES"]


@dataclass(frozen=True)
class SpikeYOLOConfig:
    """One size: ``widths`` at strides 4 / 8 / 16 / 32, backbone ``repeats`` per stage, the ratio
    of the last neck ConvBlock, and optional head widths (``None``: YOLOv8's formula)."""

    widths: tuple[int, int, int, int]
    repeats: tuple[int, int, int, int]
    last_ratio: int = 1
    box_width: int | None = None
    cls_width: int | None = None


#: The released sizes (width multiple 0.375 / 0.5 / 0.625 / 0.75 of 128..1024; depth multiple
#: 0.33 / 0.5 of 3, 6, 9, 3 with Python rounding), plus CPU-sized ones for tests and demos.
SIZES: dict[str, SpikeYOLOConfig] = {
    "n": SpikeYOLOConfig((48, 96, 192, 384), (1, 2, 3, 1)),
    "s": SpikeYOLOConfig((64, 128, 256, 512), (1, 2, 3, 1)),
    "m": SpikeYOLOConfig((80, 160, 320, 640), (2, 3, 4, 2), last_ratio=2),
    "l": SpikeYOLOConfig((96, 192, 384, 768), (2, 3, 4, 2), last_ratio=2),
    "tiny": SpikeYOLOConfig((16, 32, 64, 128), (1, 1, 1, 1), box_width=32),
    "pico": SpikeYOLOConfig((8, 16, 32, 64), (1, 1, 1, 1), box_width=16),
}


class SpikeYOLO(nn.Module):
    """SpikeYOLO detector (see the module docs).

    Input: images ``[B, 3, H, W]`` (repeated over ``T`` steps) or frame sequences
    ``[T', B, 3, H, W]`` (their own ``T'``); ``H`` and ``W`` multiples of 32. Output: a list of
    three ``[B, 4 * reg_max + num_classes, H / s, W / s]`` raw maps for ``s`` in :attr:`strides`.

    Args:
        num_classes: object classes (80 on COCO, 2 on Gen1).
        size: a key of :data:`SIZES` (``"n"``, ``"s"``, ``"m"``, ``"l"``, ``"tiny"``, ``"pico"``)
            or a :class:`SpikeYOLOConfig`.
        T: time steps for image input.
        D: I-LIF's largest integer (virtual time steps).
        charge: ``"decay"`` (COCO, ``H = 0.25 V + X``) or ``"tau"`` (Gen1, ``H = V + (X - V) / tau``).
        tau: time constant of the ``"tau"`` charge, in steps.
        ann: ReLU instead of I-LIF (the same-architecture ANN).
        in_channels: input channels (3: the release feeds event frames as three equal channels).
        reg_max: DFL bins per box side.
    """

    strides: tuple[int, ...] = (8, 16, 32)

    def __init__(self, num_classes: int = 80, size: str | SpikeYOLOConfig = "s", T: int = 1, D: int = 4,
                 charge: str = "decay", tau: float = 2.0, ann: bool = False, in_channels: int = 3,
                 reg_max: int = 16) -> None:
        super().__init__()
        who = type(self).__name__
        if isinstance(size, str):
            if size not in SIZES:
                raise ValueError(f"{who}: size must be one of {sorted(SIZES)} or a SpikeYOLOConfig, got {size!r}")
            size = SIZES[size]
        for name, value in (("num_classes", num_classes), ("T", T), ("in_channels", in_channels),
                            ("reg_max", reg_max)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{who}: {name} must be an integer >= 1, got {value!r}")
        self.num_classes, self.T, self.D, self.ann = num_classes, T, D, ann
        self.in_channels, self.reg_max, self.config = in_channels, reg_max, size
        neuron = make_neuron(D, charge, tau, ann)
        w4, w8, w16, w32 = size.widths
        n1, n2, n3, n4 = size.repeats

        def down(c_in: int, c_out: int) -> StdConv:
            return StdConv(c_in, c_out, 3, 2, neuron, bias=True)

        self.stem = nn.Sequential(Conv2d(in_channels, w4, 7, stride=4, padding=2, bias=True, encoding=True), bn(w4))
        self.stage1 = nn.Sequential(*(AllConvBlock(w4, 4, neuron) for _ in range(n1)))
        self.stage2 = nn.Sequential(down(w4, w8), *(AllConvBlock(w8, 4, neuron) for _ in range(n2)))
        self.stage3 = nn.Sequential(down(w8, w16), *(ConvBlock(w16, 3, neuron) for _ in range(n3)))
        self.stage4 = nn.Sequential(down(w16, w32), *(ConvBlock(w32, 2, neuron) for _ in range(n4)),
                                    SPPF(w32, w32, neuron, 5))
        self.reduce5 = StdConv(w32, w16, 1, 1, neuron)
        self.up5 = nn.Sequential(Upsample(), ConvBlock(w16, 3, neuron))
        self.reduce4 = StdConv(2 * w16, w8, 1, 1, neuron)
        self.up4 = nn.Sequential(Upsample(), AllConvBlock(w8, 4, neuron))
        self.out3 = nn.Sequential(StdConv(2 * w8, w8, 1, 1, neuron), AllConvBlock(w8, 4, neuron))
        self.down3 = StdConv(w8, w8, 3, 2, neuron)
        self.out4 = ConvBlock(2 * w8, 3, neuron)
        self.down4 = StdConv(2 * w8, w16, 3, 2, neuron)
        self.out5 = ConvBlock(2 * w16, size.last_ratio, neuron)
        self.head = DetectHead(num_classes, (w8, 2 * w8, 2 * w16), self.strides, neuron, reg_max,
                               size.box_width, size.cls_width)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``[B, C, H, W]`` or ``[T, B, C, H, W]`` -> three ``[B, 4 * reg_max + nc, H / s, W / s]``."""
        who = type(self).__name__
        shape = tuple(x.shape)
        if x.dim() not in (4, 5) or x.shape[-3] != self.in_channels:
            raise ValueError(f"{who}: expected images [B, {self.in_channels}, H, W] or frames [T, B, "
                             f"{self.in_channels}, H, W], got shape {shape}")
        if x.shape[-2] % 32 or x.shape[-1] % 32:
            raise ValueError(f"{who}: input height and width must be multiples of 32 (the coarsest stride), "
                             f"got {tuple(x.shape[-2:])}; letterbox or pad the input")
        if x.dim() == 4:
            x = direct_encode(x, self.T)
        p3 = self.stage2(self.stage1(self.stem(x)))
        p4 = self.stage3(p3)
        p5 = self.stage4(p4)
        k5 = self.reduce5(p5)
        k4 = self.reduce4(torch.cat((self.up5(k5), p4), dim=2))
        o3 = self.out3(torch.cat((self.up4(k4), p3), dim=2))
        o4 = self.out4(torch.cat((self.down3(o3), k4), dim=2))
        o5 = self.out5(torch.cat((self.down4(o4), k5), dim=2))
        return self.head([o3, o4, o5])

    def reparameterize(self) -> "SpikeYOLO":
        """Fold every RepConv / SepRepConv into one 3x3 conv with bias, in place (deployment).

        Uses the running BN statistics: outputs equal the eval-mode outputs before. Afterwards every
        synaptic layer but the stem reads neuron output, so :func:`spikedrive.to_spike_driven`
        applies. The fused convs are dense 3x3 (the factorised 1x1 / depthwise chain is not), so the
        deployed network is larger: SpikeYOLO-s goes from 23.15M to 60.97M parameters and, at
        320 px and T = 1, from 15.2 G to 26.1 G synaptic MACs per step. Returns ``self``.
        """
        reparameterize(self)
        return self

    def example_input(self, size: int = 64, batch: int = 1) -> torch.Tensor:
        """A ``[batch, C, size, size]`` image batch on the model's device (for tracing conversions)."""
        p = next(self.parameters())
        return torch.rand(batch, self.in_channels, size, size, device=p.device, dtype=p.dtype)


# The detection datasets (spikedrive.detection.data: letterboxed to multiples of 32) as the engine
# registers them; SpikeYOLO's Gen1 run reads T = 2 bins of the 250 ms before each label, at 320 px.
_COCO = ModelInput("coco_detection", {"img_size": 640}, task="detection")
_GEN1 = ModelInput("gen1_detection", {"T": 2, "window_us": 250_000, "img_size": 320}, task="detection")


def _fixed(name: str, kwargs: dict[str, Any], **fixed: Any) -> None:
    for key, value in fixed.items():
        if key in kwargs:
            raise TypeError(f"{name}: {key} is fixed by the name ({value}), got {key}={kwargs[key]!r}; "
                            f"build SpikeYOLO({key}=...) directly for another")


def _create(size: str, num_classes: int, T: int, kwargs: dict[str, Any], name: str | None = None) -> SpikeYOLO:
    _fixed(name or f"spikeyolo_{size}", kwargs, size=size)
    return SpikeYOLO(num_classes=num_classes, size=size, T=T, **kwargs)


@register_model(default_input=_COCO)
def spikeyolo_n(num_classes: int = 80, T: int = 1, **kwargs: Any) -> SpikeYOLO:
    """SpikeYOLO-n (widths 48..384; 13.27M parameters at nc = 80 in the release)."""
    return _create("n", num_classes, T, kwargs)


@register_model(default_input=_COCO)
def spikeyolo_s(num_classes: int = 80, T: int = 1, **kwargs: Any) -> SpikeYOLO:
    """SpikeYOLO-s (widths 64..512; 23.15M at nc = 80, the released COCO and Gen1 model)."""
    return _create("s", num_classes, T, kwargs)


@register_model(default_input=_COCO)
def spikeyolo_m(num_classes: int = 80, T: int = 1, **kwargs: Any) -> SpikeYOLO:
    """SpikeYOLO-m (widths 80..640, repeats 2/3/4/2; 47.84M at nc = 80)."""
    return _create("m", num_classes, T, kwargs)


@register_model(default_input=_COCO)
def spikeyolo_l(num_classes: int = 80, T: int = 1, **kwargs: Any) -> SpikeYOLO:
    """SpikeYOLO-l (widths 96..768, repeats 2/3/4/2; 68.48M at nc = 80)."""
    return _create("l", num_classes, T, kwargs)


@register_model(default_input=_GEN1)
def spikeyolo_gen1(num_classes: int = 2, T: int = 2, **kwargs: Any) -> SpikeYOLO:
    """SpikeYOLO-s for Gen1: two classes, ``T`` event frames, the tau-form I-LIF charge."""
    kwargs.setdefault("charge", "tau")
    return _create("s", num_classes, T, kwargs, name="spikeyolo_gen1")


@register_model
def spikeyolo_tiny(num_classes: int = 2, T: int = 2, **kwargs: Any) -> SpikeYOLO:
    """A CPU-sized SpikeYOLO (widths 16..128, one block per stage, box head 32 wide)."""
    return _create("tiny", num_classes, T, kwargs)


@register_model
def spikeyolo_pico(num_classes: int = 2, T: int = 2, **kwargs: Any) -> SpikeYOLO:
    """The smallest SpikeYOLO (widths 8..64), for tests and minute-long CPU training."""
    return _create("pico", num_classes, T, kwargs)


def _ann(size: str, num_classes: int, kwargs: dict[str, Any]) -> SpikeYOLO:
    _fixed(f"spikeyolo_{size}_ann", kwargs, size=size, ann=True)
    kwargs.setdefault("T", 1)
    return SpikeYOLO(num_classes=num_classes, size=size, ann=True, **kwargs)


@register_model(default_input=_COCO)
def spikeyolo_s_ann(num_classes: int = 80, **kwargs: Any) -> SpikeYOLO:
    """The same-architecture ANN of SpikeYOLO-s (ReLU for I-LIF, one step)."""
    return _ann("s", num_classes, kwargs)


@register_model
def spikeyolo_tiny_ann(num_classes: int = 2, **kwargs: Any) -> SpikeYOLO:
    """The same-architecture ANN of :func:`spikeyolo_tiny`."""
    return _ann("tiny", num_classes, kwargs)


@register_model
def spikeyolo_pico_ann(num_classes: int = 2, **kwargs: Any) -> SpikeYOLO:
    """The same-architecture ANN of :func:`spikeyolo_pico`."""
    return _ann("pico", num_classes, kwargs)
