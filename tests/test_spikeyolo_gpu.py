"""SpikeYOLO on a CUDA device: the spike-driven conversion with the GPU neuron kernels, and the
released size's training step (time and memory printed). Skipped without CUDA.

The conversion is compared in float64: it is exact in real arithmetic, but in float32 the sum of
D binary maps and the one pass over the integers round differently, and a membrane within an ulp
of a rounding boundary (x.5) then flips one integer by 1. Seen on an H200 (SpikeYOLO-s, 320 px,
T = 1): one flip among 3.3M neurons in the first ConvBlock grew to output differences of 2.8
through the depth of the network; in float64 the outputs agreed exactly."""

from __future__ import annotations

import time

import pytest
import torch

import spikedrive.models.spikeyolo  # noqa: F401  (registers the variants)
from spikedrive.analysis import assert_spike_driven
from spikedrive.layers import to_spike_driven
from spikedrive.layers.spike_driven import outputs_differ
from spikedrive.models.registry import create_model
from helpers import calibrate_bn

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.fixture(autouse=True)
def _exact_float32():
    # TF32 convolutions round the integer-input pass and the D binary passes differently.
    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


def test_pico_spike_driven_on_cuda_equals_integer() -> None:
    torch.manual_seed(0)
    model = create_model("spikeyolo_pico", num_classes=2, T=2).cuda().double()
    x = torch.rand(4, 3, 64, 64, device="cuda", dtype=torch.float64)
    calibrate_bn(model, x)
    model.reparameterize()
    with torch.no_grad():
        ref = model(x)
    to_spike_driven(model, x)
    with torch.no_grad():
        out = model(x)
    assert outputs_differ(ref, out, rtol=1e-5, atol=1e-5) is None
    assert_spike_driven(model, x)


@pytest.mark.parametrize("name, size, T", [("spikeyolo_s", 640, 1), ("spikeyolo_gen1", 320, 2)])
def test_released_size_trains_and_converts_on_cuda(name: str, size: int, T: int) -> None:
    torch.manual_seed(0)
    nc = 80 if name == "spikeyolo_s" else 2
    model = create_model(name, num_classes=nc, T=T).cuda()
    x = torch.rand(8, 3, size, size, device="cuda")
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(4):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = model(x)
        loss = sum(o.float().square().mean() for o in out)
        opt.zero_grad()
        loss.backward()
        opt.step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    assert torch.isfinite(loss)
    peak = torch.cuda.max_memory_allocated() / 2**30
    print(f"\n{name}: batch 8, {size}px, T={T}: train step {min(times[1:]) * 1e3:.0f} ms, peak {peak:.1f} GiB")
    model.double()
    small = x[:2, :, : size // 2, : size // 2].double()
    calibrate_bn(model, small)
    model.reparameterize()
    with torch.no_grad():
        ref = model(small)
    to_spike_driven(model, small, check=False)
    with torch.no_grad():
        got = model(small)
    diffs = [(a - b).abs().max().item() for a, b in zip(ref, got)]
    scale = max(a.abs().max().item() for a in ref)
    print(f"{name}: spike-driven vs integer, max |diff| per level {[f'{d:.2e}' for d in diffs]} (outputs up to {scale:.1f})")
    assert outputs_differ(ref, got, rtol=1e-4, atol=1e-4) is None
