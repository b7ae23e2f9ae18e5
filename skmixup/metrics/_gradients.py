"""Input gradients of a classifier's cross-entropy, by dispatch on the estimator.

For each sample ``i`` the loss is its own cross-entropy ``CE_i = -log p(y_i | x_i)``;
its gradient with respect to the raw input row ``x_i`` is computed as
``s_i * D_i``: a direction ``D_i`` and a positive factor ``s_i``. Attacks only need the
direction (the sign of the gradient, or the gradient divided by its norm), and the
direction is computed without the underflow of ``s_i``: for softmax logits ``z`` and
label ``y``, ``p - e_y = (1 - p_y) (q - e_y)`` where ``q`` is the softmax of ``z``
over the classes other than ``y`` (``q_y = 0``). ``q`` never underflows, while
``1 - p_y`` is exactly 0 once the logit gap exceeds about 745, where the plain
gradient vanishes and FGSM would leave a confidently classified sample in place.

Models (after any transformers of a pipeline, see :mod:`._jacobians`):

* linear models with sigmoid/softmax (or normalized one-vs-rest) probabilities:
  skmixup's, :class:`~sklearn.linear_model.LogisticRegression`,
  :class:`~sklearn.linear_model.SGDClassifier` with ``loss="log_loss"``;
  :class:`~sklearn.neural_network.MLPClassifier`; skorch nets and skmixup's torch
  estimators (:mod:`._models`);
* meta-estimators, analytically through their members:
  :class:`~sklearn.calibration.CalibratedClassifierCV` (sigmoid and isotonic), soft
  :class:`~sklearn.ensemble.VotingClassifier` and
  :class:`~sklearn.ensemble.StackingClassifier` (:mod:`._ensembles`);
* any other model with ``predict_proba``: central differences of that one model's
  loss, in the features it receives;
* piecewise-constant models (trees, forests, boosting, nearest neighbours) have a zero
  gradient almost everywhere: a TypeError, unless ``gradient="numerical"``.
"""

from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import BaseEnsemble, HistGradientBoostingClassifier
from sklearn.neighbors import KNeighborsClassifier, RadiusNeighborsClassifier
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.tree import BaseDecisionTree

from skmixup.metrics._ensembles import proba_forward
from skmixup.metrics._jacobians import (
    as_float,
    central_differences,
    chain,
    dense,
    forward_steps,
)
from skmixup.metrics._models import (
    inner_model,
    is_linear,
    is_linear_proba_model,
    linear_direction,
    mlp_backward,
    mlp_direction,
    mlp_layers,
    skorch_direction,
    skorch_net_of,
    skorch_output_gradient,
)
from skmixup.metrics._validation import TINY, attack_input, check_gradient

# Rows per predict_proba call of the finite differences (memory bound).
_FD_ROWS = 2**17
# Elements (rows x widest layer) per block of the numpy attack paths: 4 MB of
# float64, about 5,000 rows of 100 features (measured best of 2**17, 2**19, 2**20).
BLOCK_ELEMENTS = 2**19
_PIECEWISE_CONSTANT_MODELS = (
    BaseDecisionTree,
    HistGradientBoostingClassifier,
    KNeighborsClassifier,
    RadiusNeighborsClassifier,
)


@dataclass
class Direction:
    """``gradient = scale[:, None] * D``; ``proba`` at the point (or None)."""

    D: np.ndarray
    scale: np.ndarray
    proba: object
    methods: list

    def gradient(self):
        return self.D * self.scale[:, None]


def input_gradient(estimator, X, y, *, gradient="auto", mutable=None):
    """Gradient of each sample's cross-entropy with respect to its raw input.

    Row ``i`` of the result is :math:`\\nabla_{x_i} \\, (-\\log p(y_i \\mid x_i))`,
    the gradient of sample ``i``'s own loss at its true label, where ``p`` is what
    the estimator's ``predict_proba`` returns. Through a :class:`~sklearn.pipeline.
    Pipeline` (with :class:`~sklearn.compose.ColumnTransformer`,
    :class:`~sklearn.impute.SimpleImputer`, scalers, encoders ...) the gradient is
    taken with respect to the pipeline's raw input. Columns that may not move
    (categorical columns, see ``mutable``) and missing entries get 0.

    Parameters
    ----------
    estimator : fitted classifier
        See the Notes for what ``gradient="auto"`` supports.
    X : array-like or DataFrame of shape (n_samples, n_features)
        Input samples; DataFrames may hold categorical columns and missing values.
        Sparse input is densified.
    y : array-like of shape (n_samples,)
        True labels, as given to ``fit`` (mapped through ``estimator.classes_``).
    gradient : {"auto", "numerical"}, default="auto"
        ``"auto"`` differentiates each pipeline step analytically where it can and
        numerically (central differences of that step alone) where it cannot.
        ``"numerical"`` uses central differences of the whole model's
        ``predict_proba`` (about ``2 * n_features`` predictions of ``n_samples``
        rows).
    mutable : array-like of str, int or bool, default=None
        Columns that may move (names, positions or a boolean mask). None means the
        numeric columns that the estimator does not route to an encoder.

    Returns
    -------
    grad : ndarray of shape (n_samples, n_features), dtype float64
        The input gradients.

    Raises
    ------
    TypeError
        If the estimator (or a pipeline step, named in the message) cannot be
        differentiated, for instance a tree or a KBinsDiscretizer.
    ValueError
        If ``y`` holds labels the estimator was not fitted on.

    See Also
    --------
    fgsm : Fast gradient sign attack built on this gradient.
    gradient_methods : How each part of a model is differentiated.

    Notes
    -----
    Supported analytically with ``gradient="auto"``: skmixup's estimators;
    :class:`~sklearn.linear_model.LogisticRegression`,
    :class:`~sklearn.linear_model.LogisticRegressionCV` and
    :class:`~sklearn.linear_model.SGDClassifier` with ``loss="log_loss"``;
    :class:`~sklearn.neural_network.MLPClassifier`; skorch nets whose criterion is
    ``NLLLoss`` (module outputs probabilities), ``CrossEntropyLoss`` (logits) or
    ``BCEWithLogitsLoss`` (binary logit); :class:`~sklearn.calibration.
    CalibratedClassifierCV` (sigmoid, isotonic) and soft
    :class:`~sklearn.ensemble.VotingClassifier` over these; and pipelines of these
    with scalers, PCA, TruncatedSVD, Normalizer, SimpleImputer, ColumnTransformer,
    encoders (immutable inputs) and ``"passthrough"``. Other transformers and other
    models with ``predict_proba`` are differentiated numerically, one step at a
    time. Class weights are not part of the loss.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skmixup.metrics import input_gradient
    >>> X = np.array([[-2.0, 0.5], [-1.0, 0.0], [1.0, 0.2], [2.0, -0.4]])
    >>> y = np.array([0, 0, 1, 1])
    >>> clf = LogisticRegression().fit(X, y)
    >>> grad = input_gradient(clf, X, y)
    >>> grad.shape
    (4, 2)
    >>> p = clf.predict_proba(X)[:, 1]
    >>> bool(np.allclose(grad, (p - y)[:, None] * clf.coef_))
    True
    """
    data = attack_input(estimator, X, y, mutable=mutable, needs_scale=False)
    direction = loss_direction(estimator, data, data.V, check_gradient(gradient))
    return data.user_columns(np.asarray(direction.gradient(), dtype=np.float64))


def gradient_methods(estimator, X, y, *, gradient="auto"):
    """How each part of a model is differentiated for attacks, in words.

    Parameters
    ----------
    estimator : fitted classifier
        The model.
    X : array-like or DataFrame of shape (n_samples, n_features)
        A few samples (the first two rows are used).
    y : array-like of shape (n_samples,)
        Their labels.
    gradient : {"auto", "numerical"}, default="auto"
        As in :func:`input_gradient`.

    Returns
    -------
    methods : list of str
        One ``"path: method"`` entry per differentiated part, where method is
        ``"analytic"``, ``"analytic through members"``, ``"numerical"`` (central
        differences of that part) or ``"immutable"`` (encoders).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.calibration import CalibratedClassifierCV
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skmixup.metrics import gradient_methods
    >>> X = np.array([[-2.0, 0.5], [-1.0, 0.0], [1.0, 0.2], [2.0, -0.4]] * 5)
    >>> y = np.array([0, 0, 1, 1] * 5)
    >>> model = CalibratedClassifierCV(LogisticRegression(), cv=2).fit(X, y)
    >>> gradient_methods(model, X, y)
    ['CalibratedClassifierCV: analytic through members']
    """
    data = attack_input(estimator, X, y, needs_scale=False)
    sub = data.subset(slice(0, min(2, data.n_samples)))
    return loss_direction(estimator, sub, sub.V, check_gradient(gradient)).methods


# --------------------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------------------


def loss_direction(estimator, data, V, gradient):
    """The loss gradient direction at ``V`` (rows of ``data``) in raw columns.

    Columns that may not move get 0; a NaN on an observed entry of a column that
    may move is an error (never a silent NaN score).
    """
    y_idx = data.y_idx
    if data.is_regression:
        if gradient == "numerical":
            raise TypeError(
                "gradient='numerical' is for classifiers; attack a regressor "
                "without an analytic gradient with attack='square' (or 'auto')."
            )
        name = type(estimator).__name__
        direction = _regression_direction(estimator, data.model_input(V), data.y, name)
    elif gradient == "numerical":
        cols = np.flatnonzero(data.movable)
        G = _numerical_loss_gradient(
            estimator.predict_proba, V, y_idx, cols, data.model_input
        )
        direction = Direction(G, np.ones(len(G)), None, ["model: numerical"])
    else:
        name = type(estimator).__name__
        direction = _model_direction(
            estimator, data.model_input(V), y_idx, name, movable=data.movable
        )
    D = direction.D
    if D.shape != V.shape:
        raise ValueError(
            f"The input gradient of {type(estimator).__name__} has shape {D.shape}, "
            f"not that of X {V.shape}."
        )
    D[:, ~data.movable] = 0.0
    nan = np.isnan(D)
    # A NaN factor (a binary linear model's sigmoid of a NaN score) is a missing
    # value that reached the model: the same error as a NaN direction.
    undefined = np.isnan(np.asarray(direction.scale, dtype=np.float64))
    if nan.any() or undefined.any():
        if undefined.any() or np.any(nan & ~np.isnan(V)):
            raise ValueError(
                f"The input gradient of {type(estimator).__name__} is NaN on "
                "observed values of movable columns. Does the model accept missing "
                "values? Put a SimpleImputer in front of it, or make those columns "
                "immutable with mutable=[...]."
            )
        D[nan] = 0.0
    return direction


def _model_direction(model, X, y_idx, path, movable=None):
    """Direction for a model on its own input ``X`` (a DataFrame is allowed).

    ``movable`` masks the columns of ``X`` that may move (None: all numeric ones).
    """
    model = inner_model(model)
    if isinstance(model, Pipeline):
        X, steps = forward_steps(model.steps[:-1], X, path, movable)
        name, final = model.steps[-1]
        if final is None or final == "passthrough":
            raise TypeError("The pipeline has no final classifier.")
        direction = _model_direction(final, X, y_idx, f"{path}/{name}")
        direction.D = chain(steps)(direction.D)
        names = [n for n, _ in model.steps[:-1]]
        notes = [f"{path}/{n}: {s.method}" for n, s in zip(names, steps, strict=True)]
        direction.methods = notes + direction.methods
        return direction
    torch_net = skorch_net_of(model)
    if torch_net is not None:
        D, s, P = skorch_direction(torch_net, _float32_or_64(X, path), y_idx)
        return Direction(D, s, P, [f"{path}: analytic (autograd)"])
    if is_linear_proba_model(model):
        D, s, P = linear_direction(model, _float32_or_64(X, path), y_idx)
        return Direction(D, s, P, [f"{path}: analytic"])
    if isinstance(model, MLPClassifier):
        D, s, P = mlp_direction(model, _float32_or_64(X, path), y_idx)
        return Direction(D, s, P, [f"{path}: analytic"])
    forward = proba_forward(model, X, path)
    if forward is not None:
        P, vjp = forward
        rows = np.arange(len(y_idx))
        V = np.zeros_like(P)
        V[rows, y_idx] = -1.0
        # d(-log P_y)/dx = -(1/P_y) dP_y/dx: direction -dP_y/dx, factor 1/P_y.
        scale = 1.0 / np.maximum(P[rows, y_idx], TINY)
        return Direction(vjp(V), scale, P, [f"{path}: analytic through members"])
    if isinstance(model, _PIECEWISE_CONSTANT_MODELS) or _members_piecewise(model):
        raise TypeError(_piecewise_message(model, path))
    if not hasattr(model, "predict_proba"):
        raise TypeError(
            f"{path} ({type(model).__name__}) has no predict_proba, so its "
            "cross-entropy (and input gradient) is undefined; use attack='square' "
            "(it needs only decision_function) or attack='auto'."
        )
    Xf = as_float(X, path)
    wrap = _feature_name_wrapper(model)
    G = _numerical_loss_gradient(
        model.predict_proba, Xf, y_idx, np.arange(Xf.shape[1]), lambda A, r: wrap(A)
    )
    return Direction(G, np.ones(len(G)), None, [f"{path}: numerical"])


def _regression_direction(model, X, y, path):
    """Direction of the squared error ``(f(x) - y)^2``: ``sign(f - y) df/dx``.

    ``proba`` holds the predictions ``f(x)``. Linear regressors, MLPRegressor,
    skorch regression nets and pipelines of these with known Jacobians.
    """
    if isinstance(model, Pipeline):
        X, steps = forward_steps(model.steps[:-1], X, path)
        name, final = model.steps[-1]
        direction = _regression_direction(final, X, y, f"{path}/{name}")
        direction.D = chain(steps)(direction.D)
        return direction
    torch_net = skorch_net_of(model)
    if torch_net is not None:
        D, f = skorch_output_gradient(torch_net, _float32_or_64(X, path), y)
        return Direction(D, 2 * np.abs(f - y), f, [f"{path}: analytic (autograd)"])
    if isinstance(model, MLPRegressor):
        coefs, hidden, ZT = mlp_layers(model, _float32_or_64(X, path))
        f = ZT[0].astype(np.float64)
        r = np.where(f >= y, 1.0, -1.0).astype(ZT.dtype)[:, None]
        D = mlp_backward(model, coefs, hidden, r)
        return Direction(D, 2 * np.abs(f - y), f, [f"{path}: analytic"])
    if is_linear(model) and np.asarray(model.coef_).size == np.shape(X)[1]:
        w = np.asarray(model.coef_, dtype=np.float64).reshape(-1)
        f = as_float(X, path) @ w + np.asarray(model.intercept_).reshape(-1)[0]
        r = np.where(f >= y, 1.0, -1.0)
        return Direction(r[:, None] * w, 2 * np.abs(f - y), f, [f"{path}: analytic"])
    raise TypeError(
        f"{path} ({type(model).__name__}) has no input gradient skmixup knows for a "
        "regressor (linear models, MLPRegressor, skorch nets and pipelines of "
        "these have one); use attack='square' (gradient-free) or attack='auto'."
    )


def _float32_or_64(X, path):
    """Float32 arrays stay float32 (no copy for float32 models); else float64."""
    if isinstance(X, np.ndarray) and X.dtype == np.float32:
        return X
    return as_float(X, path)


def _piecewise_message(model, path):
    return (
        f"{path} ({type(model).__name__}) is piecewise constant (trees, boosting, "
        "nearest neighbours): its input gradient is zero almost everywhere, so "
        "gradient attacks are weak on it. Use attack='square' (gradient-free) or "
        "attack='auto' (the worst case of the attacks that apply), or pass "
        "gradient='numerical' to use central finite differences of predict_proba "
        "anyway."
    )


def _members_piecewise(model):
    """Ensembles (forests, boosting, bagging) made only of piecewise-constant models."""
    members = getattr(model, "estimators_", None)
    if not isinstance(model, BaseEnsemble) or members is None:
        return False
    members = np.asarray(members, dtype=object).ravel()
    return len(members) > 0 and all(
        isinstance(m, _PIECEWISE_CONSTANT_MODELS) for m in members
    )


def _feature_name_wrapper(model):
    """Give arrays the column names a model was fitted with (no warning)."""
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        return lambda A: A
    import pandas as pd

    return lambda A: pd.DataFrame(A, columns=names)


def block_rows(estimator, n_samples, n_features, gradient):
    """Rows per block for the numpy gradient paths (temporaries stay in cache).

    Attacks process the rows in blocks of this size: each block's n x d
    temporaries then stay in the CPU cache and the BLAS calls stay small. Other
    paths (torch, finite differences, pipelines) take all rows at once.
    """
    estimator = inner_model(estimator)
    if gradient != "auto" or isinstance(estimator, Pipeline):
        return max(n_samples, 1)
    if isinstance(estimator, MLPClassifier):
        width = max([n_features] + [W.shape[1] for W in estimator.coefs_])
    elif is_linear_proba_model(estimator):
        width = n_features
    else:
        return max(n_samples, 1)
    rows = BLOCK_ELEMENTS // max(width, 1)
    return int(min(max(rows, 64), max(n_samples, 1)))


# Central differences of -log predict_proba[y]
# --------------------------------------------------------------------------------------


def _numerical_loss_gradient(predict_proba, V, y_idx, columns, to_input):
    """Central differences of ``-log predict_proba[y]`` along ``columns``.

    ``to_input(V_rows, rows)`` turns stacked rows (copies of ``V``'s rows ``rows``)
    into what ``predict_proba`` takes. Many columns share one call.
    """
    V = np.asarray(V, dtype=np.float64)
    n = V.shape[0]
    G = np.zeros_like(V)
    if n == 0 or len(columns) == 0:
        return G

    def loss(Vs, rows):
        P = np.asarray(dense(predict_proba(to_input(Vs, rows))), dtype=np.float64)
        return -np.log(np.maximum(P[np.arange(len(rows)), y_idx[rows]], TINY))

    per_call = max(1, _FD_ROWS // (2 * n))
    for ks, D in central_differences(loss, V, columns, per_call):
        G[:, ks] = np.nan_to_num(D[:, :, 0]).T
    return G
