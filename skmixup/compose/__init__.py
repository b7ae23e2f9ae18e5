"""Mixup for any scikit-learn estimator that accepts ``sample_weight``.

* :class:`MixupClassifier`: soft labels as two weighted copies of each mixed row.
* :class:`MixupRegressor`: mixed inputs and targets, with uniform (Mixup) or
  label-kernel (C-Mixup) partners.
"""

from skmixup.compose._mixup import MixupClassifier, MixupRegressor

__all__ = ["MixupClassifier", "MixupRegressor"]
