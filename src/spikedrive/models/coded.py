"""A coder as the first stage of any model: ``CodedModel(coder, model)``.

``coder`` turns images ``[B, C, H, W]`` in ``[0, 1]`` into sequences ``[T, B, C, H, W]``
(direct, Poisson / Bernoulli, RSC-I, RSC-II); ``model`` takes that time-major input and returns
logits ``[B, classes]``. Registered as the model ``coded``, so a recipe picks a coder and its
``sigma`` like any other field (``model: coded``, ``model_kwargs: {base: digits_snn, coder: rsc2,
sigma: 0.25}``).

Datasets that normalize images (CIFAR, ImageNet: ``(x - mean) / std``) pass ``input_mean`` and
``input_std``: the coder must see intensities in ``[0, 1]``, so the wrapper undoes the
normalization first. Attacks and certificates work in that pixel space (:class:`PixelInput`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..encoding import DirectEncoder, PoissonEncoder, RSCEncoder
from .registry import create_model, register_model

__all__ = ["CODERS", "CodedModel", "PixelInput", "coded", "is_stochastic", "make_coder"]

CODERS = ("direct", "poisson", "rsc1", "rsc2")


def make_coder(name: str, T: int, sigma: float = 0.0, generator: torch.Generator | None = None) -> nn.Module:
    """The coder called ``name`` (one of :data:`CODERS`) over ``T`` steps.

    ``poisson`` passes a straight-through gradient (``d s / d x = 1``) so attacks through it are
    not gradient-masked; ``rsc1`` / ``rsc2`` are RSC-I / RSC-II with noise ``sigma``; ``sigma``
    must be 0 for ``direct`` and ``poisson`` (their noise is fixed by the code itself).
    """
    if name not in CODERS:
        raise ValueError(f"make_coder: coder must be one of {CODERS}, got {name!r}")
    if name in ("direct", "poisson") and sigma:
        raise ValueError(f"make_coder: sigma={sigma!r} applies only to the rsc1 / rsc2 coders, not {name!r}; "
                         "leave it at 0")
    if name == "direct":
        return DirectEncoder(T)
    if name == "poisson":
        return PoissonEncoder(T, generator=generator, straight_through=True)
    return RSCEncoder(T, sigma, mode="I" if name == "rsc1" else "II", generator=generator)


def is_stochastic(module: nn.Module) -> bool:
    """Whether some coder inside ``module`` draws random numbers (Poisson, RSC with sigma > 0):
    its outputs then vary between calls and attacks should average gradients (EOT)."""
    for m in module.modules():
        if isinstance(m, PoissonEncoder) or (isinstance(m, RSCEncoder) and m.stochastic):
            return True
    return False


def _stats(values: Sequence[float] | None, name: str) -> torch.Tensor | None:
    if values is None:
        return None
    t = torch.as_tensor(list(values), dtype=torch.float32)
    if t.dim() != 1 or t.numel() < 1:
        raise ValueError(f"CodedModel: {name} must be one number per channel, got {values!r}")
    if name == "input_std" and bool((t <= 0).any()):
        raise ValueError(f"CodedModel: input_std must be > 0 per channel, got {values!r}")
    return t.view(-1, 1, 1)


class CodedModel(nn.Module):
    """``model(coder(pixels(x)))``: images ``[B, C, H, W]`` → logits ``[B, classes]``.

    Args:
        coder: ``[B, C, H, W]`` in ``[0, 1]`` → ``[T, B, C, H, W]``.
        model: takes ``[T, B, C, H, W]`` and returns logits ``[B, classes]``.
        input_mean, input_std: per-channel normalization of the input ``x`` (in ``[0, 1]``
            intensity units); ``None`` when ``x`` is already in ``[0, 1]``.
    """

    def __init__(self, coder: nn.Module, model: nn.Module, input_mean: Sequence[float] | None = None,
                 input_std: Sequence[float] | None = None) -> None:
        super().__init__()
        if (input_mean is None) != (input_std is None):
            raise ValueError("CodedModel: give both input_mean and input_std, or neither "
                             f"(got input_mean={input_mean!r}, input_std={input_std!r})")
        self.coder, self.model = coder, model
        mean, std = _stats(input_mean, "input_mean"), _stats(input_std, "input_std")
        self.normalized = mean is not None
        # Non-persistent: the statistics come from the recipe, so checkpoints stay plain.
        self.register_buffer("input_mean", mean if mean is not None else torch.zeros(0), persistent=False)
        self.register_buffer("input_std", std if std is not None else torch.zeros(0), persistent=False)
        self.num_classes = getattr(model, "num_classes", None)

    def to_pixels(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` in the dataset's normalization → intensities (``[0, 1]`` for real
        images; not clipped, so gradients pass)."""
        return x * self.input_std + self.input_mean if self.normalized else x

    def forward_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, classes]`` of intensity images ``[B, C, H, W]`` in ``[0, 1]``."""
        return self.model(self.coder(pixels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` (normalized as the dataset does, if ``input_mean`` is set) → logits."""
        if x.dim() != 4:
            raise ValueError(f"CodedModel: expected images [B, C, H, W], got shape {tuple(x.shape)}")
        pixels = self.to_pixels(x)
        if isinstance(self.coder, PoissonEncoder):
            # Normalization round trips leave values a few ulps outside [0, 1].
            pixels = pixels.clamp(0.0, 1.0)
        return self.forward_pixels(pixels)


class PixelInput(nn.Module):
    """A model trained on normalized images, called on intensities: ``model((p - mean) / std)``.

    Attacks clip to ``[0, 1]`` and measure budgets in intensity units, so they wrap models this
    way. A :class:`CodedModel` is unwrapped to its ``forward_pixels`` (no round trip).
    """

    def __init__(self, model: nn.Module, mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> None:
        super().__init__()
        self.model = model
        m, s = _stats(mean, "input_mean"), _stats(std, "input_std")
        self.register_buffer("mean", m if m is not None else torch.zeros(0), persistent=False)
        self.register_buffer("std", s if s is not None else torch.ones(0), persistent=False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Intensities ``[B, C, H, W]`` in ``[0, 1]`` → logits ``[B, classes]``."""
        if isinstance(self.model, CodedModel):
            return self.model.forward_pixels(pixels)
        if self.mean.numel():
            pixels = (pixels - self.mean) / self.std
        return self.model(pixels)


@register_model
def coded(base: str = "digits_snn", coder: str = "rsc2", sigma: float = 0.0, T: int = 4,
          input_mean: list[float] | None = None, input_std: list[float] | None = None, **base_kwargs) -> nn.Module:
    """A registered model ``base`` behind a coder (RSC-SNN recipes): :class:`CodedModel`.

    Args:
        base: registered model name, built with ``T`` and ``base_kwargs``; it must take
            time-major input ``[T, B, C, H, W]``.
        coder: ``"direct" | "poisson" | "rsc1" | "rsc2"`` (see :func:`make_coder`).
        sigma: Gaussian noise of ``rsc1`` / ``rsc2`` in ``[0, 1]`` intensity units.
        T: time steps of the code (also passed to ``base``).
        input_mean, input_std: the dataset's normalization (e.g. CIFAR's), undone before coding.
    """
    model = create_model(base, T=T, **base_kwargs)
    return CodedModel(make_coder(coder, T, sigma), model, input_mean, input_std)
