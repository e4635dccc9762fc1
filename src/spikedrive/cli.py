"""``spikedrive <command>``: the command line. The only module that parses arguments.

Every user error (a bad argument, a bad config value, a missing file, a diverged run) ends in one
line naming what was wrong and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Sequence

__all__ = ["main"]

#: Default of ``energy --samples`` (the engine's report uses the same number).
ENERGY_SAMPLES = 256

#: Printed whenever energy is measured on weights no training produced.
UNTRAINED_WARNING = ("WARNING: untrained weights (random init): energy and firing rates are not those of a "
                     "trained model; pass --checkpoint")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``spikedrive <cmd>: error: ...``), exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _int_at_least(minimum: int):
    """An argparse type: an integer >= ``minimum``, with an error naming the value otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return value

    return parse


def _overrides(parser: argparse.ArgumentParser, help: str) -> None:
    """The trailing ``key=value`` recipe overrides of a command."""
    parser.add_argument("overrides", nargs="*", metavar="key=value", help=help)


def _checkpoint(parser: argparse.ArgumentParser,
                help: str = "a checkpoint written by train (last.pt or best.pt)") -> None:
    """The positional checkpoint of a command that reads one."""
    parser.add_argument("checkpoint", help=help)


def _task_commands(sub: Any, name: str, what: str, recipe: str, data: str, metrics: str,
                   predict: str) -> argparse.ArgumentParser:
    """``spikedrive <name> train|eval|predict`` of a task; returns the predict parser for extras."""
    cmd = sub.add_parser(name, help=f"{what}: train a recipe, evaluate or predict from a checkpoint")
    tasks = cmd.add_subparsers(dest=f"{name}_command", required=True)
    tr = tasks.add_parser("train", help=f"train a {name} recipe ({recipe.rsplit('/', 1)[0]}/*.yaml)")
    tr.add_argument("--config", required=True, help=f"{name} recipe, e.g. {recipe}")
    tr.add_argument("--resume", action="store_true", help="continue from <out_dir>/last.pt")
    _overrides(tr, f"recipe overrides, e.g. data_root={data}")
    ev = tasks.add_parser("eval", help=f"{metrics} of a checkpoint on its val and test splits")
    _checkpoint(ev, f"a checkpoint written by {name} train (last.pt or best.pt)")
    _overrides(ev, f"where the data is, e.g. data_root={data}")
    pr = tasks.add_parser("predict", help=predict)
    _checkpoint(pr, f"a checkpoint written by {name} train")
    pr.add_argument("--out", required=True, help="folder for the PNGs")
    pr.add_argument("--split", choices=("train", "val", "test"), default="test", help="split (default: test)")
    pr.add_argument("--samples", type=_int_at_least(1), default=4, help="PNGs to write (default: 4)")
    _overrides(pr, f"where the data is, e.g. data_root={data}")
    return pr


def _build_parser() -> _Parser:
    parser = _Parser(prog="spikedrive", description="Spike-driven deep learning on PyTorch.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command", parser_class=_Parser)

    demo = sub.add_parser("demo", help="train the demo SNN on the embedded 8x8 digits and report energy")
    demo.add_argument("--epochs", type=_int_at_least(1), default=None, help="epochs (default: the recipe's 15)")
    demo.add_argument("--out", default="runs/demo", help="run folder (default: runs/demo)")
    demo.add_argument("--seed", type=_int_at_least(0), default=0, help="random seed (default: 0)")
    demo.add_argument("--fresh", action="store_true",
                      help="start over, replacing the run the folder holds (without it, the demo continues "
                           "a run made with the same options and refuses one made with others)")

    train = sub.add_parser("train", help="train from a YAML recipe with key=value overrides")
    train.add_argument("--config", default=None, help="YAML recipe (default: the demo recipe)")
    train.add_argument("--resume", action="store_true", help="continue from <out_dir>/last.pt")
    _overrides(train, "recipe overrides, e.g. lr=1e-3")

    ev = sub.add_parser("eval", help="evaluate a checkpoint on its recipe's validation and test splits")
    _checkpoint(ev)

    energy = sub.add_parser("energy", help="energy and firing-rate table of a model on real data")
    energy.add_argument("--model", default=None,
                        help="registered model name, measured untrained on the data it declares (default: "
                             "digits_snn); with --checkpoint, the checkpoint's model")
    energy.add_argument("--checkpoint", default=None,
                        help="a checkpoint written by train: its weights, measured on its recipe's validation split")
    energy.add_argument("--spike-driven", action="store_true", help="convert I-LIF models first")
    energy.add_argument("--samples", "--batch", dest="samples", type=_int_at_least(1), default=ENERGY_SAMPLES,
                        help=f"samples measured, over as many batches as needed (default: {ENERGY_SAMPLES})")
    energy.add_argument("--plot", default=None, help="write the firing-rate chart to this PNG")
    _overrides(energy, "recipe overrides, e.g. data_root=DIR eval_batch_size=32 model_kwargs.T=2")

    prn = sub.add_parser("prune", help="lottery tickets: iterative pruning with rewinding from a YAML recipe")
    prn.add_argument("--config", required=True, help="lottery recipe (configs/lottery/*.yaml)")
    _overrides(prn, "recipe overrides, e.g. epochs=5 pruning.criterion=spiking pruning.rounds=4")

    sub.add_parser("kernels", help="build the fused neuron kernels and say which backends run here")

    atk = sub.add_parser("attack", help="accuracy of a checkpoint under FGSM / PGD (EOT for stochastic coders) "
                                        "over an eps sweep, with QTE")
    _checkpoint(atk)
    atk.add_argument("--attack", choices=("fgsm", "pgd"), default="pgd", help="attack (default: pgd)")
    atk.add_argument("--norm", choices=("linf", "l2"), default="linf", help="threat model (default: linf)")
    atk.add_argument("--eps", type=float, nargs="+", default=[0.0, 2 / 255, 4 / 255, 8 / 255],
                     help="budgets in [0, 1] intensity units (default: 0 2/255 4/255 8/255)")
    atk.add_argument("--steps", type=_int_at_least(1), default=7, help="PGD steps (default: 7)")
    atk.add_argument("--step-size", type=float, default=None, help="PGD step length (default: 2.5 eps / steps)")
    atk.add_argument("--eot", type=_int_at_least(1), default=None,
                     help="coding draws averaged per gradient (default: 8 for a stochastic coder, else 1)")
    atk.add_argument("--samples", type=_int_at_least(1), default=500, help="test samples attacked (default: 500)")
    atk.add_argument("--batch-size", type=_int_at_least(1), default=100, help="batch size (default: 100)")
    atk.add_argument("--seed", type=_int_at_least(0), default=0, help="random seed (default: 0)")
    atk.add_argument("--out", default=None, help="write the results as JSON to this file")
    _overrides(atk, "where the data is, e.g. data_root=/data/cifar")

    crt = sub.add_parser("certify", help="randomized-smoothing certificates (Cohen et al.) of a checkpoint on its "
                                         "test split")
    _checkpoint(crt)
    crt.add_argument("--n0", type=_int_at_least(1), default=100, help="samples to pick the class (default: 100)")
    crt.add_argument("--n", type=_int_at_least(1), default=10000, help="samples to bound its probability (default: 10000)")
    crt.add_argument("--alpha", type=float, default=0.001, help="failure probability (default: 0.001)")
    crt.add_argument("--batch-size", type=_int_at_least(1), default=1000, help="noise samples per forward (default: 1000)")
    crt.add_argument("--samples", type=_int_at_least(1), default=500, help="test samples certified (default: 500)")
    crt.add_argument("--sigma", type=float, default=None,
                     help="Gaussian noise (default: the model's RSC coder's; required for models without one)")
    crt.add_argument("--radii", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0],
                     help="radii of the certified-accuracy curve (L2; L1 for Poisson coding)")
    crt.add_argument("--seed", type=_int_at_least(0), default=0, help="noise seed (default: 0)")
    crt.add_argument("--out", default=None, help="write predictions, radii and the curve as JSON to this file")
    crt.add_argument("--plot", default=None, help="write the certified-accuracy curve to this PNG")
    _overrides(crt, "where the data is, e.g. data_root=/data/cifar")

    _task_commands(sub, "depth", "event-camera depth", "configs/depth/synthetic.yaml", "/data/mvsec",
                   "MVSEC depth metrics", "colour-mapped predicted depth PNGs beside the ground truth")
    d_pr = _task_commands(sub, "detect", "object detection", "configs/spikeyolo/gen1_small.yaml", "/data/gen1",
                          "COCO-protocol mAP", "detections drawn on the inputs (ground truth in white), one PNG each")
    d_pr.add_argument("--conf", type=float, default=0.25, help="score threshold for drawing (default: 0.25)")

    exp = sub.add_parser("export", help="write a checkpoint's model as a NIR graph (.nir) or an ONNX file (.onnx)")
    _checkpoint(exp)
    exp.add_argument("--out", required=True, help="file to write; its suffix, .nir or .onnx, picks the format")
    exp.add_argument("--dt", type=float, default=1e-4,
                     help="NIR only: seconds per time step (default: 1e-4, the step snnTorch's importer assumes)")
    exp.add_argument("--batch-size", type=_int_at_least(1), default=1,
                     help="sample batch traced and checked (default: 1; the ONNX batch axis stays free)")

    stream = sub.add_parser("stream", help="classify a recorded event file window by window (streaming, with latency)")
    stream.add_argument("events", help="recording: AEDAT 2/3/4, Prophesee DAT / NPY or N-MNIST .bin")
    stream.add_argument("--checkpoint", default=None, help="a trained event model (e.g. from configs/demo/ndigits.yaml)")
    stream.add_argument("--model", default="ndigits_snn",
                        help="without --checkpoint: a registered event model, untrained (default: ndigits_snn)")
    stream.add_argument("--seed", type=_int_at_least(0), default=0, help="seed of the untrained model (default: 0)")
    stream.add_argument("--window-us", type=_int_at_least(1), default=40_000, help="window length in µs (default: 40000)")
    stream.add_argument("--steps-per-window", type=_int_at_least(1), default=1,
                        help="time steps (frames) per window (default: 1)")
    stream.add_argument("--threads", type=_int_at_least(1), default=1,
                        help="torch threads (default: 1, the lowest latency for one small window per call)")
    stream.add_argument("--verify", action="store_true",
                        help="also run one multi-step forward over all windows and print the largest difference")

    models = sub.add_parser("models", help="list the registered models")
    models.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'digits*'")
    return parser


def _cmd_demo(args: argparse.Namespace) -> int:
    import torch

    from .engine import TrainConfig, train

    torch.set_num_threads(max(1, min(torch.get_num_threads(), 4)))
    options = {"epochs": args.epochs} if args.epochs is not None else {}
    cfg = TrainConfig(out_dir=args.out, seed=args.seed, resume=False if args.fresh else "auto", **options)
    if args.fresh:
        for name in ("last.pt", "best.pt"):
            (Path(args.out) / name).unlink(missing_ok=True)
    else:
        _refuse_other_run(cfg)
    result = train(cfg)
    print(f"run folder: {result.out_dir} (metrics.json, energy.txt, firing_rates.png, last.pt)")
    energy = (result.out_dir / "energy.txt").read_text() if (result.out_dir / "energy.txt").is_file() else ""
    if energy:
        print(energy.rstrip())
    print(f"val accuracy: {100 * result.metrics['accuracy']:.1f}%")
    if "accuracy" in result.test_metrics:
        print(f"test accuracy: {100 * result.test_metrics['accuracy']:.1f}%")
    return 0


def _refuse_other_run(cfg: Any) -> None:
    """Raise ``FileExistsError`` if ``cfg.out_dir`` holds a run made with other options: resuming
    it would silently continue the old run instead of the one asked for."""
    from .engine.checkpoint import config_differences, load_checkpoint

    out, last = cfg.out_dir, Path(cfg.out_dir) / "last.pt"
    if not last.is_file():
        return
    ways_out = "pass --fresh to start over there (its checkpoints are replaced) or --out for another folder"
    try:
        saved = load_checkpoint(last)["config"]
    except ValueError as exc:
        raise ValueError(f"{exc}; {ways_out}") from exc
    diff = config_differences(saved, cfg)
    if not diff:
        return
    shown = ["epochs", "seed", *(k for k in diff if k not in ("epochs", "seed"))]
    held = ", ".join(f"{k}={saved.get(k)!r}" for k in shown)
    asked = ", ".join(f"{k}={v!r}" for k, (_, v) in diff.items())
    if set(diff) <= {"epochs", "seed"}:
        cont = f"to continue it, run `spikedrive demo --out {out} --epochs {saved['epochs']} --seed {saved['seed']}`"
    else:  # not a demo run: only its own recipe continues it
        cont = f"to continue it, run `spikedrive train --config {Path(out) / 'config.yaml'} --resume`"
    raise FileExistsError(f"{str(out)!r} holds a run with {held}, but this demo asks for {asked}; {cont}, "
                          f"or {ways_out}")


def _cmd_train(args: argparse.Namespace) -> int:
    from .engine import load_config, train

    cfg = load_config(args.config, list(args.overrides))
    if args.resume:
        cfg.resume = True
    result = train(cfg)
    splits = (("val", result.metrics), ("test", result.test_metrics))
    metrics = "  ".join(f"{split} {k} {v:.4f}" for split, values in splits for k, v in values.items())
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one summary, not one per process
        print(f"done: {result.epochs} epochs, {metrics}; run folder {result.out_dir}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from .engine import build_datasets, build_task, evaluate, load_run, make_eval_loader, resolve_device

    cfg, model = load_run(args.checkpoint)
    _, val_set, test_set = build_datasets(cfg)
    device = resolve_device(cfg.device)
    model, task = model.to(device), build_task(cfg)
    for split, dataset in (("val", val_set), ("test", test_set)):
        metrics = evaluate(model, task, make_eval_loader(dataset, cfg), device, progress=True)
        print("  ".join(f"{split} {k} {v:.4f}" for k, v in metrics.items()))
    return 0


def _cmd_energy(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from . import to_spike_driven
    from .analysis import plot_firing_rates
    from .engine import build_datasets, build_task, load_run, make_eval_loader
    from .engine.report import first_model_input, measure_energy

    if args.checkpoint:
        cfg, model = load_run(args.checkpoint, tuple(args.overrides))
        if args.model is not None and args.model != cfg.model:
            raise ValueError(f"--model {args.model!r} conflicts with the checkpoint's model {cfg.model!r}; "
                             "leave --model out with --checkpoint")
    else:
        cfg, model = _untrained_model(args.model or "digits_snn", args.overrides)
        print(UNTRAINED_WARNING, file=sys.stderr)
    val_set = build_datasets(cfg)[1]
    task = build_task(cfg)
    loader = make_eval_loader(val_set, replace(cfg, num_workers=0))
    if args.spike_driven:
        # Traced on one real batch of the model's own data: which layers I-LIF feeds.
        to_spike_driven(model, first_model_input(loader, task, "cpu"))
    batch_dim = 1 if getattr(val_set, "time_major", False) else 0
    report = measure_energy(model, loader, task, "cpu", samples=args.samples, batch_dim=batch_dim)
    if report is None:
        raise ValueError(f"task {cfg.task!r} defines no model_input(batch), so the input of model "
                         f"{cfg.model!r} is unknown")
    print(report.table())
    if args.plot:
        print(f"plot: {plot_firing_rates(report, args.plot, title=cfg.model)}")
    return 0


def _untrained_model(name: str, overrides: Sequence[str]) -> tuple[Any, Any]:
    """``(recipe, model)``: the registered model ``name``, initialised from the recipe's seed, and
    a recipe naming the data it declares it takes (``ModelInput``), with ``overrides`` applied."""
    from . import create_model
    from .engine import TrainConfig, apply_overrides, seed_everything
    from .models.registry import model_default_input

    spec = model_default_input(name)
    if spec is None:
        raise ValueError(f"model {name!r} declares no input (register_model(default_input=...)), so energy does "
                         "not know what data to feed it; pass --checkpoint of a run that trained it")
    cfg = TrainConfig(task=spec.task, model=name, model_kwargs={}, dataset=spec.dataset,
                      dataset_kwargs=dict(spec.dataset_kwargs))
    cfg = apply_overrides(cfg, list(overrides))
    seed_everything(cfg.seed)  # the same random weights at every call
    return cfg, create_model(cfg.model, **cfg.model_kwargs)


def _cmd_prune(args: argparse.Namespace) -> int:
    from .pruning import load_prune_config, run_imp

    cfg, pcfg = load_prune_config(args.config, list(args.overrides))
    result = run_imp(cfg, pcfg, log=print)
    print(f"{'round':>5}  {'kind':<6}  {'sparsity':>8}  {'val acc':>7}  {'test acc':>8}")
    for r in [*result.rounds, *result.reinit]:
        val, test = r.val_metrics.get("accuracy", float("nan")), r.test_metrics.get("accuracy", float("nan"))
        print(f"{r.round:>5}  {r.kind:<6}  {100 * r.sparsity:>7.2f}%  {100 * val:>6.2f}%  {100 * test:>7.2f}%")
    print(f"run folder: {result.out_dir} (imp.json, round_NN/)")
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from . import list_models

    names = list_models(args.pattern)
    print("\n".join(names) if names else f"no registered model matches {args.pattern!r}")
    return 0


def _cmd_kernels(args: argparse.Namespace) -> int:
    import torch

    from .neurons import LIF
    from .neurons.kernels import cpu_kernel_error

    error = cpu_kernel_error()
    print(f"cpu:    {'ready (fused C++ operator)' if error is None else 'unavailable: ' + error}")
    cuda = torch.cuda.is_available()
    if cuda:
        try:
            LIF(backend="triton")(torch.zeros(1, 1, device="cuda"))
            print("triton: ready")
        except (ValueError, RuntimeError) as err:
            print(f"triton: unavailable: {str(err).splitlines()[0]}")
    else:
        print("triton: no CUDA device")
    print(f"auto picks: {'triton on CUDA, ' if cuda else ''}{'cpu' if error is None else 'reference'} on CPU")
    return 0 if error is None else 1


def _cmd_attack(args: argparse.Namespace) -> int:
    from .robustness.commands import run_attack

    return run_attack(args)


def _cmd_certify(args: argparse.Namespace) -> int:
    from .robustness.commands import run_certify

    return run_certify(args)


def _cmd_depth(args: argparse.Namespace) -> int:
    from .engine import depth_task

    return {"train": depth_task.depth_train, "eval": depth_task.depth_eval,
            "predict": depth_task.depth_predict}[args.depth_command](args)


def _cmd_detect(args: argparse.Namespace) -> int:
    from .engine import detection_task

    return {"train": detection_task.detect_train, "eval": detection_task.detect_eval,
            "predict": detection_task.detect_predict}[args.detect_command](args)


def _cmd_export(args: argparse.Namespace) -> int:
    from .export.commands import run_export

    return run_export(args)


def _cmd_stream(args: argparse.Namespace) -> int:
    from .export.commands import run_stream

    return run_stream(args)


_COMMANDS = {"demo": _cmd_demo, "kernels": _cmd_kernels, "train": _cmd_train, "eval": _cmd_eval,
             "energy": _cmd_energy, "models": _cmd_models, "prune": _cmd_prune,
             "attack": _cmd_attack, "certify": _cmd_certify, "depth": _cmd_depth,
             "detect": _cmd_detect, "export": _cmd_export, "stream": _cmd_stream}


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse ``argv``; ``key=value`` overrides may also come after a command's options
    (argparse alone stops filling a positional list once an option has been read)."""
    parser = _build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        if hasattr(args, "overrides") and all("=" in a and not a.startswith("-") for a in extra):
            args.overrides = [*args.overrides, *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``spikedrive`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    args = _parse(argv)
    from .engine import TrainingDiverged

    try:
        return _COMMANDS[args.command](args)
    except TrainingDiverged as exc:
        print(f"spikedrive {args.command}: training diverged: {exc}", file=sys.stderr)
        return 3
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, ImportError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"spikedrive {args.command}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"spikedrive {args.command}: interrupted", file=sys.stderr)
        return 130
