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
* :class:`~sklearn.neural_network.MLPClassifier` (backpropagation through ``coefs_``);
* skorch nets and skmixup's torch estimators (autograd, one implementation);
* probability-averaging meta-estimators, analytically through their members:
  :class:`~sklearn.calibration.CalibratedClassifierCV` (sigmoid and isotonic) and
  soft :class:`~sklearn.ensemble.VotingClassifier`;
* any other model with ``predict_proba``: central differences of that one model's
  loss, in the features it receives;
* piecewise-constant models (trees, forests, boosting, nearest neighbours) have a zero
  gradient almost everywhere: a TypeError, unless ``gradient="numerical"``.
"""

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.special import expit, logsumexp
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import (
    BaseEnsemble,
    HistGradientBoostingClassifier,
    StackingClassifier,
    VotingClassifier,
)
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV, SGDClassifier
from sklearn.neighbors import KNeighborsClassifier, RadiusNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.tree import BaseDecisionTree

from skmixup.metrics._jacobians import (
    FD_STEP,
    as_float,
    chain,
    dense,
    forward_steps,
)
from skmixup.metrics._validation import attack_input, check_gradient

_TINY = np.finfo(np.float64).tiny
# Rows per predict_proba call of the finite differences (memory bound).
_FD_ROWS = 2**17
# Elements (rows x widest layer) per block of the numpy attack paths: ~1 MB.
BLOCK_ELEMENTS = 2**17
# Rows per chunk in the torch paths (memory bound).
_TORCH_ROWS = 2**15
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
    return np.asarray(direction.gradient(), dtype=np.float64)


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
    if gradient == "numerical":
        cols = np.flatnonzero(data.movable)
        G = _numerical_loss_gradient(
            estimator.predict_proba, V, y_idx, cols, data.model_input
        )
        direction = Direction(G, np.ones(len(G)), None, ["model: numerical"])
    else:
        name = type(estimator).__name__
        direction = _model_direction(estimator, data.model_input(V), y_idx, name)
    D = direction.D
    if D.shape != V.shape:
        raise ValueError(
            f"The input gradient of {type(estimator).__name__} has shape {D.shape}, "
            f"not that of X {V.shape}."
        )
    D[:, ~data.movable] = 0.0
    nan = np.isnan(D)
    if nan.any():
        if np.any(nan & ~np.isnan(V)):
            raise ValueError(
                f"The input gradient of {type(estimator).__name__} is NaN on "
                "observed values of movable columns. Does the model accept missing "
                "values? Put a SimpleImputer in front of it, or make those columns "
                "immutable with mutable=[...]."
            )
        D[nan] = 0.0
    return direction


def _model_direction(model, X, y_idx, path):
    """Direction for a model on its own input ``X`` (a DataFrame is allowed)."""
    if isinstance(model, Pipeline):
        X, steps = forward_steps(model.steps[:-1], X, path)
        name, final = model.steps[-1]
        if final is None or final == "passthrough":
            raise TypeError("The pipeline has no final classifier.")
        direction = _model_direction(final, X, y_idx, f"{path}/{name}")
        direction.D = chain(steps)(direction.D)
        names = [n for n, _ in model.steps[:-1]]
        notes = [f"{path}/{n}: {s.method}" for n, s in zip(names, steps, strict=True)]
        direction.methods = notes + direction.methods
        return direction
    torch_net = _skorch_net_of(model)
    if torch_net is not None:
        D, s, P = _skorch_direction(torch_net, as_float(X, path), y_idx)
        return Direction(D, s, P, [f"{path}: analytic (autograd)"])
    if hasattr(model, "_loss_input_gradient"):
        X = as_float(X, path)
        G = np.asarray(model._loss_input_gradient(X, model.classes_[y_idx]))
        return Direction(G.astype(np.float64), np.ones(len(X)), None, [f"{path}: own"])
    if _is_linear_proba_model(model):
        D, s, P = _linear_direction(model, as_float(X, path), y_idx)
        return Direction(D, s, P, [f"{path}: analytic"])
    if isinstance(model, MLPClassifier):
        D, s, P = _mlp_direction(model, as_float(X, path), y_idx)
        return Direction(D, s, P, [f"{path}: analytic"])
    forward = _proba_forward(model, X, path)
    if forward is not None:
        P, vjp = forward
        rows = np.arange(len(y_idx))
        V = np.zeros_like(P)
        V[rows, y_idx] = -1.0
        # d(-log P_y)/dx = -(1/P_y) dP_y/dx: direction -dP_y/dx, factor 1/P_y.
        scale = 1.0 / np.maximum(P[rows, y_idx], _TINY)
        return Direction(vjp(V), scale, P, [f"{path}: analytic through members"])
    if isinstance(model, _PIECEWISE_CONSTANT_MODELS) or _members_piecewise(model):
        raise TypeError(_piecewise_message(model, path))
    if not hasattr(model, "predict_proba"):
        raise TypeError(
            f"{path} ({type(model).__name__}) has no predict_proba, so its "
            "cross-entropy (and input gradient) is undefined."
        )
    Xf = as_float(X, path)
    wrap = _feature_name_wrapper(model)
    G = _numerical_loss_gradient(
        model.predict_proba, Xf, y_idx, np.arange(Xf.shape[1]), lambda A, r: wrap(A)
    )
    return Direction(G, np.ones(len(G)), None, [f"{path}: numerical"])


def _piecewise_message(model, path):
    return (
        f"{path} ({type(model).__name__}) is piecewise constant (trees, boosting, "
        "nearest neighbours): its input gradient is zero almost everywhere, so "
        "gradient attacks are weak on it. Pass gradient='numerical' to use "
        "central finite differences of predict_proba anyway, or prefer a black-box "
        "attack."
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
    if gradient != "auto" or isinstance(estimator, Pipeline):
        return max(n_samples, 1)
    if isinstance(estimator, MLPClassifier):
        width = max([n_features] + [W.shape[1] for W in estimator.coefs_])
    elif _is_linear_proba_model(estimator):
        width = n_features
    else:
        return max(n_samples, 1)
    rows = BLOCK_ELEMENTS // max(width, 1)
    return int(min(max(rows, 64), max(n_samples, 1)))


def _is_linear_proba_model(estimator):
    """Linear models whose predict_proba is sigmoid/softmax (or OvR) of coef_."""
    if isinstance(estimator, SGDClassifier):
        return estimator.loss == "log_loss"
    if isinstance(estimator, (LogisticRegression, LogisticRegressionCV)):
        return True
    module = type(estimator).__module__
    return module.startswith("skmixup.linear_model") and hasattr(estimator, "coef_")


def _uses_ovr(estimator):
    """Whether a multiclass linear model normalizes one-vs-rest sigmoids."""
    if isinstance(estimator, SGDClassifier):
        return True
    if isinstance(estimator, (LogisticRegression, LogisticRegressionCV)):
        multi_class = getattr(estimator, "multi_class", "deprecated")
        if multi_class == "ovr":
            return True
        if multi_class in ("auto", "deprecated", "warn"):
            return estimator.solver == "liblinear"
    return False


def linear_scores(estimator):
    """``(W, b)`` of a linear model's decision function, W of shape (K, d)."""
    W = np.asarray(estimator.coef_)
    dtype = np.float32 if W.dtype == np.float32 else np.float64
    W = np.atleast_2d(W.astype(dtype, copy=False))
    b = np.asarray(estimator.intercept_, dtype=dtype).reshape(-1)
    return W, b


# --------------------------------------------------------------------------------------
# Residuals dCE/dlogits as (direction, factor), without underflow
# --------------------------------------------------------------------------------------


def binary_residual(z, y_idx):
    """``sigmoid(z) - y = s * r`` with ``r = 1 - 2y`` (the sign) and ``s > 0``."""
    r = np.where(y_idx == 1, -1.0, 1.0).astype(z.dtype)
    return r, expit(r * z)


def softmax_residual(ZT, y_idx):
    """Probabilities and ``P - e_y = s * (q - e_y)`` from class-major logits.

    ``ZT`` has shape (n_classes, n_samples) and is overwritten. Returns
    ``(P, R, s)``: P and R of shape (n_samples, n_classes) (transposed views), with
    ``R = q - e_y`` where ``q`` is the softmax over the classes other than ``y``,
    and ``s = 1 - p_y = exp(lse_other - lse)``, where ``lse_other`` is the
    log-sum-exp of the other logits and ``lse`` that of all. One exponential per
    logit: ``p_k = q_k exp(lse_other - lse)`` for ``k != y``.
    """
    cols = np.arange(ZT.shape[1])
    z_y = ZT[y_idx, cols].copy()
    ZT[y_idx, cols] = -np.inf
    top = ZT.max(axis=0)  # the largest other logit
    ZT -= top
    np.exp(ZT, out=ZT)  # exp(z_k - top), 0 at the true class
    total = ZT.sum(axis=0)
    lse_other = np.log(total) + top
    lse = np.logaddexp(lse_other, z_y)
    s = np.exp(lse_other - lse)
    ZT /= total  # q
    P = ZT * s
    P[y_idx, cols] = np.exp(z_y - lse)
    ZT[y_idx, cols] = -1.0
    return P.T, ZT.T, s


def _ovr_residual(ZT, y_idx):
    """Probabilities ``s / sum(s)`` with ``s = sigmoid(Z)`` and dCE/dZ (class-major)."""
    ST = expit(ZT)
    total = ST.sum(axis=0)
    RT = ST * expit(-ZT) / total
    cols = np.arange(ZT.shape[1])
    RT[y_idx, cols] -= expit(-ZT[y_idx, cols])
    return (ST / total).T, RT.T


def _binary_proba(z):
    p = expit(z)
    return np.column_stack([1.0 - p, p])


# --------------------------------------------------------------------------------------
# Model-specific directions
# --------------------------------------------------------------------------------------


def _linear_direction(estimator, X, y_idx):
    W, b = linear_scores(estimator)
    X = X.astype(W.dtype, copy=False)
    ZT = W @ X.T
    ZT += b[:, None]
    if W.shape[0] == 1:
        r, s = binary_residual(ZT[0], y_idx)
        return r[:, None] * W[0], s, _binary_proba(ZT[0])
    if _uses_ovr(estimator):
        P, R = _ovr_residual(ZT, y_idx)
        return R @ W, np.ones(len(y_idx)), P
    P, R, s = softmax_residual(ZT, y_idx)
    return R @ W, s, P


_ACTIVATIONS = {
    "identity": lambda A: A,
    "logistic": lambda A: expit(A, out=A),
    "tanh": lambda A: np.tanh(A, out=A),
    "relu": lambda A: np.maximum(A, 0, out=A),
}


def _activation_derivative(name, H, D):
    """Multiply ``D`` in place by the activation's derivative, given its output H."""
    if name == "logistic":
        D *= H * (1 - H)
    elif name == "tanh":
        D *= 1 - H * H
    elif name == "relu":
        D *= H > 0


def _mlp_layers(estimator, X):
    """Forward pass: the hidden activations and class-major output logits."""
    if estimator.n_outputs_ != 1 and estimator.out_activation_ != "softmax":
        raise TypeError(
            "input_gradient supports binary and multiclass MLPClassifier, not "
            "multilabel targets."
        )
    if estimator.activation not in _ACTIVATIONS:
        raise TypeError(f"Unknown MLPClassifier activation {estimator.activation!r}.")
    coefs = estimator.coefs_
    dtype = np.float32 if coefs[0].dtype == np.float32 else np.float64
    coefs = [np.asarray(W, dtype=dtype) for W in coefs]
    intercepts = [np.asarray(b, dtype=dtype) for b in estimator.intercepts_]
    hidden = []
    H = X.astype(dtype, copy=False)
    for W, b in zip(coefs[:-1], intercepts[:-1], strict=True):
        H = H @ W
        H += b
        H = _ACTIVATIONS[estimator.activation](H)
        hidden.append(H)
    ZT = coefs[-1].T @ H.T
    ZT += intercepts[-1][:, None]
    return coefs, hidden, ZT


def _mlp_backward(estimator, coefs, hidden, D):
    for layer in range(len(coefs) - 1, 0, -1):
        D = D @ coefs[layer].T
        _activation_derivative(estimator.activation, hidden[layer - 1], D)
    return D @ coefs[0].T


def _mlp_direction(estimator, X, y_idx):
    coefs, hidden, ZT = _mlp_layers(estimator, X)
    if estimator.out_activation_ == "softmax":
        P, D, s = softmax_residual(ZT, y_idx)
    else:
        P = _binary_proba(ZT[0])
        r, s = binary_residual(ZT[0], y_idx)
        D = r[:, None]
    return _mlp_backward(estimator, coefs, hidden, D), s, P


# --------------------------------------------------------------------------------------
# skorch and skmixup's torch estimators: one autograd implementation
# --------------------------------------------------------------------------------------


def _is_skorch_net(estimator):
    return any(
        cls.__module__.split(".")[0] == "skorch" for cls in type(estimator).__mro__
    )


def _skorch_net_of(model):
    """The skorch net that computes a model's outputs, or None."""
    if _is_skorch_net(model):
        return model
    net = getattr(model, "net_", None)
    if net is not None and _is_skorch_net(net):
        return net
    return None


def _torch_parts(net):
    """The module to differentiate and the kind of its output.

    Kinds: ``"logits"`` (CrossEntropyLoss), ``"proba"`` (NLLLoss: the module
    returns probabilities), ``"binary_logit"`` (BCEWithLogitsLoss).
    """
    import torch

    criterion = net.criterion_
    if isinstance(criterion, torch.nn.CrossEntropyLoss):
        kind = "logits"
    elif isinstance(criterion, torch.nn.NLLLoss):
        kind = "proba"
    elif isinstance(criterion, torch.nn.BCEWithLogitsLoss):
        kind = "binary_logit"
    else:
        raise TypeError(
            "input_gradient supports skorch nets with NLLLoss, CrossEntropyLoss or "
            f"BCEWithLogitsLoss criteria, got {type(criterion).__name__}; pass "
            "gradient='numerical' otherwise."
        )
    return net.module_, kind


def _skorch_direction(net, X, y_idx):
    """Autograd direction, factor and probabilities of a skorch net's loss."""
    import torch

    module, kind = _torch_parts(net)
    try:
        param = next(module.parameters())
        dtype, device = param.dtype, param.device
    except StopIteration:
        dtype, device = torch.float32, torch.device(net.device)
    was_training = module.training
    module.train(False)
    D, s, P = [], [], []
    try:
        with torch.enable_grad():
            for start in range(0, max(X.shape[0], 1), _TORCH_ROWS):
                rows = slice(start, start + _TORCH_ROWS)
                Xt = torch.as_tensor(X[rows], device=device).to(dtype)
                Xt.requires_grad_(True)
                target = torch.as_tensor(y_idx[rows], device=device)
                out = module(Xt)
                out = out[0] if isinstance(out, tuple) else out
                weights, factor, proba = _torch_residual(out, target, kind)
                (grad,) = torch.autograd.grad((out * weights).sum(), Xt)
                D.append(grad.detach().cpu().numpy())
                s.append(factor.detach().cpu().numpy().astype(np.float64))
                P.append(proba.detach().cpu().numpy().astype(np.float64))
    finally:
        module.train(was_training)
    return np.concatenate(D), np.concatenate(s), np.concatenate(P)


def _torch_residual(out, target, kind):
    """Weights ``R`` with ``d CE / d out = s * R`` (no underflow), ``s`` and P."""
    import torch

    with torch.no_grad():
        if kind == "binary_logit":
            z = out.reshape(out.shape[0], -1)[:, 0]
            r = 1.0 - 2.0 * target.to(z.dtype)
            weights = r.reshape(out.shape) if out.ndim > 1 else r
            p = torch.sigmoid(z)
            return weights, torch.sigmoid(r * z), torch.stack([1 - p, p], dim=1)
        if kind == "proba":
            Z = torch.log(out.clamp_min(torch.finfo(out.dtype).tiny))
        else:
            Z = out
        lse = torch.logsumexp(Z, dim=1)
        onehot = torch.nn.functional.one_hot(target, Z.shape[1]).to(torch.bool)
        others = Z.masked_fill(onehot, -torch.inf)
        lse_other = torch.logsumexp(others, dim=1)
        Q = torch.exp(others - lse_other[:, None])
        Q = Q.masked_fill(onehot, -1.0)
        if kind == "proba":
            # d log p / d out = 1 / out: weights on the module's output.
            Q = Q / out.clamp_min(torch.finfo(out.dtype).tiny)
        return Q, torch.exp(lse_other - lse), torch.exp(Z - lse[:, None])


# --------------------------------------------------------------------------------------
# Probability Jacobians (vector-Jacobian products) for meta-estimators
# --------------------------------------------------------------------------------------


def _proba_forward(model, X, path):
    """``(P, vjp)`` with ``vjp(V) = sum_k V[:, k] dP_k/dx``, or None if unknown."""
    if isinstance(model, Pipeline):
        return _through_pipeline(model, X, path, _proba_forward)
    if _is_linear_proba_model(model) and not _uses_ovr(model):
        W, b = linear_scores(model)
        Xf = as_float(X, path)
        Z = Xf @ W.T.astype(np.float64) + b
        return _logit_proba(Z, lambda dZ: dZ @ W.astype(np.float64))
    if isinstance(model, MLPClassifier):
        coefs, hidden, ZT = _mlp_layers(model, as_float(X, path))
        return _logit_proba(
            ZT.T, lambda dZ: _mlp_backward(model, coefs, hidden, dZ.copy())
        )
    if isinstance(model, CalibratedClassifierCV):
        return _calibrated_forward(model, X, path)
    if isinstance(model, VotingClassifier) and model.voting == "soft":
        return _voting_forward(model, X, path)
    if isinstance(model, StackingClassifier):
        return _stacking_forward(model, X, path)
    return None


def _through_pipeline(pipeline, X, path, forward):
    """``forward`` of a pipeline's final step, chained back through its steps."""
    X, steps = forward_steps(pipeline.steps[:-1], X, path)
    inner = forward(pipeline.steps[-1][1], X, path)
    if inner is None:
        return None
    out, vjp = inner
    back = chain(steps)
    return out, lambda V: back(vjp(V))


def _logit_proba(Z, back):
    """Softmax (or sigmoid for one column) probabilities of logits, and their VJP."""
    if Z.shape[1] == 1:
        p = expit(Z[:, 0])
        P = np.column_stack([1 - p, p])
        return P, lambda V: back(((V[:, 1] - V[:, 0]) * p * (1 - p))[:, None])
    P = np.exp(Z - logsumexp(Z, axis=1, keepdims=True))
    return P, lambda V: back(P * (V - (P * V).sum(axis=1, keepdims=True)))


def _response_forward(model, X, path):
    """``(R, vjp)`` of decision_function (else predict_proba), as calibration uses."""
    if isinstance(model, Pipeline):
        return _through_pipeline(model, X, path, _response_forward)
    if hasattr(model, "decision_function"):
        if _is_linear_proba_model(model) or _is_linear(model):
            W, b = linear_scores(model)
            W = W.astype(np.float64)
            R = as_float(X, path) @ W.T + b
            return R, lambda V: V @ W
        return None
    forward = _proba_forward(model, X, path)
    if forward is None:
        return None
    P, vjp = forward
    if P.shape[1] == 2:  # binary: the positive class's probability only
        return P[:, 1:], _positive_class_vjp(vjp)
    return P, vjp


def _is_linear(model):
    """Linear decision functions from coef_ (SVMs, ridge, SGD ...)."""
    coef = getattr(model, "coef_", None)
    return (
        coef is not None
        and not isinstance(model, MLPClassifier)
        and hasattr(model, "intercept_")
        and not sparse.issparse(coef)
    )


def _calibrator_derivative(calibrator, t):
    """``(value, derivative)`` of a fitted sigmoid or isotonic calibrator at t."""
    if isinstance(calibrator, IsotonicRegression):
        xs = np.asarray(calibrator.X_thresholds_, dtype=np.float64)
        ys = np.asarray(calibrator.y_thresholds_, dtype=np.float64)
        value = calibrator.predict(t)
        if len(xs) < 2:
            return value, np.zeros_like(t)
        i = np.clip(np.searchsorted(xs, t, side="right") - 1, 0, len(xs) - 2)
        slope = (ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i])
        inside = (t >= xs[0]) & (t <= xs[-1])
        return value, np.where(inside, slope, 0.0)
    if hasattr(calibrator, "a_") and hasattr(calibrator, "b_"):
        p = expit(-(calibrator.a_ * t + calibrator.b_))
        return p, -calibrator.a_ * p * (1 - p)
    return None


def _calibrated_forward(model, X, path):
    """CalibratedClassifierCV: the mean over folds of calibrated probabilities."""
    folds = []
    for calibrated in model.calibrated_classifiers_:
        if calibrated.method not in ("sigmoid", "isotonic"):
            return None
        response = _response_forward(calibrated.estimator, X, path)
        if response is None:
            return None
        folds.append((calibrated, response))
    n_classes = len(model.classes_)
    parts = []
    total = 0.0
    for calibrated, (R, back) in folds:
        R = np.asarray(R, dtype=np.float64).reshape(len(R), -1)
        classes = np.searchsorted(model.classes_, calibrated.estimator.classes_)
        if n_classes == 2:
            classes = np.array([1])
        p = np.zeros((len(R), n_classes))
        dp = np.zeros((len(R), n_classes))
        for j, (k, calibrator) in enumerate(
            zip(classes, calibrated.calibrators, strict=True)
        ):
            result = _calibrator_derivative(calibrator, R[:, j])
            if result is None:
                return None
            p[:, k], dp[:, k] = result
        if n_classes == 2:
            P = np.column_stack([1 - p[:, 1], p[:, 1]])
        else:
            S = p.sum(axis=1, keepdims=True)
            P = np.divide(p, S, out=np.full_like(p, 1 / n_classes), where=S != 0)
        total = total + P
        parts.append((P, p, dp, classes, back))
    k_folds = len(parts)

    def vjp(V):
        grad = 0.0
        for P, p, dp, classes, back in parts:
            if n_classes == 2:
                dL_dp = (V[:, 1] - V[:, 0])[:, None]
            else:
                S = p.sum(axis=1, keepdims=True)
                safe = np.where(S == 0, 1.0, S)
                dL_dp = (V - (V * P).sum(axis=1, keepdims=True)) / safe
                dL_dp = dL_dp[:, classes]
            dR = dL_dp * dp[:, classes]
            grad = grad + back(dR)
        return grad / k_folds

    return total / k_folds, vjp


def _voting_forward(model, X, path):
    """Soft voting: the weighted mean of the members' probabilities."""
    weights = model._weights_not_none
    weights = np.ones(len(model.estimators_)) if weights is None else weights
    weights = np.asarray(weights, dtype=np.float64) / np.sum(weights)
    members = []
    for name, member in zip(model.named_estimators_, model.estimators_, strict=False):
        forward = _proba_forward(member, X, f"{path}/{name}")
        if forward is None:
            return None
        members.append(forward)
    P = sum(w * Pm for w, (Pm, _) in zip(weights, members, strict=True))

    def vjp(V):
        return sum(w * back(V) for w, (_, back) in zip(weights, members, strict=True))

    return P, vjp


def _stacking_forward(model, X, path):
    """Stacking: the final estimator on the members' outputs (and X if passthrough).

    Members stacked through ``predict`` are piecewise constant: then None.
    """
    binary = len(model.classes_) == 2
    blocks = []
    members = [e for e in model.estimators_ if not isinstance(e, str)]
    for name, member, method in zip(
        model.named_estimators_, members, model.stack_method_, strict=False
    ):
        if method == "predict_proba":
            forward = _proba_forward(member, X, f"{path}/{name}")
            if forward is not None and binary:
                P, back = forward
                forward = (P[:, 1:], _positive_class_vjp(back))
        elif method == "decision_function":
            forward = _response_forward(member, X, f"{path}/{name}")
        else:
            forward = None
        if forward is None:
            return None
        R, back = forward
        blocks.append((np.asarray(R, dtype=np.float64).reshape(len(R), -1), back))
    if model.passthrough:
        blocks.append((as_float(X, path), lambda V: V))
    widths = np.cumsum([0] + [R.shape[1] for R, _ in blocks])
    X_meta = np.hstack([R for R, _ in blocks])
    final = _proba_forward(model.final_estimator_, X_meta, f"{path}/final_estimator")
    if final is None:
        return None
    P, back_final = final

    def vjp(V):
        G = back_final(V)
        return sum(
            back(G[:, start:stop])
            for (_, back), start, stop in zip(
                blocks, widths[:-1], widths[1:], strict=True
            )
        )

    return P, vjp


def _positive_class_vjp(back):
    """VJP of the positive-class column of binary probabilities."""
    return lambda V: back(np.column_stack([np.zeros(len(V)), V[:, 0]]))


# --------------------------------------------------------------------------------------
# Central differences of -log predict_proba[y]
# --------------------------------------------------------------------------------------


def _numerical_loss_gradient(predict_proba, V, y_idx, columns, to_input):
    """Central differences of ``-log predict_proba[y]`` along ``columns``.

    ``to_input(V_rows, rows)`` turns stacked rows (copies of ``V``'s rows ``rows``)
    into what ``predict_proba`` takes. Many columns share one call.
    """
    V = np.asarray(V, dtype=np.float64)
    n, d = V.shape
    G = np.zeros_like(V)
    if n == 0 or len(columns) == 0:
        return G
    h = FD_STEP * np.maximum(1.0, np.abs(np.nan_to_num(V)))
    per_call = max(1, _FD_ROWS // (2 * n))
    rows = np.arange(n)
    for k0 in range(0, len(columns), per_call):
        ks = np.asarray(columns[k0 : k0 + per_call])
        Vs = np.repeat(V[None, :, :], 2 * len(ks), axis=0)
        j = np.arange(len(ks))
        Vs[2 * j, :, ks] += h[:, ks].T
        Vs[2 * j + 1, :, ks] -= h[:, ks].T
        steps = Vs[2 * j, :, ks] - Vs[2 * j + 1, :, ks]
        P = predict_proba(to_input(Vs.reshape(-1, d), np.tile(rows, 2 * len(ks))))
        P = np.asarray(dense(P), dtype=np.float64).reshape(2 * len(ks), n, -1)
        loss = -np.log(np.maximum(P[:, rows, y_idx], _TINY))
        with np.errstate(invalid="ignore"):
            G[:, ks] = np.nan_to_num((loss[0::2] - loss[1::2]) / steps).T
    return G
