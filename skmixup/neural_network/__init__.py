"""Mixup-trained neural networks on PyTorch and skorch.

This sub-package needs the optional ``torch`` extra (PyTorch and skorch); it is
never imported by ``import skmixup``. Install it with::

    pip install "skmixup[torch]"

From PyPI on Linux that brings a CUDA build of PyTorch (for a GPU machine); for a
CPU-only build, install PyTorch first from PyTorch's CPU index::

    pip install torch --index-url https://download.pytorch.org/whl/cpu

* :class:`MixupMLPClassifier`: a scikit-learn estimator with the parameters of
  :class:`sklearn.neural_network.MLPClassifier`, trained with Mixup.
* :class:`MixupNeuralNetClassifier`: a :class:`skorch.NeuralNetClassifier` with
  Mixup in its training step, for any PyTorch module.
* :class:`MixupMLPRegressor`: the regressor, with uniform (Mixup) or label-kernel
  (C-Mixup) partners.
* :class:`MixupRegularizedMLPClassifier`: the same MLP trained on the explicit
  second-order Mixup penalty ``R1 + R2 + R3`` instead of mixed inputs.
"""

try:
    import skorch  # noqa: F401
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised without the extra
    from skmixup.utils._install import TORCH_INSTALL

    raise ImportError(
        "skmixup.neural_network needs PyTorch and skorch, which are not installed "
        f"({exc}). Install them with: {TORCH_INSTALL}"
    ) from exc

from skmixup.neural_network._iterator import TensorBatchIterator
from skmixup.neural_network._mlp import MixupMLPClassifier
from skmixup.neural_network._module import MLPModule
from skmixup.neural_network._net import MixupNeuralNetClassifier
from skmixup.neural_network._regressor import MixupMLPRegressor
from skmixup.neural_network._regularized import MixupRegularizedMLPClassifier

__all__ = [
    "MixupMLPClassifier",
    "MixupMLPRegressor",
    "MixupNeuralNetClassifier",
    "MixupRegularizedMLPClassifier",
    "MLPModule",
    "TensorBatchIterator",
]
