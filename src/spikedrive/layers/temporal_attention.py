"""TA-SNN's temporal-wise attention (Yao et al., ICCV 2021) with inference-time frame dropping.

Placed after conv -> BN (-> pool) and before the neuron, on ``[T, B, C, H, W]`` or ``[T, B, L]``:
squeeze ``s_t = mean over everything but (t, b)``, excite ``d = sigmoid(W2 relu(W1 s + b1) + b2)``
(biased linear layers ``T -> T/r -> T``), scale ``X_t <- d_t X_t``.

Frame dropping (the paper's inference trick; not in the authors' code). With ``drop_threshold``
set and the module in eval mode, frames whose score ``d_t`` is below the threshold are *removed*
from the sequence: the module returns ``[T', B, ...]`` with ``T' <= T`` and every layer after it
runs on ``T'`` frames only (convolutions, BN and neurons are per-frame or recurrent, so they take
any length; the neuron integrates the kept frames back to back). The batch shares one time axis,
so a frame is skipped only when *every* sample in the batch scores it below the threshold; a
sample whose own score is low in a frame kept for another sample still gets that frame scaled by
its (low) score. With batch size 1 (streaming inference) the skipping is exact per sample. At
least one frame is always kept (the best-scored one), so a network never sees an empty sequence.

After each call, ``last_skipped`` is the number of frames removed and ``last_kept`` the original
time indices of the kept ones (``[T']`` int64); ``skipped_total`` / ``frames_total`` accumulate
over calls for reporting the skipped fraction. Downstream TA layers, whose MLP needs all ``T``
scores, take ``frames=`` (the original indices of the frames they receive): the squeeze of a
skipped frame is taken as 0, as if it carried no activity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["TemporalAttention", "check_time_major"]


def check_time_major(x: torch.Tensor, who: str, steps: int | None = None) -> None:
    """Raise ``ValueError`` unless ``x`` is ``[T, B, ...]`` with at least 3 dims (and ``T == steps``)."""
    if not isinstance(x, torch.Tensor) or x.dim() < 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{who}: expected input [T, B, C, H, W] or [T, B, L], got {shape}")
    if steps is not None and x.shape[0] != steps:
        raise ValueError(f"{who}: expected T = {steps} time steps in dim 0, got shape {tuple(x.shape)}")


def _positive_int(value: int, who: str, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{who}: {name} must be a positive integer, got {value!r}")
    return value


class TemporalAttention(nn.Module):
    """Temporal-wise attention: one score per time step and sample, ``[T, B, ...] -> [T, B, ...]``
    (``[T', B, ...]`` with frame dropping, see the module docs).

    Args:
        T: time steps the scores are computed over.
        reduction: ``r``; the hidden width is ``max(1, T // r)`` (TA-SNN: 16 for Gesture at
            T = 30, 5 for CIFAR10-DVS and SHD at T = 10).
        drop_threshold: in eval mode, skip frames whose score is below this (in ``(0, 1)``);
            ``None`` keeps every frame. Ignored in training.
    """

    def __init__(self, T: int, reduction: int = 1, drop_threshold: float | None = None) -> None:
        super().__init__()
        who = type(self).__name__
        self.T = _positive_int(T, who, "T")
        self.reduction = _positive_int(reduction, who, "reduction")
        self.drop_threshold = drop_threshold
        hidden = max(1, T // reduction)
        self.fc1 = nn.Linear(T, hidden)
        self.fc2 = nn.Linear(hidden, T)
        self.last_skipped = 0
        self.last_kept: torch.Tensor | None = None
        self.skipped_total = 0
        self.frames_total = 0

    @property
    def drop_threshold(self) -> float | None:
        """Score below which frames are skipped at inference (``None``: never)."""
        return self._drop_threshold

    @drop_threshold.setter
    def drop_threshold(self, value: float | None) -> None:
        if value is not None and not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"TemporalAttention: drop_threshold must be None or in [0, 1], got {value!r}")
        self._drop_threshold = None if value is None else float(value)

    def scores(self, x: torch.Tensor, frames: torch.Tensor | None = None) -> torch.Tensor:
        """Scores ``d`` in ``(0, 1)``, ``[T', B]``, for ``x`` ``[T', B, ...]`` holding the frames
        ``frames`` (original indices, default all ``T``)."""
        who = type(self).__name__
        check_time_major(x, who, None if frames is not None else self.T)
        s = x.flatten(2).mean(-1).transpose(0, 1)  # [B, T']
        if frames is not None:
            if frames.shape != (x.shape[0],):
                raise ValueError(f"{who}: frames must hold one index per input frame ({x.shape[0]}), "
                                 f"got shape {tuple(frames.shape)}")
            full = s.new_zeros(s.shape[0], self.T)
            full[:, frames] = s
            s = full
        d = torch.sigmoid(self.fc2(F.relu(self.fc1(s))))
        if frames is not None:
            d = d[:, frames]
        return d.transpose(0, 1)

    def forward(self, x: torch.Tensor, frames: torch.Tensor | None = None) -> torch.Tensor:
        """``[T', B, ...] -> [T'', B, ...]``: each frame scaled by its score; frames below
        ``drop_threshold`` removed in eval mode (``T'' <= T'``)."""
        d = self.scores(x, frames)
        y = x * d.reshape(d.shape + (1,) * (x.dim() - 2))
        index = frames if frames is not None else torch.arange(x.shape[0], device=x.device)
        self.last_skipped, self.last_kept = 0, index
        if self.training or self._drop_threshold is None:
            return y
        keep = (d >= self._drop_threshold).any(dim=1)
        if not bool(keep.any()):
            keep[d.max(dim=1).values.argmax()] = True  # never return an empty sequence
        kept = keep.nonzero().squeeze(1)
        self.last_skipped = int(x.shape[0] - kept.numel())
        self.last_kept = index[kept]
        self.skipped_total += self.last_skipped
        self.frames_total += int(x.shape[0])
        return y[kept]

    def extra_repr(self) -> str:
        return f"T={self.T}, reduction={self.reduction}, drop_threshold={self._drop_threshold}"
