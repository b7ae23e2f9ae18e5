"""Input checks of the skorch net, and sample weights carried with the batches.

skorch hands ``X`` to the module as given; :class:`MixupNeuralNetClassifier`
checks the inputs that a scikit-learn user gives (arrays, lists, numeric
DataFrames) with scikit-learn's validation, and leaves the containers that only
skorch understands (dicts, datasets, sparse matrices) to skorch.

Sample weights follow skorch's documented pattern: they travel inside ``X`` as
the ``"sample_weight"`` entry of a dict, so that every batch carries the weights
of its rows whatever the iterator; the net takes them out again before the
module's ``forward``.
"""

from collections.abc import Mapping

import numpy as np
import torch
from scipy import sparse
from sklearn.utils import check_array
from sklearn.utils.validation import check_consistent_length, validate_data

from skmixup.utils._validation import check_sample_weight, is_frame, is_pandas

__all__ = [
    "SAMPLE_WEIGHT_KEY",
    "attach_sample_weight",
    "check_n_features",
    "check_net_input",
    "check_net_target",
    "detach_sample_weight",
]

SAMPLE_WEIGHT_KEY = "sample_weight"
# Key of X itself when the net wrapped a plain X with its weights.
_X_KEY = "_skmixup_X"


def _is_numeric_frame(X):
    if not is_pandas(X):
        return False
    dtypes = [X.dtypes] if np.ndim(X) == 1 else list(X.dtypes)
    return all(
        getattr(dtype, "kind", "O") in "biuf" for dtype in dtypes
    )  # pandas extension dtypes (category, string) have kind "O"


def check_feature_names(net, X, reset):
    """Record (``reset``) or check ``feature_names_in_``, as scikit-learn does,
    for a DataFrame whose columns are all numeric (it becomes a matrix, whose
    columns are then matched by position: other names or another order than at
    fit are the ValueError of scikit-learn's ``predict``). Other input records
    no names."""
    if is_frame(X) and _is_numeric_frame(X):
        validate_data(net, X, reset=reset, skip_check_array=True)
    elif reset:
        net.__dict__.pop("feature_names_in_", None)


def check_n_features(net, X, reset):
    """Record (``reset``) or check ``n_features_in_`` for array input."""
    if not isinstance(X, np.ndarray) or X.ndim != 2:
        return
    if reset:
        net.n_features_in_ = X.shape[1]
        return
    expected = getattr(net, "n_features_in_", None)
    if expected is not None and X.shape[1] != expected:
        raise ValueError(
            f"X has {X.shape[1]} features, but {type(net).__name__} is expecting "
            f"{expected} features as input."
        )


def check_net_input(X, caller):
    """Check ``X`` as scikit-learn would, when it is an array-like.

    Numpy arrays, lists, other array-likes and DataFrames whose columns are all
    numeric are checked with :func:`sklearn.utils.check_array` (at least one
    sample, finite values, numeric dtype; object arrays of numbers become
    float64, integer and boolean features float32) and become numpy arrays: a
    numeric DataFrame is a matrix, not a dict of columns. (Integer *indices*,
    e.g. for an embedding, are passed as tensors or in a dict.)
    Tensors are checked for emptiness and finite values. Dicts, datasets,
    sparse matrices and DataFrames with non-numeric columns are returned as
    they are (skorch's own handling).
    """
    if isinstance(X, torch.Tensor):
        if X.ndim == 0 or len(X) == 0:
            raise ValueError(f"{caller} got an empty or 0-d tensor X.")
        if torch.is_floating_point(X) and not bool(torch.isfinite(X).all()):
            raise ValueError(f"Input X contains NaN or infinity ({caller}).")
        return X
    if is_pandas(X) and not _is_numeric_frame(X):
        return X  # skorch: a dict of columns
    if sparse.issparse(X) or isinstance(X, Mapping) or not _is_array_like(X):
        return X
    X = check_array(
        X,
        dtype="numeric",
        allow_nd=True,
        ensure_all_finite=True,
        ensure_2d=True,
        input_name="X",
        estimator=caller,
    )
    if X.dtype.kind in "biu":  # features, as in scikit-learn: mixed as floats
        X = X.astype(np.float32)
    return X


def _is_array_like(X):
    return isinstance(X, (list, tuple)) or hasattr(X, "__array__")


def check_net_target(y, n_samples, caller):
    """Class indices ``0..K-1`` as int64, with a clear error otherwise.

    A 1d ``y`` of numbers (numeric or object dtype) must hold whole numbers
    ``>= 0`` and becomes int64; strings are rejected (skorch's classifier takes
    class indices; ``MixupMLPClassifier`` encodes labels of any type). Other
    targets (tensors, 2d arrays, sequences of arrays for custom criteria) are
    left to skorch.
    """
    if y is None or isinstance(y, torch.Tensor):
        return y
    try:
        arr = np.asarray(y)
    except ValueError:  # ragged sequences: a custom criterion's business
        return y
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.ravel()
    if arr.ndim != 1:
        return y
    if n_samples is not None:
        check_consistent_length(np.empty(n_samples), arr)
    if arr.dtype == object and not all(isinstance(v, str) for v in arr):
        if not all(isinstance(v, (int, float, np.number)) for v in arr):
            return y
        arr = arr.astype(np.float64)
    if arr.dtype.kind not in "biuf":
        raise ValueError(
            f"{caller} needs y to hold class indices 0..n_classes-1 (skorch's "
            f"convention); got labels of dtype {arr.dtype} such as {arr[:3]!r}. "
            "MixupMLPClassifier accepts labels of any type."
        )
    values = arr.astype(np.float64)
    if (
        not np.all(np.isfinite(values))
        or np.any(values != np.round(values))
        or np.any(values < 0)
    ):
        raise ValueError(
            f"{caller} needs y to hold class indices 0..n_classes-1 (non-negative "
            f"whole numbers, skorch's convention); got values such as "
            f"{arr[:3]!r}."
        )
    return values.astype(np.int64)


def attach_sample_weight(X, sample_weight, caller):
    """Return ``X`` carrying ``sample_weight`` normalised to mean 1, or ``X``.

    Weights that are all equal change nothing (the loss is a weighted mean) and
    are dropped, so that ``sample_weight=np.ones(n)`` trains exactly as
    ``None``.
    """
    if sample_weight is None:
        return X
    if isinstance(X, Mapping):
        n_samples = len(next(iter(X.values())))
    else:
        n_samples = X.shape[0] if sparse.issparse(X) else len(X)
    w = check_sample_weight(sample_weight, n_samples, caller)
    if np.all(w == w[0]):
        return X
    w = w / w.mean()
    if isinstance(X, Mapping):
        if SAMPLE_WEIGHT_KEY in X:
            raise ValueError(
                f"X already has a {SAMPLE_WEIGHT_KEY!r} entry; pass the weights "
                "once (as sample_weight=...)."
            )
        return {**X, SAMPLE_WEIGHT_KEY: w}
    if not isinstance(X, (np.ndarray, torch.Tensor)) and not sparse.issparse(X):
        raise TypeError(
            f"{caller} takes sample_weight with array, tensor or dict X, not "
            f"{type(X).__name__}."
        )
    return {_X_KEY: X, SAMPLE_WEIGHT_KEY: w}


def detach_sample_weight(x):
    """Split a batch into ``(x, weights)``; ``weights`` is None when absent."""
    if not isinstance(x, Mapping) or SAMPLE_WEIGHT_KEY not in x:
        return x, None
    x = dict(x)
    weights = x.pop(SAMPLE_WEIGHT_KEY)
    if set(x) == {_X_KEY}:
        x = x[_X_KEY]
    return x, weights
