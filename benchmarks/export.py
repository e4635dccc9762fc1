"""Deployment of the demo model: NIR round trips (spikedrive, snnTorch), ONNX and streaming.

    .venv/bin/python benchmarks/export.py --checkpoint runs/demo/best.pt
    .venv/bin/python benchmarks/export.py --checkpoint runs/demo/best.pt \
        --event-checkpoint runs/demo_ndigits/best.pt      # a trained event model for streaming

Measures, on the held-out **test** split of the checkpoint's recipe (the 450 digits of
``spikedrive demo``):

* ``to_nir`` -> ``save_nir`` -> ``load_nir`` -> ``from_nir``: prediction agreement and the
  largest logit difference against the original model;
* the same file read by snnTorch's ``import_from_nir`` (run one sample at a time: its
  ``Flatten`` import keeps NIR's batch-free ``start_dim``, which flattens a batch too);
* a NIR graph written by snnTorch's ``export_to_nir`` (a seeded two-layer ``Leaky`` MLP on the
  flattened digits) imported by ``from_nir``: spikes compared over T = 8;
* ``to_onnx`` (batch 1, T unrolled): largest difference to PyTorch over the test split, and
  batch-1 CPU latency of onnxruntime vs eager PyTorch (median of ``--repeats`` calls, one thread);
* ``StreamingModel`` over ``sample_nmnist.bin`` (real ATIS recording) in windows, against one
  multi-step forward over the whole recording.

Writes benchmarks/results/export.json.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

import torch
from torch import nn

from spikedrive.engine import build_datasets
from spikedrive.engine.checkpoint import load_model, load_run
from spikedrive.export import StreamingModel, check_onnx, from_nir, load_nir, save_nir, to_nir, to_onnx
from spikedrive.export.chain import model_chain
from spikedrive.export.events_input import event_windows, read_recording
from spikedrive.models import create_model

EVENTS = Path(__file__).resolve().parents[1].parent / "shared" / "testdata" / "events" / "sample_nmnist.bin"


def _test_split(checkpoint: str) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    cfg, model = load_run(checkpoint)
    test = build_datasets(cfg)[2]
    x = torch.stack([torch.as_tensor(test[i][0], dtype=torch.float32) for i in range(len(test))])
    y = torch.as_tensor([int(test[i][1]) for i in range(len(test))])
    return model.eval(), x, y


def _compare(ref: torch.Tensor, got: torch.Tensor, y: torch.Tensor) -> dict:
    return {"agreement": float((ref.argmax(1) == got.argmax(1)).float().mean()),
            "max_abs_logit_diff": float((ref - got).abs().max()),
            "samples_with_logit_diff_above_1e-5": int(((ref - got).abs().amax(1) > 1e-5).sum()),
            "accuracy_original": float((ref.argmax(1) == y).float().mean()),
            "accuracy_imported": float((got.argmax(1) == y).float().mean())}


def _snntorch_import(graph, seq: torch.Tensor) -> torch.Tensor:
    from snntorch import utils
    from snntorch.import_nir import import_from_nir

    with redirect_stdout(io.StringIO()):  # it prints its weight-scaling warnings
        net = import_from_nir(graph)
    outs = []
    with torch.no_grad():
        for b in range(seq.shape[1]):
            utils.reset(net)
            outs.append(torch.stack([net(seq[t, b:b + 1])[0].reshape(-1) for t in range(seq.shape[0])]).mean(0))
    return torch.stack(outs)


def _snntorch_written(x: torch.Tensor, steps: int = 8) -> dict:
    import snntorch as snn
    from snntorch import utils
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    # per-neuron beta / threshold: snnTorch 1.0 writes scalar ones with shapes nir 1.0.8 refuses
    leaky = lambda n, b: snn.Leaky(beta=torch.full((n,), b), threshold=torch.ones(n), init_hidden=True,  # noqa: E731
                                   reset_mechanism="zero")
    net = nn.Sequential(nn.Linear(64, 64), leaky(64, 0.75), nn.Linear(64, 10), leaky(10, 0.5))
    with torch.no_grad():
        net[2].weight.mul_(4.0)
    flat = x.flatten(1) * 2.0
    with redirect_stdout(io.StringIO()):
        graph = export_to_nir(net, flat[0])
    with tempfile.TemporaryDirectory() as tmp:
        save_nir(graph, Path(tmp) / "snntorch.nir")
        ours = from_nir(load_nir(Path(tmp) / "snntorch.nir")).eval()
    seq = flat.unsqueeze(0).expand(steps, *flat.shape)
    with torch.no_grad():
        utils.reset(net)
        ref = torch.stack([net(seq[t]) for t in range(steps)])
        got = ours(seq)
    return {"nodes": {k: type(v).__name__ for k, v in graph.nodes.items()}, "T": steps, "samples": int(x.shape[0]),
            "spikes_compared": int(ref.numel()), "spike_mismatches": int((ref != got).sum()),
            "output_firing_rate": float(ref.mean())}


def _latency(fn, x: torch.Tensor, repeats: int) -> float:
    for _ in range(10):
        fn(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a digits_snn checkpoint (spikedrive demo's best.pt)")
    parser.add_argument("--event-checkpoint", default=None, help="a trained ndigits_snn checkpoint for streaming "
                                                                 "(default: an untrained, seeded ndigits_snn)")
    parser.add_argument("--repeats", type=int, default=200, help="latency calls per engine (default 200)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "export.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, x, y = _test_split(args.checkpoint)
    chain = model_chain(model)
    result: dict = {"checkpoint": args.checkpoint, "test_samples": int(x.shape[0]), "torch_threads": 1}

    with torch.no_grad(), tempfile.TemporaryDirectory() as tmp:
        ref = model(x)
        graph = to_nir(model, x[:2])
        save_nir(graph, Path(tmp) / "demo.nir")
        graph = load_nir(Path(tmp) / "demo.nir")
        seq = chain.sequence(model, x)
        back = from_nir(graph).eval()
        result["nir_from_nir"] = _compare(ref, back(seq).mean(0), y)
        result["nir_nodes"] = {k: type(v).__name__ for k, v in graph.nodes.items()}
        try:
            result["nir_snntorch_import"] = _compare(ref, _snntorch_import(graph, seq), y)
        except ImportError as exc:
            result["nir_snntorch_import"] = f"skipped: {exc}"
    try:
        result["nir_written_by_snntorch"] = _snntorch_written(x)
    except ImportError as exc:
        result["nir_written_by_snntorch"] = f"skipped: {exc}"

    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        path = to_onnx(model, x[:1], Path(tmp) / "demo.onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        onnx_out = torch.cat([torch.from_numpy(session.run(None, {name: x[i:i + 1].numpy()})[0])
                              for i in range(x.shape[0])])
        result["onnx"] = {"export": "torch.onnx.export(dynamo=True), T unrolled, batch axis free, run at batch 1",
                          "check_onnx_max_diff_sample": check_onnx(model, x[:1], path),
                          **_compare(ref, onnx_out, y)}
        with torch.no_grad():
            eager = _latency(lambda v: model(v), x[:1], args.repeats)
            for m in model.modules():
                if hasattr(m, "backend"):
                    m.backend = "reference"
            eager_ref = _latency(lambda v: model(v), x[:1], args.repeats)
        result["latency_batch1_ms"] = {
            "onnxruntime": _latency(lambda v: session.run(None, {name: v}), x[:1].numpy(), args.repeats),
            "pytorch_eager_auto_backend": eager, "pytorch_eager_reference_backend": eager_ref,
            "repeats": args.repeats}

    events, sensor = read_recording(EVENTS)
    if args.event_checkpoint:
        emodel = load_model(args.event_checkpoint)
    else:
        torch.manual_seed(0)
        emodel = create_model("ndigits_snn").eval()
    stream = StreamingModel(emodel, readout="mean")
    windows, lat, logits = [], [], None
    for _, _, _, frames in event_windows(events, sensor, emodel.image_size, 40_000, 1):
        start = time.perf_counter()
        logits = stream(frames)
        lat.append((time.perf_counter() - start) * 1e3)
        windows.append(frames)
    with torch.no_grad():
        full = emodel(torch.cat(windows))
    result["streaming"] = {"file": EVENTS.name, "events": int(len(events)), "windows": len(windows),
                           "window_us": 40_000, "steps_per_window": 1,
                           "model": args.event_checkpoint or "ndigits_snn (untrained, seed 0)",
                           "max_abs_diff_vs_multistep": float((full - logits).abs().max()),
                           "prediction_streamed": int(logits.argmax()), "prediction_multistep": int(full.argmax()),
                           "latency_per_window_ms_median": statistics.median(lat[1:] or lat)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
