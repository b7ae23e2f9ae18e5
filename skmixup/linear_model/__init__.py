"""Linear classifiers fitted with Mixup, exactly, in logit space."""

from skmixup.linear_model._logistic import MixupLogisticRegression

__all__ = ["MixupLogisticRegression"]
