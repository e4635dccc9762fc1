"""Deployment: NIR interchange, ONNX export and streaming inference.

* :func:`to_nir` / :func:`from_nir`: a spikedrive network to and from a ``nir.NIRGraph``; the
  exact map of neuron parameters is documented in :mod:`.mapping`. :func:`save_nir` /
  :func:`load_nir` use the ``nir`` package's HDF5 files.
* :func:`to_onnx`: the inference graph with the T steps unrolled, checked with onnxruntime.
* :class:`StreamingModel`: one time step (or one window of steps) per call, neuron state kept
  between calls until :meth:`~StreamingModel.reset`.

``nir``, ``onnx`` and ``onnxruntime`` come with the optional ``export`` extra
(``pip install 'spikedrive[export]'``); they are imported only when a function needs them.
"""

from .chain import ModelChain, model_chain
from .from_nir import NIRNetwork, from_nir
from .nir_io import load_nir, save_nir
from .mapping import DEFAULT_DT
from .nodes import LeakyIntegrator, Threshold
from .onnx_export import to_onnx, check_onnx
from .streaming import StreamingModel
from .to_nir import NotExportableError, to_nir

__all__ = [
    "to_nir", "from_nir", "save_nir", "load_nir", "NIRNetwork", "NotExportableError", "DEFAULT_DT",
    "to_onnx", "check_onnx", "StreamingModel", "LeakyIntegrator", "Threshold", "model_chain", "ModelChain",
]
