"""Adversarial robustness of spiking models (RSC-SNN, Wu et al., ACM MM 2024).

* :mod:`.coded`: a coder (direct, Poisson with a straight-through gradient, RSC-I, RSC-II) as the
  first stage of any registered model (``CodedModel``; the registered model ``coded``).
* :mod:`.attacks`: FGSM, PGD (L-inf / L2, random start) and EOT-PGD for stochastic codes.
* :mod:`.certify`: Cohen et al.'s ``Smooth`` (Gaussian L2, Bernoulli L1 certificates) and
  certified-accuracy curves.
* :mod:`.qte`: the trade-off score QTE; :mod:`.distill`: ANN-teacher distillation (E-RSCT-style).
* :mod:`.commands`: the bodies of ``spikedrive attack`` and ``spikedrive certify``.
"""

from .attacks import NORMS, accuracy, eval_mode, fgsm, loss_and_grad, pgd, predict
from .certify import Smooth, certified_accuracy, clopper_pearson_lower, plot_certified_accuracy
from .distill import DistillationTask, distillation_loss
from ..models.coded import CODERS, CodedModel, PixelInput, coded, is_stochastic, make_coder
from .qte import qte

__all__ = [
    "CODERS", "CodedModel", "PixelInput", "coded", "is_stochastic", "make_coder",
    "NORMS", "fgsm", "pgd", "loss_and_grad", "predict", "accuracy", "eval_mode",
    "Smooth", "clopper_pearson_lower", "certified_accuracy", "plot_certified_accuracy",
    "qte", "DistillationTask", "distillation_loss",
]
