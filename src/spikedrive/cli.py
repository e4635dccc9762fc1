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


def _build_parser() -> _Parser:
    parser = _Parser(prog="spikedrive", description="Spike-driven deep learning on PyTorch.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command", parser_class=_Parser)

    demo = sub.add_parser("demo", help="train the demo SNN on the embedded 8x8 digits and report energy")
    demo.add_argument("--epochs", type=_int_at_least(1), default=None, help="epochs (default: the recipe's 15)")
    demo.add_argument("--out", default="runs/demo", help="run folder (default: runs/demo)")
    demo.add_argument("--seed", type=_int_at_least(0), default=0, help="random seed (default: 0)")
    demo.add_argument("--fresh", action="store_true", help="start over even if the run folder holds a run")

    train = sub.add_parser("train", help="train from a YAML recipe with key=value overrides")
    train.add_argument("--config", default=None, help="YAML recipe (default: the demo recipe)")
    train.add_argument("--resume", action="store_true", help="continue from <out_dir>/last.pt")
    train.add_argument("overrides", nargs="*", metavar="key=value", help="recipe overrides, e.g. lr=1e-3")

    ev = sub.add_parser("eval", help="evaluate a checkpoint on its recipe's validation split")
    ev.add_argument("checkpoint", help="a checkpoint written by train (last.pt or best.pt)")

    energy = sub.add_parser("energy", help="energy and firing-rate table of a model on real data")
    energy.add_argument("--model", default=None,
                        help="registered model name, measured on the 8x8 digits (default: digits_snn); "
                             "with --checkpoint, the checkpoint's model")
    energy.add_argument("--checkpoint", default=None,
                        help="a checkpoint written by train: its weights, measured on its recipe's validation split")
    energy.add_argument("--spike-driven", action="store_true", help="convert I-LIF models first")
    energy.add_argument("--batch", type=_int_at_least(1), default=256, help="samples measured (default: 256)")
    energy.add_argument("--plot", default=None, help="write the firing-rate chart to this PNG")

    sub.add_parser("kernels", help="build the fused neuron kernels and say which backends run here")

    models = sub.add_parser("models", help="list the registered models")
    models.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'digits*'")
    return parser


def _cmd_demo(args: argparse.Namespace) -> int:
    import torch

    from .engine import TrainConfig, train

    torch.set_num_threads(max(1, min(torch.get_num_threads(), 4)))
    cfg = TrainConfig(out_dir=args.out, seed=args.seed, resume=False if args.fresh else "auto")
    if args.epochs is not None:
        cfg.epochs = args.epochs
    if args.fresh:
        for name in ("last.pt", "best.pt"):
            (Path(args.out) / name).unlink(missing_ok=True)
    result = train(cfg)
    print(f"run folder: {result.out_dir} (metrics.json, energy.txt, firing_rates.png, last.pt)")
    energy = (result.out_dir / "energy.txt").read_text() if (result.out_dir / "energy.txt").is_file() else ""
    if energy:
        print(energy.rstrip())
    print(f"test accuracy: {100 * result.metrics['accuracy']:.1f}%")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from .engine import load_config, train

    cfg = load_config(args.config, list(args.overrides))
    if args.resume:
        cfg.resume = True
    result = train(cfg)
    metrics = "  ".join(f"{k} {v:.4f}" for k, v in result.metrics.items())
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one summary, not one per process
        print(f"done: {result.epochs} epochs, {metrics}; run folder {result.out_dir}")
    return 0


def _load_run(checkpoint: str) -> tuple[Any, Any, Any]:
    """``(config, model, validation dataset)`` of a checkpoint written by ``train``."""
    from .engine import build_datasets, config_from_dict, load_checkpoint, load_model

    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    cfg = config_from_dict(load_checkpoint(path, map_location="cpu")["config"])
    return cfg, load_model(path), build_datasets(cfg)[1]


def _cmd_eval(args: argparse.Namespace) -> int:
    from .engine import build_task, evaluate, make_eval_loader, resolve_device

    cfg, model, val_set = _load_run(args.checkpoint)
    device = resolve_device(cfg.device)
    model = model.to(device)
    metrics = evaluate(model, build_task(cfg), make_eval_loader(val_set, cfg), device, progress=True)
    print("  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    return 0


def _cmd_energy(args: argparse.Namespace) -> int:
    import torch

    from . import create_model, to_spike_driven
    from .analysis import energy_report, plot_firing_rates
    from .data.digits import load_digits_split

    if args.checkpoint:
        name, model, x, batch_dim = _checkpoint_and_input(args)
    else:
        name = args.model or "digits_snn"
        model = create_model(name)
        _, test = load_digits_split()
        x, batch_dim = torch.stack([test[i][0] for i in range(min(args.batch, len(test)))]), 0
    if args.spike_driven:
        to_spike_driven(model)
    report = energy_report(model, x, batch_dim=batch_dim)
    print(report.table())
    if args.plot:
        print(f"plot: {plot_firing_rates(report, args.plot, title=name)}")
    return 0


def _checkpoint_and_input(args: argparse.Namespace) -> tuple[str, Any, Any, int]:
    """``(model name, model, input batch, batch dim)`` for ``energy --checkpoint``: the model on
    ``args.batch`` samples of its recipe's validation split, fed as its task feeds it."""
    from dataclasses import replace

    from .engine import build_task, first_model_input, make_eval_loader

    cfg, model, val_set = _load_run(args.checkpoint)
    if args.model is not None and args.model != cfg.model:
        raise ValueError(f"--model {args.model!r} conflicts with the checkpoint's model {cfg.model!r}; "
                         "leave --model out with --checkpoint")
    task = build_task(cfg)
    loader = make_eval_loader(val_set, replace(cfg, eval_batch_size=args.batch, num_workers=0))
    x = first_model_input(loader, task, "cpu")
    if x is None:
        raise ValueError(f"task {cfg.task!r} of {args.checkpoint!r} defines no model_input(batch), so its model "
                         "input is unknown")
    return cfg.model, model, x, 1 if getattr(val_set, "time_major", False) else 0


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


_COMMANDS = {"demo": _cmd_demo, "kernels": _cmd_kernels, "train": _cmd_train, "eval": _cmd_eval, "energy": _cmd_energy, "models": _cmd_models}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``spikedrive`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    args = _build_parser().parse_args(argv)
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
