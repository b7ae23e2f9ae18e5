"""Parameter constraints shared by skmixup's estimators (scikit-learn's
``_parameter_constraints`` format).

One home for the constraints of the parameters that every Mixup estimator has,
whatever its family (linear or neural network), so that they cannot drift apart.
"""

from numbers import Real

from sklearn.utils._param_validation import Interval, StrOptions

__all__ = ["MIXUP_LAW_CONSTRAINTS", "PARTNER_CONSTRAINTS"]

# The Mixup law Beta(mixup_alpha, mixup_beta); mixup_beta=None means mixup_alpha.
MIXUP_LAW_CONSTRAINTS = {
    "mixup_alpha": [Interval(Real, 0, None, closed="neither")],
    "mixup_beta": [Interval(Real, 0, None, closed="neither"), None],
}

# How the regressors draw partners: uniformly (Mixup) or by the label kernel
# (C-Mixup), and the kernel's bandwidth (None: Silverman's rule).
PARTNER_CONSTRAINTS = {
    "partners": [StrOptions({"uniform", "label_kernel"})],
    "kernel_bandwidth": [Interval(Real, 0, None, closed="neither"), None],
}
