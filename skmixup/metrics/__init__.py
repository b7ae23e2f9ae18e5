"""Adversarial robustness of classifiers on tabular data: gradients, attacks, scores;
and the calibration of their probabilities (expected calibration error, reliability
diagram of the top-label confidence, for any number of classes).

Robust accuracy here is the plain accuracy on attacked inputs over all samples.
``eps`` is measured in standard deviations of each feature by default
(``feature_scale="std"``; ``feature_scale=1`` for raw units), through pipelines
too. Categorical columns do not move and missing entries stay missing.
"""

from skmixup.exceptions import UnsolvedSamplesWarning
from skmixup.metrics._attacks import fgsm, pgd
from skmixup.metrics._calibration import (
    ReliabilityDisplay,
    expected_calibration_error,
)
from skmixup.metrics._certified_scorer import (
    certified_accuracy_score,
    make_certified_scorer,
)
from skmixup.metrics._certify import CertificationResult, certify
from skmixup.metrics._display import RobustnessCurveDisplay
from skmixup.metrics._gradients import gradient_methods, input_gradient
from skmixup.metrics._scorer import make_adversarial_scorer, robust_accuracy_score
from skmixup.metrics._square import square_attack

__all__ = [
    "CertificationResult",
    "ReliabilityDisplay",
    "RobustnessCurveDisplay",
    "UnsolvedSamplesWarning",
    "certified_accuracy_score",
    "certify",
    "expected_calibration_error",
    "fgsm",
    "gradient_methods",
    "input_gradient",
    "make_adversarial_scorer",
    "make_certified_scorer",
    "pgd",
    "robust_accuracy_score",
    "square_attack",
]
