"""skmixup: Mixup training and its theory as scikit-learn estimators.

Implements *How Does Mixup Help With Robustness and Generalization?* (Zhang, Deng,
Kawaguchi, Ghorbani, Zou, ICLR 2021) for tabular data. Sub-packages mirror
scikit-learn: :mod:`skmixup.linear_model`, :mod:`skmixup.compose`,
:mod:`skmixup.neural_network` (needs the ``torch`` extra, imported lazily),
:mod:`skmixup.metrics` and :mod:`skmixup.theory`.
"""

__version__ = "0.1.0.dev0"

from skmixup import compose, exceptions, linear_model, metrics, theory  # noqa: E402
from skmixup.linear_model import (  # noqa: E402
    MixupLogisticRegression,
    MixupRegularizedLogisticRegression,
)

__all__ = [
    "__version__",
    "MixupLogisticRegression",
    "MixupRegularizedLogisticRegression",
    "compose",
    "exceptions",
    "linear_model",
    "metrics",
    "theory",
]
