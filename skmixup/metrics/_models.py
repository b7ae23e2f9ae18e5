"""Input-gradient directions of single models: linear, MLPClassifier, skorch nets.

Each ``*_direction(model, X, y_idx)`` returns ``(D, s, P)``: the gradient of each
sample's cross-entropy ``-log p(y_i | x_i)`` with respect to the model's input is
``s[:, None] * D`` with ``s > 0``, and ``P`` holds the probabilities. ``D`` is
computed without the underflow of ``s`` (see :func:`softmax_residual`).
"""

import numpy as np
from scipy import sparse
from scipy.special import expit
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV, SGDClassifier
from sklearn.model_selection import FixedThresholdClassifier, TunedThresholdClassifierCV
from sklearn.model_selection._search import BaseSearchCV
from sklearn.neural_network import MLPClassifier

from skmixup.utils._torch import uncompiled

# Rows per chunk in the torch paths (memory bound).
_TORCH_ROWS = 2**16


def inner_model(model):
    """The estimator that computes a delegating wrapper's probabilities.

    Wrappers that only delegate are seen through: :class:`~sklearn.frozen.
    FrozenEstimator` (its ``estimator``), a fitted search (``GridSearchCV`` and
    the like: its ``best_estimator_``) and the threshold classifiers
    (:class:`~sklearn.model_selection.FixedThresholdClassifier`,
    :class:`~sklearn.model_selection.TunedThresholdClassifierCV`: their
    ``predict_proba`` is their ``estimator_``'s). Anything else is returned as is.
    """
    while True:
        if isinstance(model, FrozenEstimator):
            model = model.estimator
        elif isinstance(model, BaseSearchCV) and hasattr(model, "best_estimator_"):
            model = model.best_estimator_
        elif isinstance(
            model, (FixedThresholdClassifier, TunedThresholdClassifierCV)
        ) and hasattr(model, "estimator_"):
            model = model.estimator_
        else:
            return model


def is_linear_proba_model(estimator):
    """Linear models whose predict_proba is sigmoid/softmax (or OvR) of coef_.

    scikit-learn's are known by class; any other estimator says so itself with a
    true class attribute ``_proba_from_decision`` (skmixup's linear models do:
    ``predict_proba`` is the sigmoid or softmax of ``decision_function``, the
    logits ``X coef_^T + intercept_``).
    """
    if isinstance(estimator, SGDClassifier):
        return estimator.loss == "log_loss"
    if isinstance(estimator, (LogisticRegression, LogisticRegressionCV)):
        return True
    return bool(getattr(type(estimator), "_proba_from_decision", False)) and hasattr(
        estimator, "coef_"
    )


def uses_ovr(estimator):
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
    # A sample with a missing (NaN) logit gets NaN here, silently: the caller's
    # one NaN check names the column and the fix.
    with np.errstate(invalid="ignore"):
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


def linear_direction(estimator, X, y_idx):
    W, b = linear_scores(estimator)
    X = X.astype(W.dtype, copy=False)
    ZT = W @ X.T
    ZT += b[:, None]
    if W.shape[0] == 1:
        r, s = binary_residual(ZT[0], y_idx)
        return r[:, None] * W[0], s, _binary_proba(ZT[0])
    if uses_ovr(estimator):
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


def mlp_layers(estimator, X):
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


def mlp_backward(estimator, coefs, hidden, D):
    for layer in range(len(coefs) - 1, 0, -1):
        D = D @ coefs[layer].T
        _activation_derivative(estimator.activation, hidden[layer - 1], D)
    return D @ coefs[0].T


def mlp_direction(estimator, X, y_idx):
    coefs, hidden, ZT = mlp_layers(estimator, X)
    if estimator.out_activation_ == "softmax":
        P, D, s = softmax_residual(ZT, y_idx)
    else:
        P = _binary_proba(ZT[0])
        r, s = binary_residual(ZT[0], y_idx)
        D = r[:, None]
    return mlp_backward(estimator, coefs, hidden, D), s, P


# --------------------------------------------------------------------------------------
# skorch and skmixup's torch estimators: one autograd implementation
# --------------------------------------------------------------------------------------


def _is_skorch_net(estimator):
    return any(
        cls.__module__.split(".")[0] == "skorch" for cls in type(estimator).__mro__
    )


def skorch_net_of(model):
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

    criterion = uncompiled(net.criterion_)
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
    return uncompiled(net.module_), kind


def skorch_direction(net, X, y_idx):
    """Autograd direction, factor and probabilities of a skorch net's loss.

    The module's output ``out`` goes to numpy, where the residual weights ``R``
    with ``d CE / d out = s * R`` are computed without underflow (small arrays of
    n_samples x n_classes); one backward pass of ``sum(out * R)`` gives D.
    """
    import torch

    module, kind = _torch_parts(net)
    dtype, device, D = _placement(net, module, X)
    was_training = module.training
    module.train(False)
    n = X.shape[0]
    s, P = [], []
    try:
        with torch.enable_grad():
            for start in range(0, n, _TORCH_ROWS):
                rows = slice(start, start + _TORCH_ROWS)
                Xt = torch.as_tensor(X[rows], device=device).to(dtype)
                Xt.requires_grad_(True)
                out = module(Xt)
                out = out[0] if isinstance(out, tuple) else out
                values = out.detach().cpu().numpy()
                weights, factor, proba = _output_residual(values, y_idx[rows], kind)
                weights = torch.from_numpy(weights).to(device=device, dtype=out.dtype)
                (grad,) = torch.autograd.grad((out * weights).sum(), Xt)
                D[rows] = grad.detach().cpu().numpy()
                s.append(factor)
                P.append(proba)
    finally:
        module.train(was_training)
    if not P:
        return D, np.ones(0), np.zeros((0, len(net.classes_)))
    return D, np.concatenate(s), np.concatenate(P)


def _placement(net, module, X):
    """The module's dtype and device, and an empty gradient array for X."""
    import torch

    try:
        param = next(module.parameters())
        dtype, device = param.dtype, param.device
    except StopIteration:
        dtype, device = torch.float32, torch.device(net.device)
    D = np.empty(X.shape, dtype=torch.empty(0, dtype=dtype).numpy().dtype)
    return dtype, device, D


def skorch_output_gradient(net, X, y):
    """Regression nets: ``sign(f - y) df/dx`` by autograd, and the predictions f."""
    import torch

    module = uncompiled(net.module_)
    dtype, device, D = _placement(net, module, X)
    was_training = module.training
    module.train(False)
    f = np.empty(X.shape[0])
    try:
        with torch.enable_grad():
            for start in range(0, X.shape[0], _TORCH_ROWS):
                rows = slice(start, start + _TORCH_ROWS)
                Xt = torch.as_tensor(X[rows], device=device).to(dtype)
                Xt.requires_grad_(True)
                out = module(Xt)
                out = (out[0] if isinstance(out, tuple) else out).reshape(len(Xt), -1)
                f[rows] = out[:, 0].detach().cpu().numpy()
                sign = torch.as_tensor(
                    np.where(f[rows] >= y[rows], 1.0, -1.0), device=device
                ).to(out.dtype)
                (grad,) = torch.autograd.grad((out[:, 0] * sign).sum(), Xt)
                D[rows] = grad.detach().cpu().numpy()
    finally:
        module.train(was_training)
    return D, f


def _output_residual(out, y_idx, kind):
    """Weights ``R`` on a module's output with ``d CE / d out = s * R``; s and P."""
    n = out.shape[0]
    if kind == "binary_logit":
        z = out.reshape(n, -1)[:, 0].astype(np.float64)
        r, factor = binary_residual(z, y_idx)
        return r.reshape(out.shape), factor, _binary_proba(z)
    Z = out.astype(np.float64)
    if kind == "proba":
        safe = np.maximum(Z, np.finfo(out.dtype).tiny)
        Z = np.log(safe)
    P, R, factor = softmax_residual(np.ascontiguousarray(Z.T), y_idx)
    R = np.ascontiguousarray(R)
    if kind == "proba":
        R /= safe  # d log p / d out = 1 / out: weights on the module's output
    return R, factor, np.ascontiguousarray(P)


# --------------------------------------------------------------------------------------


def is_linear(model):
    """Linear decision functions from coef_ (SVMs, ridge, SGD ...)."""
    coef = getattr(model, "coef_", None)
    return (
        coef is not None
        and not isinstance(model, MLPClassifier)
        and hasattr(model, "intercept_")
        and not sparse.issparse(coef)
    )
