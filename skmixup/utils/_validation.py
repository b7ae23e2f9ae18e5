"""Small input checks shared by the sub-packages: pandas input, sample weights,
the seed bound."""

import numpy as np
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.validation import _check_sample_weight

__all__ = [
    "MAX_SEED",
    "check_positive_weight",
    "class_sample_weight",
    "check_sample_weight",
    "is_frame",
    "is_pandas",
]

# Largest seed drawn from a RandomState for torch generators and child
# estimators (``randint(MAX_SEED)``: fits any C ``int`` and torch's seeds).
MAX_SEED = 2**31 - 1


def is_pandas(X):
    """Whether ``X`` is a pandas DataFrame or Series (duck-typed, without
    importing pandas)."""
    return hasattr(X, "iloc") and hasattr(X, "dtypes")


def is_frame(X):
    """Whether ``X`` is a pandas DataFrame (duck-typed, without importing
    pandas)."""
    return is_pandas(X) and hasattr(X, "columns")


def check_sample_weight(sample_weight, X, caller=None):
    """Sample weights as float64, non-negative, with a positive sum.

    ``X`` is the data (or its number of samples); ``None`` gives ones. Raises
    ``ValueError`` for negative or non-finite weights, a wrong length, or
    weights that are all zero (nothing to fit or evaluate).

    Examples
    --------
    >>> from skmixup.utils._validation import check_sample_weight
    >>> check_sample_weight([1, 0, 2], 3).tolist()
    [1.0, 0.0, 2.0]
    """
    if isinstance(X, (int, np.integer)):
        X = np.empty((int(X), 0))
    sample_weight = _check_sample_weight(
        sample_weight, X, dtype=np.float64, ensure_non_negative=True
    )
    return check_positive_weight(sample_weight, caller)


def check_positive_weight(sample_weight, caller=None):
    """``sample_weight`` (non-negative) itself if its sum is positive, else a
    ``ValueError``: the check of :func:`check_sample_weight` for weights that
    were validated before (e.g. before class weights were folded in)."""
    if not np.sum(sample_weight) > 0:
        prefix = "" if caller is None else f"{caller}: "
        raise ValueError(
            f"{prefix}sample_weight must have at least one positive entry (a "
            "positive sum), got only zeros."
        )
    return sample_weight


def class_sample_weight(class_weight, y, sample_weight=None):
    """``sample_weight`` times the weight of each sample's class (scikit-learn's
    ``class_weight``: a ``{label: weight}`` dict or ``"balanced"``, computed on
    ``y``); ``sample_weight`` itself (None included) when ``class_weight`` is
    None."""
    if class_weight is None:
        return sample_weight
    weights = compute_sample_weight(class_weight, y)
    if sample_weight is None:
        return weights
    return np.asarray(sample_weight, dtype=np.float64) * weights
