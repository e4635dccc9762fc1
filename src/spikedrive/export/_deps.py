"""Import the optional packages of the ``export`` extra with a message that names the extra."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require"]

EXTRA_HINT = "pip install 'spikedrive[export]'"


def require(package: str, purpose: str) -> ModuleType:
    """The imported module ``package``, or ``ImportError`` naming the extra that provides it.

    Args:
        package: module name (``"nir"``, ``"onnx"``, ``"onnxruntime"``).
        purpose: what the caller wanted to do, for the message (``"to_nir"``).
    """
    try:
        return importlib.import_module(package)
    except ImportError as exc:
        raise ImportError(
            f"{purpose} needs the optional package {package!r}, which is not installed; "
            f"install the export extra: {EXTRA_HINT}"
        ) from exc
