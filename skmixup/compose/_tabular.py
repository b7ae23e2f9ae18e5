"""Mixing of tabular rows: dense arrays with missing entries, sparse matrices and
pandas DataFrames with categorical, boolean, string and nullable columns.

The rule, one for every container:

* a numeric entry of a mixed row is ``lam * x_i + (1 - lam) * x_j``;
* a categorical entry (pandas ``category``, ``object``, ``string`` or ``bool``
  columns, and the columns that the inner estimator is told are categorical through
  its ``categorical_features`` parameter) takes the value of the row with the
  larger Mixup weight: ``x_i`` if ``lam >= 1/2``, else ``x_j``. Categories have no
  convex combination; taking the dominant row keeps every mixed value a real
  category and keeps the category frequencies of the training set in expectation;
* a numeric entry where ``x_i`` or ``x_j`` is missing also takes the dominant row's
  value (missing if that one is missing), so that the fraction of missing entries
  of each column is kept, instead of ``NaN`` spreading to every pair that touches
  one.
"""

import numpy as np
from scipy import sparse

from skmixup._mixing import mix_rows
from skmixup.utils._validation import is_frame

__all__ = ["categorical_mask", "mix_table"]


def categorical_mask(X, categorical_features):
    """Boolean mask of the columns of ``X`` that are mixed as categories.

    Parameters
    ----------
    X : DataFrame, ndarray or sparse matrix
    categorical_features : None, str, or array-like of bool, int or str
        The inner estimator's ``categorical_features`` parameter when it has one
        (HistGradientBoosting's): a mask, column indices or column names mark
        columns as categorical in addition to the non-numeric columns of a
        DataFrame; ``"from_dtype"`` and ``None`` add nothing.

    Raises
    ------
    ValueError
        If a named or indexed column is not in ``X``.
    """
    n_features = X.shape[1]
    mask = np.zeros(n_features, dtype=bool)
    if is_frame(X):
        mask |= np.array([not _is_numeric_dtype(dt) for dt in X.dtypes], dtype=bool)
    if categorical_features is None or isinstance(categorical_features, str):
        return mask
    given = np.asarray(categorical_features)
    if given.size == 0:
        return mask
    if given.dtype.kind == "b":
        if given.shape != (n_features,):
            raise ValueError(
                f"categorical_features as a mask must have {n_features} entries "
                f"(one per column of X), got {given.shape}."
            )
        return mask | given
    if given.dtype.kind in "iu":
        if given.min() < -n_features or given.max() >= n_features:
            raise ValueError(
                f"categorical_features holds column index {given.tolist()}, but X "
                f"has {n_features} columns."
            )
        mask[given] = True
        return mask
    if not is_frame(X):
        raise ValueError(
            "categorical_features names columns, which needs X as a DataFrame; "
            "give indices or a boolean mask for arrays."
        )
    names = list(X.columns)
    for name in given.tolist():
        if name not in names:
            raise ValueError(f"categorical_features names {name!r}, not a column of X.")
        mask[names.index(name)] = True
    return mask


def mix_table(X, anchor, partner, lam, categorical):
    """The mixed rows ``lam X[anchor] + (1 - lam) X[partner]`` by the module rule.

    A DataFrame gives a DataFrame with the same columns and dtypes (integer
    columns become float, nullable ``Int64`` becomes ``Float64``), a sparse
    matrix a CSR matrix, an array an array.
    """
    lam = np.asarray(lam)
    dominant = np.where(lam >= 0.5, anchor, partner)
    if is_frame(X):
        return _mix_frame(X, anchor, partner, lam, dominant, categorical)
    if sparse.issparse(X):
        return mix_rows(X, anchor, partner, lam)
    X = np.asarray(X)
    out = _mix_dense(X, anchor, partner, lam, dominant)
    if np.any(categorical):
        out[:, categorical] = X[dominant][:, categorical]
    return out


def _mix_dense(A, anchor, partner, lam, dominant):
    if A.dtype.kind not in "fc":
        A = A.astype(np.float64)
    out = mix_rows(A, anchor, partner, lam)
    missing = np.isnan(A[anchor]) | np.isnan(A[partner])
    if np.any(missing):
        out[missing] = A[dominant][missing]
    return out


def _mix_frame(X, anchor, partner, lam, dominant, categorical):
    import pandas as pd

    columns = {}
    for k in range(X.shape[1]):
        col = X.iloc[:, k]
        if categorical[k]:
            columns[k] = col.iloc[dominant].reset_index(drop=True)
            continue
        nullable = isinstance(col.dtype, pd.api.extensions.ExtensionDtype)
        dtype = np.float32 if col.dtype == np.float32 else np.float64
        values = col.to_numpy(dtype=dtype, na_value=np.nan)
        mixed = _mix_dense(values[:, None], anchor, partner, lam, dominant)[:, 0]
        columns[k] = pd.Series(
            pd.array(mixed, dtype="Float64") if nullable else mixed, copy=False
        )
    out = pd.concat(columns, axis=1)
    out.columns = X.columns
    return out


def _is_numeric_dtype(dtype):
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    return is_numeric_dtype(dtype) and not is_bool_dtype(dtype)
