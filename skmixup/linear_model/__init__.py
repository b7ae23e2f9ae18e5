"""Linear classifiers fitted with Mixup, exactly, in logit space."""

from skmixup.exceptions import UnboundedPenaltyWarning
from skmixup.linear_model._logistic import MixupLogisticRegression
from skmixup.linear_model._regularized import MixupRegularizedLogisticRegression

__all__ = [
    "MixupLogisticRegression",
    "MixupRegularizedLogisticRegression",
    "UnboundedPenaltyWarning",
]
