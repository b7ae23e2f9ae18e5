"""The transformer vector-Jacobian registry: one entry per transformer type.

``transformer_forward(transformer, X, path)`` returns a :class:`Step`: the
transformer's output, a function ``vjp(G)`` mapping gradients with respect to that
output (n_samples, n_outputs) back to its input (n_samples, n_inputs), and whether the
step is affine on the attack's reach (its Jacobian does not depend on the moving
values; the exact linear attack needs this). Input columns that cannot move get zero
gradient. To support a new transformer, register a forward function here::

    @register(MyTransformer)
    def _my_forward(transformer, X, path):
        return Step(transformer.transform(X), vjp, affine=True)

Transformers without an entry get a numerical vector-Jacobian product (central
differences of their own ``transform``, one step only), so one unknown step does not
push the whole pipeline onto finite differences. Encoders (one-hot, ordinal, target)
make their inputs immutable: categories do not move. Piecewise-constant steps
(:class:`~sklearn.preprocessing.KBinsDiscretizer`) have a zero gradient almost
everywhere and raise a clear error.
"""

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import sparse
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    KBinsDiscretizer,
    MaxAbsScaler,
    MinMaxScaler,
    Normalizer,
    OneHotEncoder,
    OrdinalEncoder,
    RobustScaler,
    StandardScaler,
    TargetEncoder,
)
from sklearn.utils import _safe_indexing
from sklearn.utils._mask import _get_mask

from skmixup.metrics._models import inner_model
from skmixup.utils._validation import is_frame

# Relative step of central differences: cube root of the machine epsilon.
FD_STEP = np.cbrt(np.finfo(np.float64).eps)
# Rows x columns per transform call of the numerical vector-Jacobian product.
_FD_ELEMENTS = 2**20

ENCODERS = (OneHotEncoder, OrdinalEncoder, TargetEncoder)
PIECEWISE_CONSTANT = (KBinsDiscretizer,)


@dataclass
class Step:
    """One transformer's output, its vector-Jacobian product and affineness."""

    Xt: object
    vjp: Callable
    affine: bool
    method: str = "analytic"


_REGISTRY = {}
# Composite transformers whose forward function takes the ``movable`` mask.
_TAKES_MOVABLE = set()


def numeric_dtype(dtype):
    """Real numbers that may move: ints and floats (numpy or nullable pandas).

    Not bool (numpy or pandas ``boolean``), category, or strings: those never move.
    """
    kind = getattr(dtype, "kind", None)
    if kind is None:  # pandas extension dtypes without a numpy kind
        return False
    if getattr(dtype, "name", "") in ("category", "boolean"):
        return False
    return kind in "iuf"


def _constant_input(X, movable):
    """Whether nothing in ``X`` can move (explicit mask, else X's own dtypes)."""
    if movable is not None:
        return not np.any(movable)
    if sparse.issparse(X):
        return False
    if is_frame(X):
        return X.shape[1] > 0 and not any(numeric_dtype(dt) for dt in X.dtypes)
    dtype = getattr(X, "dtype", None)
    if dtype is None:  # a list of documents, say
        X = np.asarray(X, dtype=object)
        dtype = X.dtype
    if hasattr(X, "iloc"):  # a Series (one column selected by a scalar)
        return not numeric_dtype(dtype)
    if dtype.kind in "iuf":
        return False
    if dtype.kind != "O":
        return True  # bool, strings, bytes, datetimes
    try:
        np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        return True
    return False


def constant_step(Xt, X):
    """A step whose output does not depend on the moving values: gradient 0."""
    n_in = X.shape[1] if len(getattr(X, "shape", (0, 0))) == 2 else 1
    return Step(
        Xt,
        lambda G: np.zeros((G.shape[0], n_in), dtype=G.dtype),
        affine=True,
        method="immutable",
    )


def register(*classes):
    """Register a forward function ``f(transformer, X, path) -> Step``."""

    def decorator(func):
        for cls in classes:
            _REGISTRY[cls] = func
        return func

    return decorator


def _identity(G):
    return G


def transformer_forward(transformer, X, path, movable=None):
    """Forward ``X`` through one (fitted) transformer; a :class:`Step`.

    ``movable`` (boolean, one entry per column of ``X``; None: every numeric
    column) says which inputs the attack may change. A step none of whose inputs
    can move (a text vectorizer on a text column, an encoder, any transformer fed
    only immutable columns) is a constant of the attack: it needs no Jacobian.
    """
    if transformer is None or (
        isinstance(transformer, str) and transformer == "passthrough"
    ):
        return Step(X, _identity, affine=True)
    if _constant_input(X, movable):
        return constant_step(transformer.transform(X), X)
    for cls in type(transformer).__mro__:
        if cls in _REGISTRY:
            if cls in _TAKES_MOVABLE:
                return _REGISTRY[cls](transformer, X, path, movable)
            return _REGISTRY[cls](transformer, X, path)
    if isinstance(transformer, PIECEWISE_CONSTANT):
        raise TypeError(
            f"Pipeline step {path!r} ({type(transformer).__name__}) is piecewise "
            "constant: its gradient is zero almost everywhere, so gradient attacks "
            "cannot move its input. Make its columns immutable (mutable=[...] "
            "without them) or attack with gradient='numerical' on a model without it."
        )
    return _numerical_step(transformer, X, path)


def dense(Xt):
    """A transformer output as an ndarray (sparse and DataFrame outputs included)."""
    if sparse.issparse(Xt):
        return Xt.toarray()
    if hasattr(Xt, "to_numpy"):
        return Xt.to_numpy()
    return np.asarray(Xt)


def as_float(Xt, path):
    """A step output as float64, or a TypeError that names the step.

    ``path`` is ``"Model/step/..."``; a bare name is the input of a model that
    is not in a pipeline (its ``X`` itself).
    """
    try:
        return np.asarray(dense(Xt), dtype=np.float64)
    except (TypeError, ValueError):
        if "/" not in path:
            raise TypeError(
                f"X holds non-numeric values (text, categories or booleans), and "
                f"{path} takes numbers only, so it cannot be differentiated on "
                "them. Put it in a Pipeline after a ColumnTransformer that encodes "
                "those columns (OneHotEncoder, OrdinalEncoder, TargetEncoder, "
                "TfidfVectorizer for text)."
            ) from None
        raise TypeError(
            f"Pipeline step {path!r} outputs non-numeric values, so the model after "
            "it cannot be differentiated. Route categorical columns through an "
            "encoder (OneHotEncoder, OrdinalEncoder, TargetEncoder) and text "
            "columns through a vectorizer (TfidfVectorizer)."
        ) from None


def chain(steps):
    """The vector-Jacobian product of consecutive steps."""

    def vjp(G):
        for step in reversed(steps):
            G = step.vjp(G)
        return G

    return vjp


# --------------------------------------------------------------------------------------
# Registered transformers
# --------------------------------------------------------------------------------------


def forward_steps(steps, X, path, movable=None):
    """Forward X through ``(name, transformer)`` pairs; the output and the Steps.

    ``movable`` masks the columns of X that may move (see
    :func:`transformer_forward`); after a constant step nothing moves.
    """
    done = []
    for name, transformer in steps:
        step = transformer_forward(transformer, X, f"{path}/{name}", movable)
        done.append(step)
        X = step.Xt
        movable = None
        if step.method == "immutable":
            movable = np.zeros(X.shape[1] if X.ndim == 2 else 1, dtype=bool)
    return X, done


@register(Pipeline)
def _pipeline_forward(pipeline, X, path, movable=None):
    X, steps = forward_steps(pipeline.steps, X, path, movable)
    affine = all(step.affine for step in steps)
    methods = {step.method for step in steps}
    if "immutable" in methods:
        method = "immutable"  # an encoder: nothing before it moves either
    elif len(methods) == 1:
        method = methods.pop()
    else:
        method = "mixed"
    return Step(X, chain(steps), affine=affine, method=method)


@register(ColumnTransformer)
def _column_transformer_forward(ct, X, path, movable=None):
    n_in = X.shape[1]
    parts = []
    for name, transformer, spec in ct.transformers_:
        out = ct.output_indices_[name]
        if out.stop == out.start or (
            isinstance(transformer, str) and transformer == "drop"
        ):
            continue
        columns = np.asarray(ct._transformer_to_input_indices[name], dtype=int)
        # A scalar column (a text column for a vectorizer) is passed 1-D, as the
        # ColumnTransformer does.
        one = isinstance(spec, (str, int, np.integer)) and len(columns) == 1
        sub = _safe_indexing(X, int(columns[0]) if one else columns, axis=1)
        sub_movable = None if movable is None else movable[columns]
        step = transformer_forward(transformer, sub, f"{path}/{name}", sub_movable)
        parts.append((columns, out, step))
    n = X.shape[0]
    Xt = np.empty((n, max([out.stop for _, out, _ in parts], default=0)))
    for _, out, step in parts:
        Xt[:, out] = as_float(step.Xt, f"{path}/{_name_of(ct, out)}")

    def vjp(G):
        grad = np.zeros((G.shape[0], n_in), dtype=G.dtype)
        for columns, out, step in parts:
            grad[:, columns] += step.vjp(G[:, out])
        return grad

    affine = all(step.affine for _, _, step in parts)
    notes = [
        f"{_name_of(ct, out)}: {step.method}"
        for _, out, step in parts
        if step.method != "analytic"
    ]
    return Step(Xt, vjp, affine=affine, method=", ".join(["analytic"] + notes))


_TAKES_MOVABLE.update((Pipeline, ColumnTransformer))


def _name_of(ct, out):
    for name, sl in ct.output_indices_.items():
        if sl == out:
            return name
    return "?"


@register(SimpleImputer)
def _simple_imputer_forward(imputer, X, path):
    """Identity on observed entries; imputed entries are constants (gradient 0)."""
    Xt = imputer.transform(X)
    values = dense(X)
    observed = ~_missing_mask(X, values, imputer.missing_values)
    statistics = np.asarray(imputer.statistics_)
    if getattr(imputer, "keep_empty_features", False):
        kept = np.ones(values.shape[1], dtype=bool)
    else:
        kept = ~_get_mask(statistics, np.nan)
    n_kept = int(kept.sum())

    def vjp(G):
        grad = np.zeros((G.shape[0], values.shape[1]), dtype=G.dtype)
        # Columns of the missing-indicator (add_indicator) do not depend on values.
        grad[:, kept] = G[:, :n_kept] * observed[:, kept]
        return grad

    return Step(Xt, vjp, affine=True)


def _is_nan_marker(value):
    """NaN or pandas' NA (which SimpleImputer(missing_values=np.nan) also fills)."""
    try:
        return bool(value != value)
    except TypeError:  # pd.NA: its comparisons are NA
        return type(value).__name__ == "NAType"


def _missing_mask(X, values, missing_values):
    """Entries the imputer fills; pandas' NA (nullable dtypes) counts as NaN."""
    if hasattr(X, "isna") and _is_nan_marker(missing_values):
        mask = X.isna()
        return np.asarray(mask.to_numpy() if hasattr(mask, "to_numpy") else mask)
    return _get_mask(values, missing_values)


@register(*ENCODERS)
def _encoder_forward(encoder, X, path):
    """Encoders make their inputs immutable: the gradient into them is zero."""
    Xt = encoder.transform(X)
    n_in = X.shape[1]
    return Step(
        Xt,
        lambda G: np.zeros((G.shape[0], n_in), dtype=G.dtype),
        affine=True,
        method="immutable",
    )


@register(StandardScaler, MaxAbsScaler, RobustScaler)
def _scaler_forward(scaler, X, path):
    Xt = scaler.transform(X)
    scale = scaler.scale_
    if scale is None:
        return Step(Xt, _identity, affine=True)
    return Step(Xt, lambda G: G / scale, affine=True)


@register(MinMaxScaler)
def _minmax_forward(scaler, X, path):
    Xt = scaler.transform(X)
    scale = scaler.scale_
    if not scaler.clip:
        return Step(Xt, lambda G: G * scale, affine=True)
    low, high = scaler.feature_range
    unclipped = np.asarray(dense(X), dtype=np.float64) * scale + scaler.min_
    # Subgradient at the kinks: the bounds count as inside (the attack may move
    # inwards from a training minimum or maximum).
    inside = (unclipped >= low) & (unclipped <= high)
    return Step(Xt, lambda G: G * scale * inside, affine=False)


@register(PCA, TruncatedSVD)
def _projection_forward(transformer, X, path):
    Xt = transformer.transform(X)
    components = np.asarray(transformer.components_, dtype=np.float64)
    if isinstance(transformer, PCA) and transformer.whiten:
        components = components / np.sqrt(transformer.explained_variance_)[:, None]
    return Step(Xt, lambda G: G @ components, affine=True)


@register(FunctionTransformer)
def _function_forward(transformer, X, path):
    if transformer.func is None:
        return Step(transformer.transform(X), _identity, affine=True)
    return _numerical_step(transformer, X, path)


@register(Normalizer)
def _normalizer_forward(transformer, X, path):
    """VJP of ``x / ||x||_p`` (p in l1, l2, max)."""
    Xt = np.asarray(dense(transformer.transform(X)), dtype=np.float64)
    X = np.asarray(dense(X), dtype=np.float64)
    norm = transformer.norm
    if norm == "l2":
        lengths = np.linalg.norm(X, axis=1, keepdims=True)
    elif norm == "l1":
        lengths = np.abs(X).sum(axis=1, keepdims=True)
    else:
        lengths = np.abs(X).max(axis=1, keepdims=True)
    lengths[lengths[:, 0] == 0] = 1.0

    def vjp(G):
        inner = (G * Xt).sum(axis=1, keepdims=True)
        if norm == "l2":
            dnorm = Xt
        elif norm == "l1":
            dnorm = np.sign(X)
        else:
            argmax = np.abs(X).argmax(axis=1)
            dnorm = np.zeros_like(X)
            rows = np.arange(X.shape[0])
            dnorm[rows, argmax] = np.sign(X[rows, argmax])
        return (G - inner * dnorm) / lengths

    return Step(Xt, vjp, affine=False)


# --------------------------------------------------------------------------------------
# Numerical fallback, one step at a time
# --------------------------------------------------------------------------------------


def _numerical_step(transformer, X, path):
    """Central differences of one transformer's ``transform`` (its Jacobian, lazily).

    Every transformer acts row by row at transform time, so perturbing input column
    ``k`` of all rows at once gives column ``k`` of every row's Jacobian. The
    Jacobian is computed on the first call of ``vjp`` and kept for later calls.
    """
    Xt = transformer.transform(X)
    values = dense(X)
    try:
        values = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"Pipeline step {path!r} ({type(transformer).__name__}) has no known "
            "Jacobian and takes non-numeric input, so it cannot be differentiated "
            "numerically either. Route categorical columns through an encoder."
        ) from None
    wrap = _like(X)
    cache = []

    def jacobian():
        if not cache:
            cache.append(_fd_jacobian(transformer, values, wrap, path))
        return cache[0]

    def vjp(G):
        J = jacobian()  # (n_in, n, n_out)
        return np.einsum("knj,nj->nk", J, G)

    return Step(Xt, vjp, affine=False, method="numerical")


def _like(X):
    """Give an array X's container (DataFrame with the same columns) back."""
    if is_frame(X):
        frame, columns = type(X), X.columns
        return lambda A: frame(A, columns=columns)
    return lambda A: A


def central_differences(func, V, columns, per_call):
    """Central differences of a row-wise function along some input columns.

    The one finite-difference stencil of the metrics (pipeline steps without a
    known Jacobian, models without an analytic input gradient). ``func(Vs,
    rows)`` maps stacked copies of rows of ``V`` (``Vs[i]`` is a perturbed copy
    of row ``rows[i]``) to an array with one row (of any number of outputs) per
    stacked row; many columns share one call, ``per_call`` at a time. The step
    of column ``k`` at row ``i`` is ``h_ik = FD_STEP max(1, |V_ik|)``.

    Yields ``(ks, D)`` per chunk of columns ``ks``, with ``D`` float64 of shape
    ``(len(ks), n_rows, n_outputs)``::

        D[j, i] = (f(V + h e_k)_i - f(V - h e_k)_i) / (2 h_ik),   k = ks[j]

    (``2 h`` as the difference of the two rounded arguments; NaN where ``f`` is
    not finite, without a warning).
    """
    V = np.asarray(V, dtype=np.float64)
    n, d = V.shape
    h = FD_STEP * np.maximum(1.0, np.abs(np.nan_to_num(V)))
    rows = np.arange(n)
    columns = np.asarray(columns, dtype=np.intp)
    for k0 in range(0, len(columns), per_call):
        ks = columns[k0 : k0 + per_call]
        Vs = np.repeat(V[None, :, :], 2 * len(ks), axis=0)
        j = np.arange(len(ks))
        Vs[2 * j, :, ks] += h[:, ks].T
        Vs[2 * j + 1, :, ks] -= h[:, ks].T
        steps = Vs[2 * j, :, ks] - Vs[2 * j + 1, :, ks]
        out = func(Vs.reshape(-1, d), np.tile(rows, 2 * len(ks)))
        out = np.asarray(out, dtype=np.float64).reshape(2 * len(ks), n, -1)
        with np.errstate(invalid="ignore"):
            D = (out[0::2] - out[1::2]) / steps[:, :, None]
        yield ks, D  # outside errstate: the caller's own settings apply


def _fd_jacobian(transformer, X, wrap, path):
    n, d = X.shape
    J = None
    per_call = max(1, _FD_ELEMENTS // max(2 * n * d, 1))

    def transform(Xs, rows):
        return as_float(transformer.transform(wrap(Xs)), path)

    for ks, D in central_differences(transform, X, np.arange(d), per_call):
        if J is None:
            J = np.zeros((d, n, D.shape[2]))
        J[ks] = D
    if J is None:
        return np.zeros((d, n, 0))
    # Missing inputs do not move: their (NaN) derivatives are zero.
    missing = np.isnan(X).T[:, :, None]
    J = np.where(missing, 0.0, J)
    if np.any(np.isnan(J)):
        raise ValueError(
            f"Pipeline step {path!r} ({type(transformer).__name__}) returned NaN "
            "for observed inputs; its numerical Jacobian is undefined there."
        )
    return J


# --------------------------------------------------------------------------------------
# Which raw columns are categorical (routed to an encoder)
# --------------------------------------------------------------------------------------


def encoded_inputs(estimator, n_inputs):
    """Boolean mask of the input columns that an estimator routes to an encoder."""
    return _encoded(estimator, n_inputs)


def _encoded(transformer, n_inputs):
    transformer = inner_model(transformer)
    if isinstance(transformer, ENCODERS):
        return np.ones(n_inputs, dtype=bool)
    if isinstance(transformer, ColumnTransformer) and hasattr(
        transformer, "transformers_"
    ):
        mask = np.zeros(n_inputs, dtype=bool)
        for name, sub, _ in transformer.transformers_:
            if isinstance(sub, str):
                continue
            columns = np.asarray(
                transformer._transformer_to_input_indices[name], dtype=int
            )
            mask[columns] |= _encoded(sub, len(columns))
        return mask
    if isinstance(transformer, Pipeline):
        steps = [s for _, s in transformer.steps]
        if steps and not hasattr(steps[-1], "transform"):
            steps = steps[:-1]  # the final classifier of a model pipeline
        if not steps:
            return np.zeros(n_inputs, dtype=bool)
        first = _encoded(steps[0], n_inputs)
        # An encoder after column-wise steps (an imputer, say) encodes the same
        # columns: everything that reaches it is categorical.
        for later in steps[1:]:
            if isinstance(later, ENCODERS):
                return np.ones(n_inputs, dtype=bool)
        return first
    members = _members(transformer)
    mask = np.zeros(n_inputs, dtype=bool)
    for member in members:
        mask |= _encoded(member, n_inputs)
    return mask


def _members(estimator):
    """Fitted members that see the same input (calibration folds, ensembles)."""
    calibrated = getattr(estimator, "calibrated_classifiers_", None)
    if calibrated is not None:
        return [c.estimator for c in calibrated]
    members = getattr(estimator, "estimators_", None)
    if isinstance(members, list):
        return [m for m in members if not isinstance(m, str)]
    return []
