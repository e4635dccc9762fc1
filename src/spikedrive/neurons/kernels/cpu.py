"""The fused CPU operators: C++ compiled with torch's cpp_extension on first use, then cached.

One library holds the neuron kernels (``csrc/neurons_cpu.cpp``) and the two layer kernels that
sit between neurons (``csrc/layers_cpu.cpp``: channels-last batch norm and max-pool, used through
:mod:`spikedrive.layers.cpu_kernels`).

The build takes about 40 s once per machine, kernel version and torch version; later imports load the
cached library in well under a second. Its folder is torch's extension cache
(``TORCH_EXTENSIONS_DIR``, by default ``~/.cache/torch_extensions``). Set
``SPIKEDRIVE_NO_CPU_KERNEL=1`` to skip it and run the reference loop.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import sysconfig
import threading
import warnings
from pathlib import Path
from typing import Any

import torch

__all__ = ["cpu_ops", "cpu_kernel_error", "cpu_tensor_supported"]

# The neurons, and the two layer kernels (channels-last batch norm, spike max-pool) that sit
# between them in a spiking network: one library, one build.
_SOURCES = tuple(Path(__file__).parent / "csrc" / name for name in ("neurons_cpu.cpp", "layers_cpu.cpp"))
_HEADERS = (Path(__file__).parent / "csrc" / "cpu_io.h",)
_CPU_DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)
_LOCK = threading.Lock()
_STATE: dict[str, Any] = {"ops": None, "error": None, "tried": False, "warned": False}


def _build_flags() -> list[str]:
    # -ffp-contract=off keeps a * b + c as two roundings, like PyTorch's separate kernels: the
    # membrane (hence every spike) is then bit-identical to the reference loop.
    # -fopenmp: at::parallel_for is a header template over `#pragma omp parallel`; without the
    # flag it silently runs on one thread. The OpenMP runtime it binds to is torch's own
    # libgomp.so.1, already loaded by the time this library is.
    flags = ["-O3", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math", "-fopenmp"]
    capability = torch.backends.cpu.get_cpu_capability()
    if capability in ("AVX2", "AVX512"):
        # torch reports AVX2 only on CPUs with FMA too; the kernel uses FMA in its exp alone.
        flags += ["-mavx2", "-mfma"]
    if capability == "AVX512":
        # torch reports AVX512 only with the F, BW, VL and DQ subsets (its own kernels use them).
        # 512-bit vectors: the surrogate's exp and division are compute-bound in backward.
        flags += ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mprefer-vector-width=512"]
    return flags


def _extension_name(source: bytes, flags: list[str]) -> str:
    # The instruction set is part of the name, so a cache shared between machines never loads a
    # build for a CPU it cannot run on. The hash of the source, the flags and the torch install
    # (its headers' path is in every compile command, so ninja rebuilds when it changes) gives
    # each kernel version in each environment its own build: two checkouts or virtual
    # environments never rebuild over each other.
    torch_install = f"{torch.__version__} {Path(torch.__file__).parent}"
    key = hashlib.sha256(source + " ".join(flags).encode() + torch_install.encode()).hexdigest()[:12]
    return f"spikedrive_neurons_cpu_{torch.backends.cpu.get_cpu_capability().lower()}_{key}"


def _ensure_ninja_on_path() -> None:
    # pip's ninja lands beside the interpreter, which is not on PATH unless the venv is active.
    scripts = sysconfig.get_path("scripts")
    if shutil.which("ninja") is None and scripts and (Path(scripts) / "ninja").exists():
        os.environ["PATH"] = scripts + os.pathsep + os.environ.get("PATH", "")


def _load() -> Any:
    from torch.utils import cpp_extension

    _ensure_ninja_on_path()
    files, flags = _SOURCES + _HEADERS, _build_flags()
    contents = [path.read_bytes() for path in files]
    name = _extension_name(b"".join(contents), flags)
    build_dir = Path(cpp_extension._get_build_directory(name, verbose=False))
    # Build from copies inside the build folder: ninja rebuilds when a source's path changes, so
    # compiling a checkout's own files would rebuild for every other checkout of the same code.
    local = [build_dir / path.name for path in files]
    for path, source in zip(local, contents):
        if not path.exists() or path.read_bytes() != source:
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(source)
            os.replace(tmp, path)
    if not (build_dir / f"{name}.so").exists():
        print(f"spikedrive: compiling the fused CPU kernels once (about 60 s), cached in {build_dir}",
              file=sys.stderr)
    cpp_extension.load(
        name=name, sources=[str(path) for path in local[:len(_SOURCES)]], extra_cflags=flags, extra_ldflags=["-fopenmp"],
        is_python_module=False, verbose=False,
    )
    return torch.ops.spikedrive_cpu


def _try_load() -> None:
    # Under the lock, so two threads never build at once; runs once per process.
    with _LOCK:
        if _STATE["tried"]:
            return
        if os.environ.get("SPIKEDRIVE_NO_CPU_KERNEL", "") not in ("", "0"):
            error = "disabled by SPIKEDRIVE_NO_CPU_KERNEL"
        else:
            try:
                _STATE["ops"] = _load()
                error = None
            except Exception as err:  # a compiler error, no compiler, no ninja, a bad cache
                error = f"{type(err).__name__}: {str(err).strip().splitlines()[-1] if str(err).strip() else ''}"
        # "error" is written before "tried": a reader that sees either one outside the lock
        # sees the outcome, never a half-finished attempt.
        _STATE["error"] = error
        _STATE["tried"] = True


def cpu_ops() -> Any:
    """The compiled operator namespace (``torch.ops.spikedrive_cpu``), building it on first call.

    Every fused CPU neuron call asks for it, so once loaded it is read without the lock
    (double-checked loading: ``_STATE["ops"]`` is written once, under the lock, and never
    cleared). Raises ``RuntimeError`` naming the cause if it cannot be built or loaded."""
    ops = _STATE["ops"]
    if ops is not None:
        return ops
    if _STATE["error"] is None:
        _try_load()
    if _STATE["ops"] is None:
        raise RuntimeError(f"the fused CPU neuron kernel is not available ({_STATE['error']})")
    return _STATE["ops"]


def cpu_kernel_error() -> str | None:
    """Why the CPU kernel is unavailable, or ``None`` if it loaded (tries to load it). Takes no
    lock once the outcome is known, loaded or not."""
    if _STATE["ops"] is not None:
        return None
    if _STATE["error"] is None:
        _try_load()
    return _STATE["error"]


def cpu_tensor_supported(x: torch.Tensor) -> bool:
    """Whether the CPU kernel can run on ``x`` (a float32, float64, bfloat16 or float16 CPU tensor;
    the narrow types are computed in float32) and is built.

    The first time it is found missing, warn once that the reference loop runs instead."""
    if x.device.type != "cpu" or x.dtype not in _CPU_DTYPES:
        return False
    if _STATE["ops"] is not None:  # every neuron call asks: no lock once the outcome is known
        return True
    error = cpu_kernel_error()
    if error is not None and not _STATE["warned"]:
        _STATE["warned"] = True
        warnings.warn(f"spikedrive: fused CPU kernels unavailable ({error}); neurons run the slower reference loop "
                      "and layers PyTorch's own operators",
                      RuntimeWarning, stacklevel=3)
    return error is None
