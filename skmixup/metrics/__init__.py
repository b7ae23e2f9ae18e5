"""Adversarial robustness of classifiers: input gradients, attacks and scores.

Robust accuracy here is the plain accuracy on attacked inputs over all samples;
``eps`` is measured in raw feature units (through pipelines too), optionally per
feature with ``feature_scale``.
"""

from skmixup.metrics._attacks import fgsm, pgd
from skmixup.metrics._gradients import input_gradient
from skmixup.metrics._plot import RobustnessCurveDisplay
from skmixup.metrics._scorer import make_adversarial_scorer, robust_accuracy_score

__all__ = [
    "RobustnessCurveDisplay",
    "fgsm",
    "input_gradient",
    "make_adversarial_scorer",
    "pgd",
    "robust_accuracy_score",
]
