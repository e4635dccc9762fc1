"""Bodies of ``spikedrive export`` and ``spikedrive stream``.

Each takes a parsed-arguments object (an ``argparse.Namespace`` or anything with the same
attributes) so the CLI only declares the arguments.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..engine.checkpoint import load_model
from ..models import create_model
from .chain import model_chain
from .events_input import event_windows, read_recording
from .streaming import StreamingModel

__all__ = ["run_export", "run_stream"]


def _sample_input(model: nn.Module, batch_size: int) -> torch.Tensor:
    make = getattr(model, "example_input", None)
    if make is None:
        raise ValueError(f"export: {type(model).__name__} has no example_input(); export it from Python with "
                         "to_nir(model, sample_input) / to_onnx(model, sample_input, path)")
    return make(batch_size)


def run_export(args: Any) -> int:
    """``spikedrive export``: a checkpoint written by ``train`` to a ``.nir`` or ``.onnx`` file.

    Reads ``args.checkpoint``, ``args.out`` (the file; its suffix picks the format),
    ``args.dt`` (seconds per step in the NIR graph) and ``args.batch_size`` (the sample batch
    the export traces and checks with; the ONNX file's batch axis stays free). Prints the file
    and its check against PyTorch: NIR read back with ``from_nir``, ONNX run with onnxruntime
    (largest output difference)."""
    from . import check_onnx, from_nir, load_nir, save_nir, to_nir, to_onnx

    out = Path(args.out)
    suffix = out.suffix.lower()
    if suffix not in (".nir", ".onnx"):
        raise ValueError(f"export: --out must end in .nir or .onnx, got {str(out)!r}")
    model = load_model(args.checkpoint)
    x = _sample_input(model, int(getattr(args, "batch_size", 1) or 1))
    if suffix == ".onnx":
        batch_dim = 1 if getattr(model, "spiking_input", False) else 0  # sequences are [T, B, ...]
        to_onnx(model, x, out, batch_dim=batch_dim)
        shape = ["B" if i == batch_dim else n for i, n in enumerate(x.shape)]
        print(f"wrote {out} (ONNX, T unrolled, input [{', '.join(map(str, shape))}]); onnxruntime vs PyTorch: "
              f"max |diff| = {check_onnx(model, x, out):.3g}")
        return 0
    save_nir(to_nir(model, x, dt=float(args.dt)), out)
    net = from_nir(load_nir(out)).eval()
    chain = model_chain(model)
    with torch.no_grad():
        y = net(chain.sequence(model, x))
        y = y.mean(0) if net.readout == "mean" else y
        diff = float((y - model(x)).abs().max())
    print(f"wrote {out} (NIR, dt = {float(args.dt):g} s per step, {len(net)} modules); read back by from_nir: "
          f"max |diff| = {diff:.3g}")
    return 0


def run_stream(args: Any) -> int:
    """``spikedrive stream``: a classifier run over a recorded event file, window by window.

    Reads ``args.events`` (AEDAT / DAT / NPY / N-MNIST file), ``args.checkpoint`` (a trained
    event model) or else ``args.model`` (a registered name, untrained, seeded by ``args.seed``),
    ``args.window_us``, ``args.steps_per_window``, ``args.verify`` and ``args.threads`` (torch
    threads; default 1, because one small window per call is faster on one thread than split
    across cores that other work may hold). Prints, per window, its
    time span, event count, the prediction so far (arg-max of the running mean of the logits)
    with its softmax probability, and the window's latency; with ``verify``, the largest
    difference between the streamed logits and one multi-step forward over all windows."""
    before = torch.get_num_threads()
    torch.set_num_threads(int(getattr(args, "threads", None) or 1))
    try:
        return _stream(args)
    finally:
        torch.set_num_threads(before)


def _stream(args: Any) -> int:
    if getattr(args, "checkpoint", None):
        model = load_model(args.checkpoint)
    else:
        torch.manual_seed(int(getattr(args, "seed", 0)))
        model = create_model(args.model).eval()
    size = getattr(model, "image_size", None)
    if size is None or not getattr(model, "spiking_input", False):
        raise ValueError(f"stream: the model must take binary event frames [T, B, 2, S, S] (e.g. ndigits_snn), got "
                         f"{type(model).__name__}")
    events, sensor = read_recording(args.events)
    print(f"{args.events}: {len(events)} events, sensor {sensor[0]}x{sensor[1]} -> model input {size}x{size}")
    stream = StreamingModel(model, readout="mean" if model_chain(model).readout == "mean" else "none")
    windows, latencies = [], []
    for i, (t0, t1, n, frames) in enumerate(event_windows(events, sensor, size, int(args.window_us),
                                                         int(args.steps_per_window))):
        start = time.perf_counter()
        logits = stream(frames)
        latency = (time.perf_counter() - start) * 1e3
        latencies.append(latency)
        windows.append(frames)
        prob = torch.softmax(logits[0], 0)
        print(f"window {i:3d}  t=[{t0}, {t1}) us  events {n:5d}  prediction {int(prob.argmax())} "
              f"(p={float(prob.max()):.2f})  latency {latency:.2f} ms")
    if not windows:
        print("no events: nothing to classify")
        return 0
    print(f"{len(windows)} windows, latency median {sorted(latencies)[len(latencies) // 2]:.2f} ms")
    if getattr(args, "verify", False):
        with torch.no_grad():
            full = model(torch.cat(windows))
        print(f"streamed vs multi-step on the whole sequence: max |diff| = {float((full - logits).abs().max()):.3g}")
    return 0
