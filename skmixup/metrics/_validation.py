"""Every argument check of the metrics, once: eps, norm, gradient, clip, units, columns.

The central object is :class:`_AttackInput`, the tabular threat model applied to one
``X``: which columns may move, their per-feature unit, their bounds, which entries are
missing, and how to give attacked values back in ``X``'s own container (a DataFrame
with the same columns, index and dtypes where the values fit, or an array).
"""

import copy
import numbers

import numpy as np
from scipy import sparse
from sklearn.base import is_regressor
from sklearn.utils import column_or_1d
from sklearn.utils.validation import check_consistent_length, check_is_fitted

from skmixup.metrics._jacobians import encoded_inputs, numeric_dtype
from skmixup.utils._labels import label_indices
from skmixup.utils._validation import is_frame

TINY = np.finfo(np.float64).tiny
_NORMS = {"inf": "inf", np.inf: "inf", 2: "2", "2": "2", "l2": "2", "linf": "inf"}


def check_real(value, name, *, low=0.0, include_low=True):
    """A finite real ``>= low`` (or ``> low``) as a float."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ValueError(f"{name} must be a real number, got {value!r}.")
    value = float(value)
    bad = value < low if include_low else value <= low
    if not np.isfinite(value) or bad:
        relation = ">=" if include_low else ">"
        raise ValueError(f"{name} must be finite and {relation} {low}, got {value!r}.")
    return value


def check_norm(norm):
    try:
        return _NORMS[norm]
    except (KeyError, TypeError):
        raise ValueError(f"norm must be 'inf' or 2, got {norm!r}.") from None


def check_gradient(gradient):
    if gradient not in ("auto", "numerical"):
        raise ValueError(f"gradient must be 'auto' or 'numerical', got {gradient!r}.")
    return gradient


def check_n_iter(n_iter):
    bad = isinstance(n_iter, bool) or not isinstance(n_iter, numbers.Integral)
    if bad or n_iter < 1:
        raise ValueError(f"n_iter must be an integer >= 1, got {n_iter!r}.")
    return int(n_iter)


def check_feature_scale_param(feature_scale):
    """Check the form of ``feature_scale`` before any data is seen (scorers)."""
    if isinstance(feature_scale, str):
        if feature_scale != "std":
            raise ValueError(
                f"feature_scale must be 'std', a positive scalar, an array or a "
                f"mapping of column names to scales, got {feature_scale!r}."
            )
        return feature_scale
    if isinstance(feature_scale, numbers.Real) and not isinstance(feature_scale, bool):
        if not np.isfinite(feature_scale) or feature_scale < 0:
            raise ValueError("feature_scale must be finite and non-negative.")
    return feature_scale


def unit_name(feature_scale):
    """How ``eps`` is measured, in words (scorer repr, display axis)."""
    if isinstance(feature_scale, str):
        return "standard deviations"
    if isinstance(feature_scale, numbers.Real) and float(feature_scale) == 1.0:
        return "raw units"
    return "custom units (feature_scale)"


class _AttackInput:
    """The tabular threat model on one ``X`` (built by :func:`attack_input`).

    Attributes
    ----------
    V : ndarray of shape (n_samples, n_columns)
        Float values of every column (non-numeric columns hold 0 and never move;
        missing entries are NaN and stay NaN).
    movable : ndarray of bool, shape (n_columns,)
        Columns the attacker may change.
    scale : ndarray of shape (n_columns,)
        Per-column unit of eps; 0 on columns that may not move.
    low, high : None or ndarray of shape (n_columns,)
        Box bounds (None: unbounded).
    y, y_idx : ndarray of shape (n_samples,)
        Labels and their indices into ``classes_``; for a regressor ``y`` is the
        float target and ``y_idx`` is None.
    names : list or None
        Column names of a DataFrame ``X``.
    """

    def __init__(self, X, V, *, movable, kind, dtype, y, y_idx, names):
        self.X = X
        self.V = V
        self.movable = movable
        self.kind = kind
        self.dtype = dtype
        self.y = y
        self.y_idx = y_idx
        self.names = names
        self.scale = None
        self.low = self.high = None
        # X's own column order, when its columns were matched by name to the
        # estimator's (a permutation of the fitted order): see user_columns.
        self.back = None

    @property
    def is_regression(self):
        return self.y_idx is None

    @property
    def n_samples(self):
        return self.V.shape[0]

    def subset(self, rows):
        """The same threat model restricted to some rows (a slice or indices)."""
        sub = copy.copy(self)
        sub.V = self.V[rows]
        sub.X = self.X.iloc[rows] if self.kind == "frame" else self.X[rows]
        sub.y = self.y[rows]
        sub.y_idx = None if self.y_idx is None else self.y_idx[rows]
        return sub

    def delta_box(self, eps):
        """Per-sample bounds ``(lo, hi)`` of the l_inf perturbation, each (n, d).

        Columns that may not move and missing entries get ``[0, 0]``; clipping
        intersects ``[-eps * scale, eps * scale]`` with ``[low - x, high - x]``,
        keeping 0 inside (a sample outside ``clip`` is not moved further out).
        """
        V = np.asarray(self.V, dtype=np.float64)
        moves = (self.scale > 0) & ~np.isnan(V)
        lo = np.where(moves, -eps * self.scale, 0.0)
        hi = np.where(moves, eps * self.scale, 0.0)
        if self.low is not None:
            lo = np.minimum(np.maximum(lo, np.nan_to_num(self.low - V)), 0.0)
        if self.high is not None:
            hi = np.maximum(np.minimum(hi, np.nan_to_num(self.high - V)), 0.0)
        return lo, hi

    def model_input(self, V, rows=None):
        """``V`` (rows of X, or ``X[rows]``) in the container the model takes."""
        if self.kind == "array":
            return V
        if self.kind == "object":
            out = (self.X if rows is None else self.X[rows]).copy()
            out[:, self.movable] = V[:, self.movable]
            return out
        base = self.X if rows is None else self.X.iloc[rows]
        return self._frame(V, base, exact_dtypes=False)

    def rebuild(self, V):
        """Attacked values in X's container; immutable columns bit-identical."""
        if self.kind == "array":
            return np.asarray(V, dtype=self.dtype)
        if self.kind == "object":
            return self.model_input(V)
        return self.user_columns(self._frame(V, self.X, exact_dtypes=True))

    def user_columns(self, A):
        """A frame or array in the columns' order of the user's X."""
        if self.back is None:
            return A
        return A.iloc[:, self.back] if hasattr(A, "iloc") else A[:, self.back]

    def _frame(self, V, base, *, exact_dtypes):
        out = base.copy()
        positions = np.flatnonzero(self.movable)
        for j in positions:
            column = V[:, j]
            dtype = base.dtypes.iloc[j]
            out.isetitem(j, _fit_dtype(column, dtype, exact_dtypes))
        return out


def _fit_dtype(values, dtype, exact):
    """Values in the column's dtype where they fit (integral, in range), else float.

    Nullable pandas dtypes (Float64, Int64, ...) stay nullable: NaN becomes <NA>;
    an Int64 column whose attacked values are not integers becomes Float64.
    """
    if not exact:
        return values
    kind = getattr(dtype, "kind", "f")
    nullable = not isinstance(dtype, np.dtype)
    if kind == "f":
        return _nullable(values, dtype) if nullable else values.astype(dtype)
    if kind not in "iu":
        return values
    finite = np.isfinite(values)
    integral = np.all(values[finite] == np.round(values[finite]))
    if nullable:
        if integral:
            try:
                return _nullable(values, dtype)
            except (TypeError, ValueError, OverflowError):
                pass
        return _nullable(values, "Float64")
    if not integral:
        return values
    info = np.iinfo(dtype)
    inside = np.all(finite) and (
        values.size == 0 or (values.min() >= info.min and values.max() <= info.max)
    )
    return values.astype(dtype) if inside else values


def _nullable(values, dtype):
    import pandas as pd  # only reached for pandas' own dtypes

    return pd.array(values, dtype=dtype)


def attack_input(
    estimator, X, y, *, feature_scale="std", clip=None, mutable=None, needs_scale=True
):
    """Validate ``(estimator, X, y)`` and the threat model; an :class:`_AttackInput`."""
    check_is_fitted(estimator)
    classes = getattr(estimator, "classes_", None)
    if classes is None and not is_regressor(estimator):
        raise TypeError(
            f"{type(estimator).__name__} has no classes_ and is not a regressor: "
            "input gradients and attacks need a fitted classifier or regressor."
        )
    name = type(estimator).__name__
    order = None
    if is_frame(X):
        _check_unique_columns(X)
        order = _fitted_order(estimator, X)
        V, numeric, dtype = _frame_values(X)
        names = list(X.columns)
        kind = "frame"
    else:
        V, numeric, dtype, kind = _array_values(X)
        names = None
    if V.shape[0] == 0 or V.shape[1] == 0:
        what = "sample(s)" if V.shape[0] == 0 else "feature(s)"
        raise ValueError(
            f"Found array with 0 {what} (shape={V.shape}) while a minimum of 1 is "
            f"required by {name}."
        )
    n_features = getattr(estimator, "n_features_in_", None)
    if n_features is not None and V.shape[1] != n_features:
        raise ValueError(
            f"X has {V.shape[1]} features, but {name} is "
            f"expecting {n_features} features as input."
        )
    y = column_or_1d(y)
    check_consistent_length(V, y)
    if classes is None:
        y_idx = None
        y = _regression_target(y)
    else:
        y_idx = label_indices(classes, y)
    # Everything is resolved in X's own column order (positions in mutable,
    # feature_scale and clip refer to it), then put in the fitted order.
    encoded = encoded_inputs(estimator, V.shape[1])
    if order is not None:
        encoded = encoded[np.argsort(order)]
    movable = _movable(mutable, numeric, encoded, names, V.shape[1])
    data = _AttackInput(
        X,
        V,
        movable=movable,
        kind=kind,
        dtype=dtype,
        y=y,
        y_idx=y_idx,
        names=names,
    )
    if needs_scale:
        data.scale = _resolve_scale(feature_scale, V, movable, names)
    data.low, data.high = _resolve_clip(clip, V.shape[1], names)
    _check_inside_clip(data)
    if order is not None:
        data.X = X.iloc[:, order]
        data.V = V[:, order]
        data.movable = movable[order]
        data.names = [names[j] for j in order]
        if data.scale is not None:
            data.scale = data.scale[order]
        data.low = None if data.low is None else data.low[order]
        data.high = None if data.high is None else data.high[order]
        data.back = np.argsort(order)
    return data


def _check_unique_columns(X):
    names, counts = np.unique(np.asarray(X.columns, dtype=object), return_counts=True)
    if np.any(counts > 1):
        dups = ", ".join(
            f"{n!r} ({c} times)" for n, c in zip(names, counts, strict=True) if c > 1
        )
        raise ValueError(
            f"X has duplicate column names: {dups}. The estimators reject them "
            "(feature names must be unique) and a column could not be told from "
            "its namesake; rename the columns."
        )


def _fitted_order(estimator, X):
    """Positions in X of the columns the estimator was fitted on, by name.

    None when the estimator recorded no ``feature_names_in_`` (X is then used by
    position, as ``predict`` does) or X's columns are in the fitted order. Other
    names than at fit get ``predict``'s error.
    """
    fitted = getattr(estimator, "feature_names_in_", None)
    if fitted is None:
        return None
    fitted = [str(n) for n in fitted]
    given = [str(n) for n in X.columns]
    if given == fitted:
        return None
    unseen = sorted(set(given) - set(fitted))
    missing = sorted(set(fitted) - set(given))
    if unseen or missing:
        message = "The feature names should match those that were passed during fit.\n"
        if unseen:
            message += "Feature names unseen at fit time:\n"
            message += "".join(f"- {n}\n" for n in unseen)
        if missing:
            message += "Feature names seen at fit time, yet now missing:\n"
            message += "".join(f"- {n}\n" for n in missing)
        raise ValueError(message)
    return np.array([given.index(n) for n in fitted], dtype=np.intp)


def _check_inside_clip(data):
    """X must lie in the clip box on the columns that move (missing entries aside).

    A point outside the box would be clipped into it by the attack, moving it
    further than eps, and the robust accuracy could exceed the clean one.
    """
    if data.low is None and data.high is None:
        return
    low = -np.inf if data.low is None else data.low
    high = np.inf if data.high is None else data.high
    V = data.V
    with np.errstate(invalid="ignore"):
        outside = ((V < low) | (V > high)) & data.movable
    if not outside.any():
        return
    row = int(np.flatnonzero(outside.any(axis=1))[0])
    col = int(np.flatnonzero(outside[row])[0])
    if data.kind == "frame":
        where = f"row {row} (index {data.X.index[row]!r}), column {data.names[col]!r}"
    else:
        where = f"row {row}, column {col}"
    lo = np.broadcast_to(low, V.shape[1])[col]
    hi = np.broadcast_to(high, V.shape[1])[col]
    raise ValueError(
        f"X lies outside the clip box: {where} holds {float(V[row, col])!r}, "
        f"outside [{float(lo)!r}, {float(hi)!r}]. The attack would clip it into "
        "the box, moving it further than eps. Clip X into the box first (np.clip "
        "or DataFrame.clip), widen clip, or leave that column out of mutable."
    )


def _regression_target(y):
    """A regressor's target as finite floats (attacks increase the squared error)."""
    try:
        y = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("A regressor's target y must be numeric.") from None
    if not np.all(np.isfinite(y)):
        raise ValueError("A regressor's target y contains NaN or infinity.")
    return y


def _frame_values(X):
    """Float values of a DataFrame's columns, which are numeric, their dtype."""
    numeric = np.array([numeric_dtype(dt) for dt in X.dtypes], dtype=bool)
    V = np.zeros((X.shape[0], X.shape[1]), dtype=np.float64)
    for j in np.flatnonzero(numeric):
        column = X.iloc[:, j]
        V[:, j] = column.to_numpy(dtype=np.float64, na_value=np.nan)
    return V, numeric, np.float64


def _array_values(X):
    """Values of an array (dense or sparse); object arrays are mixed tables."""
    V = X.toarray() if sparse.issparse(X) else np.asarray(X)
    if V.ndim != 2:
        raise ValueError(
            f"Expected a 2D array of shape (n_samples, n_features), got shape "
            f"{V.shape}."
        )
    if V.dtype == object:
        numeric = np.zeros(V.shape[1], dtype=bool)
        values = np.zeros(V.shape, dtype=np.float64)
        for j in range(V.shape[1]):
            column = V[:, j]
            if any(isinstance(v, (str, bool, np.bool_)) for v in column):
                continue
            try:
                values[:, j] = column.astype(np.float64)
                numeric[j] = True
            except (TypeError, ValueError):
                pass
        return values, numeric, np.float64, "object"
    if V.dtype.kind in "iub":
        V = V.astype(np.float64)
    if V.dtype.kind != "f":
        raise ValueError(f"X has an unsupported dtype {V.dtype}.")
    if np.any(np.isinf(V)):
        raise ValueError("Input X contains infinity.")
    dtype = np.float32 if V.dtype == np.float32 else np.float64
    if V.dtype != dtype:
        V = V.astype(dtype)
    return V, np.ones(V.shape[1], dtype=bool), dtype, "array"


def _movable(mutable, numeric, encoded, names, n_columns):
    if mutable is None:
        return numeric & ~encoded
    mask = _column_mask(mutable, names, n_columns, "mutable")
    bad = mask & ~numeric
    if np.any(bad):
        raise ValueError(
            f"mutable lists non-numeric columns {_labels(bad, names)}: categorical "
            "columns (object, category, string or bool dtype) cannot be perturbed."
        )
    bad = mask & encoded
    if np.any(bad):
        raise ValueError(
            f"mutable lists columns {_labels(bad, names)} that the pipeline routes "
            "to an encoder (categorical); they cannot be perturbed."
        )
    return mask


def _labels(mask, names):
    positions = np.flatnonzero(mask)
    if names is None:
        return positions.tolist()
    return [names[j] for j in positions]


def _column_mask(columns, names, n_columns, what):
    """A boolean mask from names, integer positions or a boolean mask."""
    columns = np.asarray(columns)
    if columns.dtype == bool:
        if columns.shape != (n_columns,):
            raise ValueError(
                f"A boolean {what} mask must have shape ({n_columns},), got "
                f"{columns.shape}."
            )
        return columns.copy()
    mask = np.zeros(n_columns, dtype=bool)
    for column in columns.ravel().tolist():
        if isinstance(column, numbers.Integral):
            if not -n_columns <= column < n_columns:
                raise ValueError(f"{what} column index {column} is out of range.")
            mask[column] = True
        elif names is not None and column in names:
            mask[names.index(column)] = True
        else:
            raise ValueError(
                f"{what} names an unknown column {column!r}"
                + ("" if names is not None else " (X has no column names)")
                + "."
            )
    return mask


def _per_column(value, names, n_columns, what, fill):
    """A scalar, array of shape (n_columns,) or {column: value} mapping as an array."""
    if hasattr(value, "items") and not isinstance(value, np.ndarray):
        if names is None:
            raise ValueError(f"{what} given by column name needs a DataFrame X.")
        out = np.full(n_columns, fill, dtype=np.float64)
        for key, item in value.items():
            if key not in names:
                raise ValueError(f"{what} names an unknown column {key!r}.")
            out[names.index(key)] = item
        return out
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return np.full(n_columns, float(arr))
    if arr.shape != (n_columns,):
        raise ValueError(
            f"{what} must be a scalar or have shape ({n_columns},), got shape "
            f"{arr.shape}."
        )
    return arr


def _resolve_scale(feature_scale, V, movable, names):
    """The unit of eps per column: 'std' of the attacked X, or what the user gave.

    The default ``"std"`` is the standard deviation of each column of the ``X`` being
    attacked (missing entries ignored). Inside cross-validation that is the scored
    fold: every candidate model of a search is attacked with the same unit.
    """
    check_feature_scale_param(feature_scale)
    n_columns = V.shape[1]
    if isinstance(feature_scale, str):
        if V.shape[0] < 2 and np.any(movable):
            raise ValueError(
                "feature_scale='std' measures eps in standard deviations of the "
                "attacked X and needs at least 2 samples; pass feature_scale as an "
                "array (for instance the training data's standard deviation) or 1 "
                "for raw units."
            )
        scale = np.zeros(n_columns)
        if np.all(movable) and not np.isnan(V).any():
            scale = np.std(V, axis=0, dtype=np.float64)
        elif np.any(movable):
            cols = np.asarray(V[:, movable], dtype=np.float64)
            observed = ~np.isnan(cols)
            count = observed.sum(axis=0)
            filled = np.where(observed, cols, 0.0)
            mean = filled.sum(axis=0) / np.maximum(count, 1)
            centered = np.where(observed, cols - mean, 0.0)
            var = (centered**2).sum(axis=0) / np.maximum(count, 1)
            scale[movable] = np.where(count >= 2, np.sqrt(var), 0.0)
    else:
        scale = _per_column(feature_scale, names, n_columns, "feature_scale", np.nan)
        missing = np.isnan(scale) & movable
        if hasattr(feature_scale, "items") and np.any(missing):
            raise ValueError(
                f"feature_scale has no entry for the movable columns "
                f"{_labels(missing, names)}; give them a scale, or leave them out "
                "of mutable."
            )
        scale = np.where(movable, scale, 0.0)
        if not np.all(np.isfinite(scale)) or np.any(scale < 0):
            raise ValueError("feature_scale must be finite and non-negative.")
    return np.where(movable, scale, 0.0)


def _resolve_clip(clip, n_columns, names):
    """Return ``(low, high)``: None or arrays of shape (n_columns,)."""
    if clip is None:
        return None, None
    if isinstance(clip, np.ndarray) and clip.ndim == 2 and clip.shape[0] == 2:
        clip = (clip[0], clip[1])
    if not isinstance(clip, (tuple, list)) or len(clip) != 2:
        raise ValueError(
            "clip must be a pair (low, high) of scalars, None, arrays of shape "
            f"(n_features,) or mappings of column names to bounds, got {clip!r}."
        )
    bounds = []
    for name, bound, fill in zip(("low", "high"), clip, (-np.inf, np.inf), strict=True):
        if bound is None:
            bounds.append(None)
            continue
        try:
            arr = _per_column(bound, names, n_columns, f"clip {name} bound", fill)
        except ValueError as exc:
            raise ValueError(
                str(exc).replace("must be a scalar", "bound must be a scalar")
            ) from None
        if np.any(np.isnan(arr)):
            raise ValueError(f"clip {name} bound contains NaN.")
        bounds.append(arr)
    low, high = bounds
    if low is not None and high is not None and np.any(low > high):
        raise ValueError("clip low bound exceeds the high bound.")
    return low, high
