"""Input coders: direct (repeat), Poisson (Bernoulli rate), latency (time to first spike)."""

from .coders import DirectEncoder, LatencyEncoder, PoissonEncoder, direct_encode, latency_encode, poisson_encode

__all__ = ["direct_encode", "poisson_encode", "latency_encode", "DirectEncoder", "PoissonEncoder", "LatencyEncoder"]

# Randomized-smoothing coding (RSC-I / RSC-II), appended by the robustness work.
from .rsc import RSC_MODES, RSCEncoder, rsc_encode  # noqa: E402

__all__ += ["RSC_MODES", "RSCEncoder", "rsc_encode"]
